// Tests of certificate generation and PEM round trips.

package certgen

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestIssueAndParse(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := KeyPEM(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := ParseCA(CertPEM(ca.Cert), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := ca2.Pool()
	for _, kt := range []KeyType{ECDSA, RSA} {
		is, err := ca2.Issue(kt, time.Hour, "localhost", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"localhost", "127.0.0.1"} {
			if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
				t.Errorf("%s certificate for %s: %v", kt, host, err)
			}
		}
		if c := is.TLS(); c.Leaf != is.Cert || c.PrivateKey == nil {
			t.Errorf("%s: TLS() = %+v", kt, c)
		}
	}
	if _, err := ca.Issue("dsa", time.Hour, "x"); err == nil {
		t.Error("unknown key type accepted")
	}
	if _, err := ca.Issue(ECDSA, time.Hour); err == nil {
		t.Error("no hosts accepted")
	}
	member, _ := ca.Issue(ECDSA, time.Hour, "x")
	mk, _ := KeyPEM(member.Key)
	if _, err := ParseCA(CertPEM(member.Cert), mk); err == nil {
		t.Error("a member certificate was accepted as a CA")
	}
}
