// openssl_test.go: openssl s_client resumes on B a session it got from A,
// for TLS 1.3 and TLS 1.2.

package tlsglue

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/internal/testenv"
)

func TestOpenSSLResume(t *testing.T) {
	bin := testenv.Program(t, "openssl", "openssl")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, getPKI(t).caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ver := range []struct{ name, flag string }{{"TLS13", "-tls1_3"}, {"TLS12", "-tls1_2"}} {
		t.Run(ver.name, func(t *testing.T) {
			srv := newServers(t, newMemStore(), 2, Options{})
			sess := filepath.Join(dir, ver.name+".sess")
			// The server writes a line and closes: -ign_eof keeps s_client
			// reading until then, so it has the TLS 1.3 NewSessionTicket
			// (which precedes the line) when it writes -sess_out.
			sClient := func(addr string, sessFlag string) string {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", addr, "-servername", testSNI,
					"-CAfile", caFile, "-verify_return_error", ver.flag, sessFlag, sess, "-ign_eof")
				cmd.Stdin = strings.NewReader("")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("s_client %s: %v\n%s", sessFlag, err, out)
				}
				if !strings.Contains(string(out), "hello") {
					t.Fatalf("s_client %s: no greeting\n%s", sessFlag, out)
				}
				return string(out)
			}
			out := sClient(srv[0].addr, "-sess_out")
			if !strings.Contains(out, "New, TLSv1.") {
				t.Fatalf("first connection not new:\n%s", out)
			}
			srv[0].flush(t)
			out = sClient(srv[1].addr, "-sess_in")
			if !strings.Contains(out, "Reused, TLSv1.") {
				t.Fatalf("openssl did not resume on B:\n%s", out)
			}
			if got := value(srv[1].m.lookups[lrHit]); got != 1 {
				t.Fatalf("B hits = %v, want 1", got)
			}
		})
	}
}
