// Tests of one connection's life over real TCP: replies delivered at EOF,
// clients that stall cut off and counted, gets that fail half-way.

package memcache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address src (any of
// 127.0.0.0/8 works on Linux), so that the server sees another source.
func dialFrom(t *testing.T, src, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t, c, bufio.NewReader(c)}
}

// readAll reads until EOF (or the connection's deadline).
func (rc *rawConn) readAll() string {
	rc.t.Helper()
	b, err := io.ReadAll(rc.r)
	if err != nil {
		rc.t.Fatalf("read %q, then %v", b, err)
	}
	return string(b)
}

// TestServerFlushesAtEOF reproduces a client that half-closes right after
// its last command: every reply must reach it (the face used to drop the
// replies still buffered when it read EOF).
func TestServerFlushesAtEOF(t *testing.T) {
	peers := newRing(t, 1)
	addr := serve(t, &Server{Backend: peers[0], Logger: quiet})
	for _, tc := range []struct{ name, in, want string }{
		// The finding, as reported: the unterminated "version" is no
		// command (memcached waits for its end of line), the rest is.
		{"reported", "set a 0 0 1\r\nx\r\nget a\r\nversion", "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n"},
		{"terminated", "set b 0 0 1\r\ny\r\nget b\r\nversion\r\n", "STORED\r\nVALUE b 0 1\r\ny\r\nEND\r\nVERSION tlsring\r\n"},
		// More replies than the connection's write buffer holds.
		{"long", strings.Repeat("get a nothing\r\n", 2000), strings.Repeat("VALUE a 0 1\r\nx\r\nEND\r\n", 2000)},
		// A data block cut short by EOF: the replies before it still arrive.
		{"short block", "get a\r\nset c 0 0 10\r\nabc", "VALUE a 0 1\r\nx\r\nEND\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(tc.in)
			if err := rc.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got := rc.readAll(); got != tc.want {
				t.Fatalf("got %d bytes %.80q, want %d bytes %.80q", len(got), got, len(tc.want), tc.want)
			}
		})
	}
}

// logCounter is a slog handler that counts records by message.
type logCounter struct {
	mu    sync.Mutex
	count map[string]int
	attrs []string
}

func newLogCounter() *logCounter { return &logCounter{count: map[string]int{}} }

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count[r.Message]++
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value); return true })
	h.attrs = append(h.attrs, r.Message+": "+b.String())
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

// matching returns how many records have a message containing s.
func (h *logCounter) matching(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.count {
		if strings.Contains(m, s) {
			n += c
		}
	}
	return n
}

// TestServerStalledDataBlock checks that a client that announces a data
// block and holds it back is cut off after StallTimeout, not IdleTimeout,
// counted and logged, while another client goes on.
func TestServerStalledDataBlock(t *testing.T) {
	peers := newRing(t, 1)
	logs := newLogCounter()
	m := NewMetrics(nil)
	addr := serve(t, &Server{Backend: peers[0], Logger: slog.New(logs), Metrics: m, StallTimeout: 200 * time.Millisecond})
	staller := dialRaw(t, addr)
	staller.send("get a\r\nset k 0 0 1000\r\nonly part of it")
	other := dialRaw(t, addr)
	start := time.Now()
	staller.expect("END\r\n")
	staller.expectClosed()
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("cut off after %v", d)
	}
	other.send("version\r\n")
	other.expect("VERSION tlsring\r\n")
	if v := value(m.stalled.WithLabelValues(stallData)); v != 1 {
		t.Errorf("stalled{during=data} = %v, want 1", v)
	}
	if n := logs.matching("did not send the data block"); n != 1 {
		t.Errorf("%d stall log lines, want 1: %v", n, logs.attrs)
	}
}

// failingBackend fails Gets of keys starting with "fail".
type failingBackend struct{ mapBackend }

func (b *failingBackend) Get(ctx context.Context, k []byte) ([]byte, error) {
	if bytes.HasPrefix(k, []byte("fail")) {
		return nil, errors.New("backend unavailable")
	}
	return b.mapBackend.Get(ctx, k)
}

// TestServerGetFailsHalfway pins down multi-key gets whose lookups fail:
// before any hit went out the error is the answer, after one it is a miss.
func TestServerGetFailsHalfway(t *testing.T) {
	b := &failingBackend{mapBackend{m: map[string][]byte{"a": []byte("1")}}}
	m := NewMetrics(nil)
	addr := serve(t, &Server{Backend: b, Logger: quiet, Metrics: m})
	rc := dialRaw(t, addr)
	rc.send("get fail\r\n")
	rc.expect("SERVER_ERROR backend unavailable\r\n")
	rc.send("get nothing fail a\r\n")
	rc.expect("SERVER_ERROR backend unavailable\r\n")
	rc.send("get a fail a\r\n")
	rc.expect("VALUE a 0 1\r\n1\r\nVALUE a 0 1\r\n1\r\nEND\r\n")
	if v := value(m.commands.WithLabelValues("get", "error")); v != 3 {
		t.Errorf("get errors = %v, want 3", v)
	}
}
