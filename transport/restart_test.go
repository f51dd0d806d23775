// Tests of members that stop, crash and restart at the same address: a
// stale connection is replaced, not reused, and calls reach the new
// incarnation without waiting for anything in the background.

package transport

import (
	"errors"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// restartPair starts a caller and a member whose certificate survives a
// restart, connected to each other. The caller's RedialWait is redial.
func restartPair(t *testing.T, redial time.Duration) (ca *transporttest.CA, a, b *member, restart func() *member) {
	ca = transporttest.NewCA(t)
	tlsB := ca.MemberTLS(t, "127.0.0.1")
	a = startMember(t, ca, func(c *QUICConfig) { c.RedialWait = redial })
	b = startMember(t, ca, func(c *QUICConfig) { c.TLS = tlsB })
	addr := b.Addr()
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), addr, &Request{Op: OpPing}); err != nil {
		t.Fatal(err)
	}
	restart = func() *member {
		return startMember(t, ca, func(c *QUICConfig) { c.Addr, c.TLS = addr, tlsB })
	}
	return ca, a, b, restart
}

// TestRestartedMemberAnswersTheNextCall: a member closes (its callers see
// the close) and comes back at the same address; the first call made
// afterwards succeeds, on a new connection, without retries by the caller
// and without a probe in between. The redial wait is generous: on a loaded
// machine a handshake can take longer than the default 50ms.
func TestRestartedMemberAnswersTheNextCall(t *testing.T) {
	_, a, b, restart := restartPair(t, 3*time.Second)
	addr := b.Addr()
	old := liveConn(t, a, addr)
	b.Close()
	<-old.dead // the close reached the caller
	b2 := restart()
	b2.store.put("k", []byte("new incarnation"))
	start := time.Now()
	r, err := a.Call(ctxTimeout(t, 5*time.Second), addr, &Request{Op: OpGet, Key: []byte("k")})
	if err != nil || string(r.Value) != "new incarnation" {
		t.Fatalf("first call after the restart: %v %+v", err, r)
	}
	t.Logf("first call after the restart took %v", time.Since(start))
	if liveConn(t, a, addr) == old {
		t.Fatal("the closed connection is still in use")
	}
}

// TestCrashedMemberIsResetStatelessly: a member that vanishes without
// closing its connections comes back at the same address. The caller's
// next call goes out on the stale connection; the new incarnation resets
// it (same stateless reset key), and the call is retried once on a fresh
// connection and succeeds, well before the idle timeout.
func TestCrashedMemberIsResetStatelessly(t *testing.T) {
	_, a, b, restart := restartPair(t, time.Second)
	addr := b.Addr()
	old := liveConn(t, a, addr)
	b.tr.Close() // drops every connection without a CONNECTION_CLOSE
	b.udp.Close()
	b.Close()
	if old.isDead.Load() {
		t.Fatal("connection noticed a crash that sent nothing")
	}
	b2 := restart()
	b2.store.put("k", []byte("new incarnation"))
	start := time.Now()
	r, err := a.Call(ctxTimeout(t, 3*time.Second), addr, &Request{Op: OpGet, Key: []byte("k")})
	if err != nil || string(r.Value) != "new incarnation" {
		t.Fatalf("call on the stale connection: %v %+v", err, r)
	}
	t.Logf("call on the stale connection answered after %v", time.Since(start))
	if !old.isDead.Load() || !old.stale() {
		t.Fatalf("old connection: dead %v, error %v; want reset", old.isDead.Load(), old.deadErr)
	}
	if liveConn(t, a, addr) == old {
		t.Fatal("the reset connection is still in use")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("reset handled after %v", d)
	}
}

// TestClosedMemberFailsFast: once a member closes (its CONNECTION_CLOSE
// reaches us), calls to it fail with ErrUnreachable within the redial
// wait (plus slack for a loaded machine), not at their 10s deadline, and the member is reached again soon after
// it comes back, by calls alone.
func TestClosedMemberFailsFast(t *testing.T) {
	_, a, b, restart := restartPair(t, 0)
	addr := b.Addr()
	conn := liveConn(t, a, addr)
	b.Close()
	<-conn.dead // the close reached us
	a.mu.Lock()
	p := a.remotes[addr]
	a.mu.Unlock()
	p.mu.Lock()
	wait := p.redialWait()
	p.mu.Unlock()
	for i := range 5 {
		start := time.Now()
		_, err := a.Call(ctxTimeout(t, 10*time.Second), addr, &Request{Op: OpGet, Key: []byte("k")})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("call %d to a closed member: %v", i, err)
		}
		if d := time.Since(start); d > wait+2*time.Second {
			t.Fatalf("call %d to a closed member took %v (redial wait %v)", i, d, wait)
		}
	}
	// Back at the same address: calls, failing fast meanwhile, reach it
	// once the dial that was in progress or the next one gets through.
	restart()
	start := time.Now()
	failed := 0
	for {
		_, err := a.Call(ctxTimeout(t, 2*time.Second), addr, &Request{Op: OpPing})
		if err == nil {
			break
		}
		failed++
		if !errors.Is(err, ErrUnreachable) || time.Since(start) > 3*time.Second {
			t.Fatalf("call after the restart: %v after %v", err, time.Since(start))
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	t.Logf("reached again %v after the restart, %d calls failing fast before", time.Since(start), failed)
}
