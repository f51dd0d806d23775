// In-process tests of the subcommands' flags, help, errors and certs, and
// the shared helpers of the end-to-end tests (building the binary).

package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tlsring-test-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := 0
	func() {
		defer os.RemoveAll(dir)
		// goleak's VerifyTestMain calls os.Exit; check leaks by hand so
		// the binary directory is removed.
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				os.Stderr.WriteString("goleak: " + err.Error() + "\n")
				code = 1
			}
		}
	}()
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// tlsringBinary builds the tlsring binary once per test run (with -race
// when the tests have it) and returns its path.
func tlsringBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.path = filepath.Join(binDir, "tlsring")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, ".")
		// The go command that runs these tests puts its own bin first in PATH.
		goBin, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("the go command is not in PATH: %w", err)
			return
		}
		build.out, build.err = exec.Command(goBin, args...).CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return build.path
}

// runCmd runs the tlsring command line in-process.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, sub := range []string{"demo", "peer", "certs"} {
		code, out, errs := runCmd(sub, "-h")
		if code != 0 || !strings.Contains(out, "Usage: tlsring "+sub) || errs != "" {
			t.Errorf("tlsring %s -h: code %d, stdout %.80q, stderr %q", sub, code, out, errs)
		}
	}
	if code, out, _ := runCmd("-h"); code != 0 || !strings.Contains(out, "peer") || strings.Contains(out, demoClientsCmd) {
		t.Errorf("tlsring -h: code %d, %q", code, out)
	}
	if code, _, errs := runCmd("nope"); code != exitUsage || !strings.Contains(errs, `unknown subcommand "nope"`) {
		t.Errorf("tlsring nope: code %d, %q", code, errs)
	}
	if code, _, errs := runCmd("peer", "-bogus"); code != exitUsage || errs != "tlsring peer: flag provided but not defined: -bogus (see 'tlsring peer -h')\n" {
		t.Errorf("tlsring peer -bogus: code %d, %q", code, errs)
	}
	if code, _, errs := runCmd("demo", "-tls", "1.1"); code != exitUsage || errs != "tlsring demo: -tls \"1.1\": want 1.2 or 1.3\n" {
		t.Errorf("tlsring demo -tls 1.1: code %d, %q", code, errs)
	}
}

func TestCerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errs := runCmd("certs", "-dir", dir, "-name", "m1", "-hosts", "127.0.0.1, node1.example")
	if code != 0 {
		t.Fatalf("certs: code %d: %s", code, errs)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "m1.pem", "m1-key.pem"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("output %q does not name %s", out, f)
		}
	}
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "m2"); code != 0 {
		t.Fatalf("second member: code %d: %s", code, errs)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(caBefore, caAfter) {
		t.Fatal("the second member's run changed the CA")
	}
	for _, f := range []string{"ca-key.pem", "m1-key.pem", "m2-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	// The member certificate chains to the CA and carries the SANs.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caAfter)
	pemBytes, _ := os.ReadFile(filepath.Join(dir, "m1.pem"))
	b, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "node1.example"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("m1.pem for %s: %v", host, err)
		}
	}
	// No overwriting a member key.
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "m1-key.pem"))
	code, _, errs = runCmd("certs", "-dir", dir, "-name", "m1")
	if code != exitError || !strings.Contains(errs, "m1-key.pem already exists; refusing to overwrite") {
		t.Errorf("overwrite: code %d, %q", code, errs)
	}
	keyAfter, _ := os.ReadFile(filepath.Join(dir, "m1-key.pem"))
	if !bytes.Equal(keyBefore, keyAfter) {
		t.Error("the member key changed")
	}
	// A CA key without its certificate is an error, not a new CA.
	os.Remove(filepath.Join(dir, "ca.pem"))
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "m3"); code != exitError || !strings.Contains(errs, "ca-key.pem exists but") {
		t.Errorf("half a CA: code %d, %q", code, errs)
	}
	if code, _, errs := runCmd("certs", "-dir", dir); code != exitUsage || !strings.Contains(errs, "-name is required") {
		t.Errorf("no name: code %d, %q", code, errs)
	}
	// A host that is neither an IP address nor a DNS name writes nothing.
	for _, h := range []string{"not a host!", "-lead.example", "a..b", "under_score.example", strings.Repeat("x", 64) + ".example"} {
		code, _, errs := runCmd("certs", "-dir", dir, "-name", "m4", "-hosts", "127.0.0.1,"+h)
		if code != exitUsage || !strings.Contains(errs, "want an IP address or a DNS name") {
			t.Errorf("-hosts %q: code %d, %q", h, code, errs)
		}
		if _, err := os.Stat(filepath.Join(dir, "m4.pem")); err == nil {
			t.Fatalf("-hosts %q wrote m4.pem", h)
		}
	}
	for _, h := range []string{"localhost", "m1.example.com.", "::1", "xn--bcher-kva.example"} {
		if err := checkHost(h); err != nil {
			t.Errorf("checkHost(%q) = %v", h, err)
		}
	}
}

func TestPeerFlags(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "a", "-hosts", "127.0.0.1"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runCmd("certs", "-dir", dir, "-name", "other", "-hosts", "10.9.9.9"); code != 0 {
		t.Fatal(errs)
	}
	cert, key, ca := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a-key.pem"), filepath.Join(dir, "ca.pem")
	env := map[string]string{}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	parse := func(args ...string) (*peerConfig, error) {
		var out, errs bytes.Buffer
		return parsePeerFlags(args, lookup, &out, &errs)
	}
	base := []string{"-listen", "127.0.0.1:7001", "-cert", cert, "-key", key, "-ca", ca}

	// Environment variables fill in flags; flags win.
	env["TLSRING_MEMBERS"] = "127.0.0.1:7001,127.0.0.1:7002"
	env["TLSRING_MAX_BYTES"] = "16MiB"
	env["TLSRING_MEMCACHED"] = "unix:/tmp/x.sock"
	cfg, err := parse(append(base, "-max-bytes", "1024")...)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.members) != 2 || cfg.maxBytes != 1024 || cfg.memcached != "unix:/tmp/x.sock" {
		t.Errorf("config %+v", cfg)
	}
	if cfg.memcachedMode != 0o660 || cfg.memcachedConns != 1024 || cfg.memcachedPerSrc != 0 {
		t.Errorf("memcached defaults: mode %v, max conns %d, per source %d", cfg.memcachedMode, cfg.memcachedConns, cfg.memcachedPerSrc)
	}
	env["TLSRING_MEMCACHED_SOCKET_MODE"] = "600"
	if cfg, err = parse(append(base, "-memcached-max-conns", "64", "-memcached-max-conns-per-source", "8")...); err != nil {
		t.Fatal(err)
	}
	if cfg.memcachedMode != 0o600 || cfg.memcachedConns != 64 || cfg.memcachedPerSrc != 8 {
		t.Errorf("memcached flags: mode %v, max conns %d, per source %d", cfg.memcachedMode, cfg.memcachedConns, cfg.memcachedPerSrc)
	}
	clear(env)
	env["TLSRING_LISTEN"] = "127.0.0.1:7001"
	env["TLSRING_CERT"], env["TLSRING_KEY"], env["TLSRING_CA"] = cert, key, ca
	if cfg, err = parse(); err != nil || cfg.listen != "127.0.0.1:7001" || len(cfg.members) != 1 {
		t.Errorf("from the environment: %+v, %v", cfg, err)
	}
	if cfg.maxBytes != 64<<20 {
		t.Errorf("-max-bytes default %d, want 64 MiB", cfg.maxBytes)
	}
	clear(env)

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "-listen is required (host:port; or set TLSRING_LISTEN)"},
		{[]string{"-listen", "127.0.0.1"}, nil, `-listen "127.0.0.1": address 127.0.0.1: missing port in address`},
		{[]string{"-listen", "127.0.0.1:0"}, nil, `-listen "127.0.0.1:0": want a port between 1 and 65535`},
		{append(base, "-members", "127.0.0.1:7002,127.0.0.1:7003"), nil, "-members 127.0.0.1:7002,127.0.0.1:7003 does not include -listen 127.0.0.1:7001"},
		{[]string{"-listen", "127.0.0.1:7001", "-cert", "/nonexistent/a.pem", "-key", key, "-ca", ca}, nil, "-cert, -key, -ca: transport: reading the member certificate: open /nonexistent/a.pem: no such file or directory"},
		{[]string{"-listen", "127.0.0.1:7001", "-cert", cert, "-key", "/nope", "-ca", ca}, nil, "reading the member key: open /nope: no such file or directory"},
		{[]string{"-listen", "127.0.0.1:7001", "-cert", cert, "-key", key, "-ca", key}, nil, "cluster CA " + key + ": no PEM certificate found"},
		{[]string{"-listen", "127.0.0.1:7001", "-cert", cert, "-key", filepath.Join(dir, "other-key.pem"), "-ca", ca}, nil, "tls: private key does not match public key"},
		{[]string{"-listen", "127.0.0.1:7001", "-cert", filepath.Join(dir, "other.pem"), "-key", filepath.Join(dir, "other-key.pem"), "-ca", ca}, nil, "is not valid for 127.0.0.1, the host of this member's address 127.0.0.1:7001"},
		{[]string{"-listen", "127.0.0.1:7001", "-key", key, "-ca", ca}, nil, "-cert is required"},
		{append(base, "-log-level", "loud"), nil, `-log-level "loud": want debug, info, warn or error`},
		{append(base, "-log-format", "xml"), nil, `-log-format "xml": want text or json`},
		{base, map[string]string{"TLSRING_LEAVE_TIMEOUT": "soon"}, `TLSRING_LEAVE_TIMEOUT="soon": parse error`},
		{append(base, "-memcached", "nowhere"), nil, `-memcached "nowhere": want host:port or unix:/path`},
		{append(base, "-memcached-default-ttl", "0s"), nil, "-memcached-default-ttl 0s: want a duration between 1s and 720h0m0s"},
		{append(base, "-memcached-socket-mode", "0999"), nil, `invalid value "0999" for flag -memcached-socket-mode: want permission bits in octal such as 0660 or 0600`},
		{append(base, "-memcached-socket-mode", "0"), nil, "want permission bits in octal"},
		{append(base, "-memcached-max-conns", "0"), nil, "-memcached-max-conns 0: want 1 or more"},
		{append(base, "-max-bytes", "0"), nil, "-max-bytes 0: want a positive size such as 64MiB (the default)"},
		{base, map[string]string{"TLSRING_MEMCACHED_MAX_CONNS_PER_SOURCE": "-1"}, "-memcached-max-conns-per-source -1: want 0 (half of -memcached-max-conns) or more"},
	} {
		clear(env)
		for k, v := range tc.env {
			env[k] = v
		}
		_, err := parse(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
	// The whole command: one line naming the problem, exit status 1.
	code, _, errs := runCmd("peer", "-listen", "127.0.0.1:7001", "-cert", "/x", "-key", key, "-ca", ca)
	if code != exitError || errs != "tlsring peer: -cert, -key, -ca: transport: reading the member certificate: open /x: no such file or directory\n" {
		t.Errorf("peer with a missing certificate: code %d, %q", code, errs)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "64MiB": 64 << 20, "64M": 64 << 20, "2g": 2 << 30, "512 KiB": 512 << 10, "10B": 10} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5M", "99999999999G"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) succeeded: %d", in, b)
		}
	}
	b := byteSize(64 << 20)
	if b.String() != "64MiB" {
		t.Errorf("String = %q", b.String())
	}
}

// TestJSONLogDurations: JSON logs write durations as text logs do ("1.5s"),
// not as nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("x", "down_for", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), `"down_for":"1.5s"`) {
		t.Errorf("JSON log %q, want \"down_for\":\"1.5s\"", buf.String())
	}
}

func TestVersion(t *testing.T) {
	code, out, errs := runCmd("version")
	if code != exitOK || !strings.HasPrefix(out, "tlsring ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: code %d, %q, %q", code, out, errs)
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T16:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "tlsring v1.2.0 go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + " commit 0123abcd (2026-12-01T16:00:00Z, modified)"
	if got := versionLine(bi); got != want {
		t.Errorf("versionLine = %q, want %q", got, want)
	}
	if got := versionLine(nil); !strings.HasPrefix(got, "tlsring unknown "+runtime.Version()) {
		t.Errorf("versionLine(nil) = %q", got)
	}
}
