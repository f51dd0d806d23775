// Tests of who the Server admits: idle connections from one source, or
// from several, must not lock another source out.

package memcache

import (
	"log/slog"
	"testing"
	"time"
)

// openIdle opens n connections from src, checks that each is served, and
// leaves them idle.
func openIdle(t *testing.T, src, addr string, n int) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, n)
	for i := range conns {
		rc := dialFrom(t, src, addr)
		rc.send("version\r\n")
		rc.expect("VERSION tlsring\r\n")
		conns[i] = rc
	}
	return conns
}

// TestServerOneSourceCannotLockOut reproduces 1,024 idle connections from
// one address against the default limits: they used to fill the face for
// the 5-minute idle timeout, refusing everyone.
func TestServerOneSourceCannotLockOut(t *testing.T) {
	peers := newRing(t, 1)
	logs := newLogCounter()
	m := NewMetrics(nil)
	s := &Server{Backend: peers[0], Logger: slog.New(logs), Metrics: m}
	addr := serve(t, s)
	perSource := DefaultMaxConns / 2
	start := time.Now()
	openIdle(t, "127.0.0.1", addr, perSource)
	// The attacker's next connections are refused, with a reason.
	for range DefaultMaxConns - perSource {
		rc := dialFrom(t, "127.0.0.1", addr)
		rc.expect("SERVER_ERROR too many connections from your address\r\n")
		rc.expectClosed()
	}
	if v := value(m.refusals.WithLabelValues(reasonPerSource)); int(v) != DefaultMaxConns-perSource {
		t.Errorf("per-source refusals = %v, want %d", v, DefaultMaxConns-perSource)
	}
	// Refusals are logged, but at most one line per interval.
	if n, most := logs.matching("refused a connection"), 1+int(time.Since(start)/logInterval); n < 1 || n > most {
		t.Errorf("%d refusal log lines for %d refusals in %v, want 1 to %d", n, DefaultMaxConns-perSource, time.Since(start).Round(time.Millisecond), most)
	}
	// Another source is served, on several connections.
	for range 3 {
		rc := dialFrom(t, "127.0.0.2", addr)
		rc.send("set k 0 0 1\r\nv\r\nget k\r\n")
		rc.expect("STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n")
	}
}

// TestServerReclaimsIdle fills the face from two sources, each within its
// limit: a third source still gets in, by closing an idle connection of the
// busiest source, and a busy connection is never the one closed.
func TestServerReclaimsIdle(t *testing.T) {
	peers := newRing(t, 1)
	m := NewMetrics(nil)
	s := &Server{Backend: peers[0], Logger: quiet, Metrics: m, MaxConns: 8, MaxConnsPerSource: 5, reclaimIdle: time.Nanosecond}
	addr := serve(t, s)
	a := openIdle(t, "127.0.0.1", addr, 5)
	b := openIdle(t, "127.0.0.3", addr, 3)
	// One of A's connections is busy: it announced a data block (the
	// reply to its get comes once the face waits for that block).
	a[0].send("get k\r\nset busy 0 0 4\r\nbu")
	a[0].expect("END\r\n")
	c := dialFrom(t, "127.0.0.2", addr)
	c.send("version\r\n")
	c.expect("VERSION tlsring\r\n")
	if v := value(m.reclaimed); v != 1 {
		t.Fatalf("reclaimed = %v, want 1", v)
	}
	// The one closed is the longest idle of A (the busiest source), not
	// the busy one.
	a[0].send("sy\r\n")
	a[0].expect("STORED\r\n")
	a[1].expectClosed()
	for _, rc := range a[2:] {
		rc.send("version\r\n")
		rc.expect("VERSION tlsring\r\n")
	}
	for _, rc := range b {
		rc.send("version\r\n")
		rc.expect("VERSION tlsring\r\n")
	}
	if v := value(m.conns); v != 8 {
		t.Errorf("connections gauge = %v, want 8", v)
	}
}
