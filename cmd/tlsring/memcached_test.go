// Tests of `tlsring peer`'s memcached-face flags with real processes: a
// Unix socket with the mode asked for, a warning for a bind beyond
// loopback, and the connection limits.

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/memcache"
)

// startSolo starts a one-member `tlsring peer` with extra flags and waits
// until it serves.
func startSolo(t *testing.T, extra ...string) *peerProc {
	t.Helper()
	bin := tlsringBinary(t)
	dir := t.TempDir()
	if out, err := runBin(bin, "certs", "-dir", dir, "-name", "solo", "-hosts", "127.0.0.1"); err != nil {
		t.Fatalf("tlsring certs: %v\n%s", err, out)
	}
	port, err := freeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	pp := &peerProc{name: addr(port), admin: addr(freeTCPPort(t))}
	pp.args = append([]string{"peer", "-listen", pp.name, "-admin", pp.admin,
		"-cert", filepath.Join(dir, "solo.pem"), "-key", filepath.Join(dir, "solo-key.pem"), "-ca", filepath.Join(dir, "ca.pem")}, extra...)
	pp.start(t, bin)
	t.Cleanup(func() {
		pp.kill()
		if t.Failed() {
			t.Logf("logs of %s:\n%s", pp.name, pp.logs)
		}
	})
	pp.waitHealthy(t)
	// /healthz answers before the memcached face listens.
	waitFor(t, 20*time.Second, pp.name+" to serve", func() (bool, string) {
		return strings.Contains(pp.logs.String(), "tlsring peer serving"), ""
	})
	return pp
}

func TestPeerMemcachedUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mc.sock")
	startSolo(t, "-memcached", "unix:"+sock, "-memcached-socket-mode", "0600")
	st, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with -rw-------", st.Mode())
	}
	c := memcache.NewClient("unix", sock)
	defer c.Close()
	if err := c.Set(t.Context(), []byte("k"), []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(t.Context(), []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

func TestPeerMemcachedLimitsAndWarning(t *testing.T) {
	port := freeTCPPort(t)
	pp := startSolo(t, "-memcached", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)), "-memcached-max-conns", "4", "-memcached-max-conns-per-source", "2")
	if !strings.Contains(pp.logs.String(), "level=WARN") || !strings.Contains(pp.logs.String(), "reachable on every interface") {
		t.Errorf("no warning for a bind on every interface in the logs:\n%s", pp.logs)
	}
	dial := func(src string) (net.Conn, *bufio.Reader) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr(port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	ask := func(c net.Conn, r *bufio.Reader) string {
		io.WriteString(c, "version\r\n")
		line, _ := r.ReadString('\n')
		return line
	}
	for range 2 {
		if got := ask(dial("127.0.0.1")); got != "VERSION tlsring\r\n" {
			t.Fatalf("connection within the per-source limit: %q", got)
		}
	}
	if got := ask(dial("127.0.0.1")); got != "SERVER_ERROR too many connections from your address\r\n" {
		t.Errorf("third connection from one source: %q", got)
	}
	if got := ask(dial("127.0.0.2")); got != "VERSION tlsring\r\n" {
		t.Errorf("connection from another source: %q", got)
	}
	url := "http://" + pp.admin + "/metrics"
	if v := metric(t, url, "tlsring_memcached_refused_connections_total", "reason", "per_source"); v != 1 {
		t.Errorf("per-source refusals = %v, want 1", v)
	}
}
