// peer_tls_test.go: `tlsring peer -tls-listen`: its flags, and a session
// issued by one member's TLS server resumed by another's, over real
// processes.

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport"
)

func TestPeerTLSFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "a", "-hosts", "127.0.0.1"); code != 0 {
		t.Fatal(errs)
	}
	cert, key, ca := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a-key.pem"), filepath.Join(dir, "ca.pem")
	parse := func(args ...string) (*peerConfig, error) {
		var out, errs bytes.Buffer
		none := func(string) (string, bool) { return "", false }
		return parsePeerFlags(append([]string{"-listen", "127.0.0.1:7001", "-cert", cert, "-key", key, "-ca", ca}, args...), none, &out, &errs)
	}
	cfg, err := parse("-tls-listen", "127.0.0.1:8443", "-tls-deadline", "5ms")
	if err != nil {
		t.Fatal(err)
	}
	if f := cfg.tlsFront; f.listen != "127.0.0.1:8443" || f.cert != cert || f.key != key || f.deadline != 5*time.Millisecond {
		t.Errorf("-tls-listen without -tls-cert: %+v, want the member's certificate", f)
	}
	if cfg, err = parse(); err != nil || cfg.tlsFront.listen != "" {
		t.Errorf("no -tls-listen: %+v, %v", cfg.tlsFront, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-cert", cert, "-tls-key", key}, "-tls-cert and -tls-key need -tls-listen"},
		{[]string{"-tls-listen", "8443"}, `-tls-listen "8443": want host:port`},
		{[]string{"-tls-listen", ":8443", "-tls-cert", cert}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-listen", ":8443", "-tls-deadline", "-1s"}, "-tls-deadline -1s: want 0 (the default) or a positive duration"},
	} {
		if _, err := parse(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	// A key pair that does not load is named when the member starts.
	code, _, errs := runCmd("peer", "-listen", "127.0.0.1:7001", "-cert", cert, "-key", key, "-ca", ca,
		"-tls-listen", "127.0.0.1:0", "-tls-cert", ca, "-tls-key", ca)
	if code != exitError || !strings.Contains(errs, "-tls-cert "+ca+", -tls-key "+ca+": tls:") {
		t.Errorf("peer with a bad -tls-key: code %d, %q", code, errs)
	}
}

// tlsListenRE finds the address the TLS server logs at start.
var tlsListenRE = regexp.MustCompile(`msg="TLS server serving" tls_listen=(\S+)`)

// tlsAddr waits for the member's TLS server address in its logs.
func (pp *peerProc) tlsAddr(t *testing.T) string {
	t.Helper()
	var a string
	waitFor(t, 20*time.Second, pp.name+" TLS server", func() (bool, string) {
		m := tlsListenRE.FindStringSubmatch(pp.logs.String())
		if m != nil {
			a = m[1]
		}
		return m != nil, "no TLS server address logged"
	})
	return a
}

func TestPeerTLSListen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := tlsringBinary(t)
	dir := t.TempDir()
	// A generous lookup deadline: the test checks where sessions resume,
	// not how fast, on a loaded machine (and under -race).
	procs := startRing(t, bin, dir, "t", 2, "-tls-listen", "127.0.0.1:0", "-tls-deadline", "2s")
	addrs := []string{procs[0].tlsAddr(t), procs[1].tlsAddr(t)}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := transport.ParseCertPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	for i, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		c := &demoClient{cache: newOfferRecorder()}
		c.conf = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version, ClientSessionCache: c.cache}
		v, err := handshakeOnce(context.Background(), c, addrs[0])
		if err != nil || v.resumed {
			t.Fatalf("%s: first handshake on member 0: %+v, %v", tls.VersionName(version), v, err)
		}
		// The session is stored asynchronously: wait for the write.
		waitFor(t, 20*time.Second, "the session write", func() (bool, string) {
			n := metric(t, "http://"+procs[0].admin+"/metrics", "tlsring_tlsglue_writes_total", `result="ok"`)
			return n >= float64(i+1), fmt.Sprint(n, " writes")
		})
		v, err = handshakeOnce(context.Background(), c, addrs[1])
		if err != nil || !v.offered || !v.resumed {
			t.Errorf("%s: member 1 did not resume member 0's session: %+v, %v", tls.VersionName(version), v, err)
		}
	}
	if hits := metric(t, "http://"+procs[1].admin+"/metrics", "tlsring_tlsglue_lookups_total", `result="hit"`); hits != 2 {
		t.Errorf("member 1 counted %v lookup hits, want 2", hits)
	}
}
