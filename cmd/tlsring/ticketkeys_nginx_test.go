// ticketkeys_nginx_test.go: `tlsring peer -ticket-keys-dir` feeding nginx:
// two nginx instances, each reading the ticket key files its own `tlsring
// peer` of one ring writes (and reloaded by it on every rotation); a
// session nginx A issued resumes on nginx B, and once older than the
// retention resumes on neither. openssl s_client is the client.

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
	"github.com/tlsring/tlsring/ticketkeys"

	"github.com/tlsring/tlsring/internal/testenv"
)

const nginxBin = "/usr/sbin/nginx"

type nginxProc struct {
	name, addr, dir string
	cmd             *exec.Cmd
	out             *syncBuffer
	exited          chan error
}

// startNginx runs nginx (master and one worker, in the foreground) serving
// TLS on a free port with session tickets from the files in keyDir and no
// session cache, so a resumption can only come from a ticket.
func startNginx(t *testing.T, name, dir, certFile, keyFile, keyDir string) *nginxProc {
	t.Helper()
	np := &nginxProc{name: name, addr: addr(freeTCPPort(t)), dir: dir, out: &syncBuffer{}}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s ssl;
    server_name localhost;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets on;
    include %[5]s;
    location / { return 200 "nginx %[6]s\n"; }
  }
}
`, dir, np.addr, certFile, keyFile, filepath.Join(keyDir, ticketkeys.NginxInclude), name)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	np.cmd = exec.Command(nginxBin, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "error.log"))
	np.cmd.Stdout, np.cmd.Stderr = np.out, np.out
	if err := np.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	np.exited = make(chan error, 1)
	cmd, exited := np.cmd, np.exited
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers, then exits.
		np.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-np.exited:
		case <-time.After(10 * time.Second):
			np.cmd.Process.Kill()
			<-np.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx %s output:\n%s\nerror.log:\n%s", name, np.out, b)
		}
	})
	waitFor(t, 10*time.Second, "nginx "+name+" listening on "+np.addr, func() (bool, string) {
		select {
		case err := <-np.exited:
			np.exited <- err
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx %s exited: %v\n%s\n%s", name, err, np.out, b)
		default:
		}
		c, err := net.DialTimeout("tcp", np.addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return np
}

// nginxClient makes one HTTPS request to np with openssl s_client and
// returns its "New, ..."/"Reused, ..." line.
func nginxClient(t *testing.T, np *nginxProc, caFile, flag, sessIn, sessOut string) string {
	t.Helper()
	return opensslSession(t, np.addr, "/", "nginx "+np.name, caFile, flag, sessIn, sessOut)
}

func TestNginxTicketKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tlsring peers and nginx")
	}
	testenv.Program(t, nginxBin, "nginx")
	testenv.Program(t, "openssl", "openssl") // s_client
	const (
		period    = 3 * time.Second
		retention = 6 * time.Second
	)
	bin := tlsringBinary(t)
	dir := t.TempDir()

	// Two members of one ring, each writing key files into its own
	// directory and reloading its own nginx (through its pid file).
	nginxDirs := []string{filepath.Join(dir, "nginx-A"), filepath.Join(dir, "nginx-B")}
	for _, d := range nginxDirs {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	keyDirs := startKeyPeers(t, bin, dir, period, retention, func(i int) string {
		pidFile := filepath.Join(nginxDirs[i], "nginx.pid")
		return "if [ -s " + pidFile + " ]; then kill -HUP $(cat " + pidFile + "); fi"
	})

	certFile, keyFile, caFile := webCert(t, dir)
	ng := []*nginxProc{
		startNginx(t, "A", nginxDirs[0], certFile, keyFile, keyDirs[0]),
		startNginx(t, "B", nginxDirs[1], certFile, keyFile, keyDirs[1]),
	}

	for _, tc := range []struct{ name, flag string }{{"TLS12", "-tls1_2"}, {"TLS13", "-tls1_3"}} {
		t.Run(tc.name, func(t *testing.T) {
			// A session from A resumes on B. Right after the members start,
			// or around a rotation, a member may still seal under a key of
			// its own for a moment (before its ring key arrives, or before
			// nginx's reload lands): retry with fresh sessions.
			sess := filepath.Join(dir, tc.name+".sess")
			var issued time.Time
			waitFor(t, 30*time.Second, "a session of nginx A to resume on nginx B", func() (bool, string) {
				issued = time.Now()
				if got := nginxClient(t, ng[0], caFile, tc.flag, "", sess); !strings.HasPrefix(got, "New") {
					return false, "first connection: " + got
				}
				got := nginxClient(t, ng[1], caFile, tc.flag, sess, "")
				return strings.HasPrefix(got, "Reused"), "on B: " + got
			})
			// Past its epoch and the retention (plus the members' refresh
			// tick and nginx's reload), its key is gone from both nginx
			// instances.
			time.Sleep(time.Until(issued.Add(period + retention)))
			waitFor(t, 20*time.Second, "the old session to resume nowhere", func() (bool, string) {
				a := nginxClient(t, ng[0], caFile, tc.flag, sess, "")
				b := nginxClient(t, ng[1], caFile, tc.flag, sess, "")
				return strings.HasPrefix(a, "New") && strings.HasPrefix(b, "New"), "A: " + a + ", B: " + b
			})
			// The control: fresh sessions still resume across the fleet.
			fresh := filepath.Join(dir, tc.name+"-fresh.sess")
			waitFor(t, 30*time.Second, "a fresh session of nginx B to resume on nginx A", func() (bool, string) {
				if got := nginxClient(t, ng[1], caFile, tc.flag, "", fresh); !strings.HasPrefix(got, "New") {
					return false, "first connection: " + got
				}
				got := nginxClient(t, ng[0], caFile, tc.flag, fresh, "")
				return strings.HasPrefix(got, "Reused"), "on A: " + got
			})
		})
	}
}

// startKeyPeers starts two `tlsring peer` processes of one ring, each
// writing the fleet's ticket keys into its own directory (returned) and
// running reload(i) after each change, and waits until both wrote them.
func startKeyPeers(t *testing.T, bin, dir string, period, retention time.Duration, reload func(i int) string) []string {
	t.Helper()
	procs := make([]*peerProc, 2)
	var members []string
	for i := range procs {
		name := fmt.Sprintf("n%d", i)
		if out, err := exec.Command(bin, "certs", "-dir", dir, "-name", name, "-hosts", "127.0.0.1").CombinedOutput(); err != nil {
			t.Fatalf("tlsring certs: %v\n%s", err, out)
		}
		port, err := freeUDPPort()
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = &peerProc{name: addr(port), admin: addr(freeTCPPort(t))}
		members = append(members, procs[i].name)
	}
	keyDirs := make([]string, 2)
	for i, pp := range procs {
		keyDirs[i] = filepath.Join(dir, fmt.Sprintf("keys-%d", i))
		if err := os.Mkdir(keyDirs[i], 0o700); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("n%d", i)
		pp.args = []string{"peer",
			"-listen", pp.name,
			"-members", strings.Join(members, ","),
			"-cert", filepath.Join(dir, name+".pem"),
			"-key", filepath.Join(dir, name+"-key.pem"),
			"-ca", filepath.Join(dir, "ca.pem"),
			"-admin", pp.admin,
			"-log-level", "debug",
			"-ticket-keys-dir", keyDirs[i],
			"-ticket-key-period", period.String(),
			"-ticket-key-retention", retention.String(),
			"-ticket-keys-reload", reload(i),
		}
		pp.start(t, bin)
	}
	t.Cleanup(func() {
		for _, pp := range procs {
			pp.kill()
			if t.Failed() {
				t.Logf("logs of %s:\n%s", pp.name, pp.logs)
			}
		}
	})
	for i, pp := range procs {
		pp.waitReady(t, 30*time.Second)
		waitFor(t, 20*time.Second, "key files of member "+fmt.Sprint(i), func() (bool, string) {
			_, err := os.Stat(filepath.Join(keyDirs[i], ticketkeys.NginxInclude))
			return err == nil, fmt.Sprint(err)
		})
		if fi, err := os.Stat(filepath.Join(keyDirs[i], "nginx-0.key")); err != nil || fi.Size() != ticketkeys.NginxKeyLen || fi.Mode().Perm() != 0o600 {
			t.Fatalf("nginx-0.key: %v %v", fi, err)
		}
	}
	return keyDirs
}

// webCert writes a web server certificate, its key and its CA into dir.
func webCert(t *testing.T, dir string) (certFile, keyFile, caFile string) {
	t.Helper()
	webCA, err := certgen.NewCA("ticket keys test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	web, err := webCA.Issue(certgen.ECDSA, time.Hour, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := certgen.KeyPEM(web.Key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, caFile = filepath.Join(dir, "web.pem"), filepath.Join(dir, "web-key.pem"), filepath.Join(dir, "web-ca.pem")
	for f, b := range map[string][]byte{certFile: certgen.CertPEM(web.Cert), keyFile: keyPEM, caFile: certgen.CertPEM(webCA.Cert)} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, caFile
}
