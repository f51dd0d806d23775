// tlsfiles_test.go: LoadMemberTLS accepts what `tlsring certs` writes and
// says which file is wrong otherwise.

package transport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsring/tlsring/transport/transporttest"
)

func TestLoadMemberTLS(t *testing.T) {
	dir := t.TempDir()
	ca := transporttest.NewCA(t)
	if err := ca.WriteMemberFiles(dir, "m1", "127.0.0.1", "m1.example"); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := transporttest.NewCA(t).WriteMemberFiles(other, "x", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	f := func(d, name string) string { return filepath.Join(d, name) }
	cfg, err := LoadMemberTLS(f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), "127.0.0.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.ClientCAs == nil {
		t.Fatalf("config lacks the certificate or the CA: %+v", cfg)
	}
	if _, err := LoadMemberTLS(f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), "m1.example:7001"); err != nil {
		t.Errorf("DNS SAN: %v", err)
	}
	if _, err := LoadMemberTLS(f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), ""); err != nil {
		t.Errorf("no self: %v", err)
	}
	if err := os.WriteFile(f(dir, "junk.pem"), []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cert, key, ca, self string
		want                string
	}{
		{f(dir, "nope.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), "", "transport: reading the member certificate: open " + f(dir, "nope.pem")},
		{f(dir, "m1.pem"), f(dir, "nope.pem"), f(dir, "ca.pem"), "", "transport: reading the member key: open"},
		{f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "nope.pem"), "", "transport: reading the cluster CA: open"},
		{f(dir, "m1.pem"), f(other, "x-key.pem"), f(dir, "ca.pem"), "", "private key does not match public key"},
		{f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "junk.pem"), "", "cluster CA " + f(dir, "junk.pem") + ": no PEM certificate found"},
		{f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(other, "ca.pem"), "", "is not signed by the cluster CA " + f(other, "ca.pem")},
		{f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), "10.0.0.9:7001", "is not valid for 10.0.0.9, the host of this member's address 10.0.0.9:7001"},
		{f(dir, "m1.pem"), f(dir, "m1-key.pem"), f(dir, "ca.pem"), "no-port", `member address "no-port"`},
	} {
		_, err := LoadMemberTLS(c.cert, c.key, c.ca, c.self)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadMemberTLS(%s, %s, %s, %q) = %v, want an error containing %q", c.cert, c.key, c.ca, c.self, err, c.want)
		}
	}
}

func TestParseCertPool(t *testing.T) {
	if _, err := ParseCertPool([]byte("nothing")); err == nil || err.Error() != "transport: no PEM certificate found" {
		t.Errorf("ParseCertPool of no PEM: %v", err)
	}
}
