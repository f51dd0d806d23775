// Interoperability of the sidecar path with Apache httpd: two Apache
// instances keep their TLS sessions in `SSLSessionCache memcache:`, each
// pointed at the memcached face of a different `tlsring peer` of one ring,
// and a session Apache A issued resumes on Apache B (SPEC §1.2). Session
// tickets are off, so a resumption can only come from the session cache.
// `openssl s_client` is the TLS client.

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"

	"github.com/tlsring/tlsring/internal/testenv"
)

const apacheBin = "/usr/sbin/apache2"

// apacheModules is where Debian's apache2 package keeps its modules.
const apacheModules = "/usr/lib/apache2/modules"

// startRing starts n `tlsring peer` processes forming one ring, each with
// a memcached face, and waits until they are ready (state transfer done,
// the ring reachable). tag names the ring
// in the certificate files under dir; extra flags go to every member.
func startRing(t *testing.T, bin, dir, tag string, n int, extra ...string) []*peerProc {
	t.Helper()
	procs := make([]*peerProc, n)
	var members []string
	for i := range procs {
		name := fmt.Sprintf("%s%d", tag, i)
		cmd := exec.Command(bin, "certs", "-dir", dir, "-name", name, "-hosts", "127.0.0.1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tlsring certs: %v\n%s", err, out)
		}
		port, err := freeUDPPort()
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = &peerProc{name: addr(port), admin: addr(freeTCPPort(t)), memcached: addr(freeTCPPort(t))}
		members = append(members, procs[i].name)
	}
	for i, pp := range procs {
		name := fmt.Sprintf("%s%d", tag, i)
		pp.args = []string{"peer",
			"-listen", pp.name,
			"-members", strings.Join(members, ","),
			"-cert", filepath.Join(dir, name+".pem"),
			"-key", filepath.Join(dir, name+"-key.pem"),
			"-ca", filepath.Join(dir, "ca.pem"),
			"-admin", pp.admin,
			"-memcached", pp.memcached,
			"-log-level", "debug",
		}
		pp.args = append(pp.args, extra...)
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
	for _, pp := range procs {
		pp.waitReady(t, 30*time.Second)
	}
	return procs
}

// apacheProc is one Apache httpd in single-process mode (-X).
type apacheProc struct {
	name   string
	addr   string
	dir    string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// startApache runs Apache with a self-contained configuration in a
// directory of its own: TLS on addr with certFile/keyFile, sessions in
// the memcached server at cache, tickets off, protocol one of "TLSv1.2"
// or "TLSv1.3".
func startApache(t *testing.T, name, certFile, keyFile, cache, protocol string) *apacheProc {
	t.Helper()
	// Not t.TempDir, whose parent only its owner may enter: Apache's
	// process serves the pages after it drops privileges.
	dir, err := os.MkdirTemp("", "tlsring-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "htdocs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htdocs", "index.html"), []byte("apache "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ap := &apacheProc{name: name, addr: addr(freeTCPPort(t)), dir: dir, out: &syncBuffer{}}
	var conf strings.Builder
	fmt.Fprintf(&conf, `ServerRoot %[1]q
ServerName localhost
DefaultRuntimeDir %[1]q
PidFile %[2]q
ErrorLog %[3]q
LogLevel info ssl:debug socache_memcache:debug
`, dir, filepath.Join(dir, "httpd.pid"), filepath.Join(dir, "error.log"))
	for _, m := range []string{"mpm_prefork", "authz_core", "socache_memcache", "ssl"} {
		fmt.Fprintf(&conf, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	if os.Geteuid() == 0 {
		// Apache will not serve as root; it reads the configuration,
		// certificate and key as root before it drops privileges.
		conf.WriteString("User www-data\nGroup www-data\n")
	}
	fmt.Fprintf(&conf, `Listen %[1]s
DocumentRoot %[2]q
<Directory />
  Require all granted
</Directory>
SSLEngine on
SSLCertificateFile %[3]q
SSLCertificateKeyFile %[4]q
SSLProtocol -all +%[5]s
SSLSessionTickets off
SSLSessionCache memcache:%[6]s
SSLSessionCacheTimeout 300
`, ap.addr, filepath.Join(dir, "htdocs"), certFile, keyFile, protocol, cache)
	confFile := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// -X: one process in the foreground (it still drops privileges), so
	// SIGKILL leaves no child behind.
	ap.cmd = exec.Command(apacheBin, "-X", "-f", confFile)
	ap.cmd.Env = append(os.Environ(), "LANG=C")
	ap.cmd.Stdout, ap.cmd.Stderr = ap.out, ap.out
	if err := ap.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ap.exited = make(chan error, 1)
	cmd, exited := ap.cmd, ap.exited
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		ap.cmd.Process.Kill()
		<-ap.exited
		if t.Failed() {
			t.Logf("apache %s output:\n%s\nerror.log:\n%s", ap.name, ap.out, ap.errorLog())
		}
	})
	waitFor(t, 10*time.Second, "apache "+name+" listening on "+ap.addr, func() (bool, string) {
		select {
		case err := <-ap.exited:
			ap.exited <- err
			t.Fatalf("apache %s exited: %v\n%s\nerror.log:\n%s", name, err, ap.out, ap.errorLog())
		default:
		}
		c, err := net.DialTimeout("tcp", ap.addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return ap
}

func (ap *apacheProc) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(ap.dir, "error.log"))
	return string(b)
}

var sessionLine = regexp.MustCompile(`(?m)^(New|Reused), (TLSv[\d.]+), Cipher is (\S+)$`)

// sClient makes one HTTPS request to ap with openssl s_client, reading the
// session from sessIn and writing the one it ends with to sessOut (either
// may be ""), and returns s_client's "New, ..."/"Reused, ..." line.
func sClient(t *testing.T, ap *apacheProc, caFile, flag, sessIn, sessOut string) string {
	t.Helper()
	return opensslSession(t, ap.addr, "/index.html", "apache "+ap.name, caFile, flag, sessIn, sessOut)
}

// opensslSession makes one HTTPS request for path to addr with openssl
// s_client (server name localhost), checks that the page names server,
// reads the session from sessIn and writes the one it ends with to sessOut
// (either may be ""), and returns s_client's "New, ..."/"Reused, ..." line.
// The Apache and nginx tests share it.
func opensslSession(t *testing.T, addr, path, server, caFile, flag, sessIn, sessOut string) string {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-servername", "localhost",
		"-CAfile", caFile, "-verify_return_error", flag, "-ign_eof"}
	if sessIn != "" {
		args = append(args, "-sess_in", sessIn)
	}
	if sessOut != "" {
		args = append(args, "-sess_out", sessOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader("GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	out := stdout.String()
	if !strings.Contains(out, server) {
		t.Fatalf("openssl s_client to %s: no page in the answer:\n%s\nstderr:\n%s", server, out, &stderr)
	}
	m := sessionLine.FindString(out)
	if m == "" {
		t.Fatalf("openssl s_client to %s: no New/Reused line:\n%s", server, out)
	}
	if sessOut != "" {
		if fi, err := os.Stat(sessOut); err != nil || fi.Size() == 0 {
			t.Fatalf("openssl s_client wrote no session to %s: %v", sessOut, err)
		}
	}
	return m
}

// memcachedCount is a memcached-face counter of pp.
func memcachedCount(t *testing.T, pp *peerProc, command, result string) float64 {
	t.Helper()
	return metric(t, "http://"+pp.admin+"/metrics", "tlsring_memcached_commands_total", "command", command, "result", result)
}

func TestApache(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs tlsring peers and Apache httpd")
	}
	testenv.Program(t, apacheBin, "apache2")
	for _, m := range []string{"mpm_prefork", "authz_core", "socache_memcache", "ssl"} {
		testenv.File(t, filepath.Join(apacheModules, "mod_"+m+".so"), "apache2")
	}
	testenv.Program(t, "openssl", "openssl") // s_client
	bin := tlsringBinary(t)
	dir := t.TempDir() // Apache reads the certificate and key here before it drops privileges
	ring := startRing(t, bin, dir, "p", 2)
	other := startRing(t, bin, dir, "q", 1) // a ring of its own: the negative control

	webCA, err := certgen.NewCA("apache test CA", time.Hour)
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
	certFile, keyFile, caFile := filepath.Join(dir, "web.pem"), filepath.Join(dir, "web-key.pem"), filepath.Join(dir, "web-ca.pem")
	for f, b := range map[string][]byte{certFile: certgen.CertPEM(web.Cert), keyFile: keyPEM, caFile: certgen.CertPEM(webCA.Cert)} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct{ protocol, flag string }{
		{"TLSv1.2", "-tls1_2"},
		{"TLSv1.3", "-tls1_3"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			a := startApache(t, "A", certFile, keyFile, ring[0].memcached, tc.protocol)
			b := startApache(t, "B", certFile, keyFile, ring[1].memcached, tc.protocol)
			c := startApache(t, "C", certFile, keyFile, other[0].memcached, tc.protocol)

			setsBefore := memcachedCount(t, ring[0], "set", "stored")
			hitsBefore := memcachedCount(t, ring[1], "get", "hit")
			sess := filepath.Join(t.TempDir(), "session.pem")
			start := time.Now()
			line := sClient(t, a, caFile, tc.flag, "", sess)
			t.Logf("apache A, full handshake: %s (%v)", line, time.Since(start))
			if !strings.HasPrefix(line, "New, "+tc.protocol) {
				t.Fatalf("first handshake with apache A: %q, want New, %s", line, tc.protocol)
			}
			// Apache A stored the session through peer 0's face.
			waitFor(t, 5*time.Second, "a memcached set on "+ring[0].name, func() (bool, string) {
				v := memcachedCount(t, ring[0], "set", "stored")
				return v > setsBefore, fmt.Sprint("sets stored: ", v)
			})

			start = time.Now()
			line = sClient(t, b, caFile, tc.flag, sess, "")
			t.Logf("apache B, session of A: %s (%v)", line, time.Since(start))
			if !strings.HasPrefix(line, "Reused, "+tc.protocol) {
				t.Fatalf("apache B did not resume apache A's session through the ring: %q", line)
			}
			if v := memcachedCount(t, ring[1], "get", "hit"); v <= hitsBefore {
				t.Errorf("%s: memcached get hits %v -> %v, want more", ring[1].name, hitsBefore, v)
			}

			// Negative control: Apache C keeps its sessions in another ring,
			// which has never seen A's session.
			missesBefore := memcachedCount(t, other[0], "get", "miss")
			line = sClient(t, c, caFile, tc.flag, sess, "")
			t.Logf("apache C (another ring), session of A: %s", line)
			if !strings.HasPrefix(line, "New, "+tc.protocol) {
				t.Fatalf("apache C, outside the ring, resumed apache A's session: %q", line)
			}
			if v := memcachedCount(t, other[0], "get", "miss"); v <= missesBefore {
				t.Errorf("%s: memcached get misses %v -> %v, want more", other[0].name, missesBefore, v)
			}
		})
	}
	if t.Failed() {
		return
	}
	// Apache spoke only commands the face answers as memcached would.
	for _, pp := range append(ring, other...) {
		body := metricsBody(t, pp.admin)
		for line := range strings.Lines(body) {
			if !strings.HasPrefix(line, "tlsring_memcached_commands_total{") {
				continue
			}
			t.Logf("%s: %s", pp.name, strings.TrimSpace(line))
			if !goodResult.MatchString(line) {
				t.Errorf("%s: Apache got an unexpected answer: %s", pp.name, line)
			}
		}
	}
}

var goodResult = regexp.MustCompile(`command="(get|set|delete)",member="[^"]+",result="(hit|miss|stored|deleted|not_found)"`)
