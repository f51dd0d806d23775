// Tests of Listen: Unix sockets with their mode, stale and busy socket
// files, and the warning for TCP binds beyond loopback.

package memcache

import (
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mc.sock")
	peers := newRing(t, 1)
	for _, mode := range []fs.FileMode{0, 0o600, 0o666} {
		l, err := Listen("unix:"+path, ListenConfig{SocketMode: mode, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := mode
		if want == 0 {
			want = DefaultSocketMode
		}
		if st.Mode()&fs.ModeSocket == 0 || st.Mode().Perm() != want {
			t.Errorf("mode %o: socket file mode %v, want a socket with %v", mode, st.Mode(), want)
		}
		if l.Addr().String() != path {
			t.Errorf("Addr = %q, want %q", l.Addr(), path)
		}
		// Nothing but the socket is left in the directory.
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("directory holds %d entries, want the socket only", len(ents))
		}
		addr, stop := serveOn(t, &Server{Backend: peers[0], Logger: quiet}, l)
		c := NewClient("unix", addr)
		if err := c.Set(t.Context(), []byte("k"), []byte("v"), 60e9); err != nil {
			t.Fatalf("Set over the socket: %v", err)
		}
		// A second listener on a live socket fails.
		if _, err := Listen("unix:"+path, ListenConfig{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("Listen on a socket in use: %v", err)
		}
		c.Close()
		stop()
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("socket file after Close: %v", err)
		}
	}

	// A stale socket (its listener gone without removing it) is replaced.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l, err := Listen("unix:"+path, ListenConfig{Logger: quiet})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()
	// A file that is not a socket is not touched.
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix:"+path, ListenConfig{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Errorf("the regular file now holds %q", b)
	}
}

func TestListenWarnsBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{
		{"127.0.0.1:0", false},
		{"localhost:0", false},
		{"[::1]:0", false},
		{":0", true},
		{"0.0.0.0:0", true},
	} {
		logs := newLogCounter()
		l, err := Listen(tc.addr, ListenConfig{Logger: slog.New(logs)})
		if err != nil {
			if strings.Contains(tc.addr, "::1") {
				continue // no IPv6 here
			}
			t.Fatal(err)
		}
		l.Close()
		if n := logs.matching("without authentication"); (n == 1) != tc.warn {
			t.Errorf("Listen(%q): %d warnings, want warning %v: %v", tc.addr, n, tc.warn, logs.attrs)
		}
	}
}
