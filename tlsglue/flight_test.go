// flight_test.go: concurrent lookups of one handle share one Store.Get,
// without holding any lookup past its own deadline, and never for Take.

package tlsglue

import (
	"bytes"
	"context"
	"crypto/tls"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gateStore is a memStore whose Gets wait for the gate to open (or their
// context to end), recording their contexts.
type gateStore struct {
	*memStore
	gate    chan struct{}
	entered atomic.Int64
	mu      sync.Mutex
	ctxs    []context.Context
}

func newGateStore() *gateStore {
	return &gateStore{memStore: newMemStore(), gate: make(chan struct{})}
}

func (s *gateStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	s.entered.Add(1)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.memStore.Get(ctx, key)
}

// flightSetup issues one TLS 1.2 session through a Glue on store and
// returns the Config to unwrap with and the session's ticket.
func flightSetup(t *testing.T, store *gateStore, opts Options) (*server, []byte) {
	t.Helper()
	close(store.gate) // issuing needs no Get
	srv := newServers(t, store, 1, opts)
	sess := session(t, srv[0], tls.VersionTLS12, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	store.gate = make(chan struct{})
	store.entered.Store(0)
	return srv[0], ticket
}

var flightCS = tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS12}

// inFlight counts goroutines inside singleflight's Do: a flight's leader
// and the lookups waiting for it.
func inFlight() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("singleflight.(*Group).Do("))
}

// TestFlightSharesGet: six lookups of one handle at once (a browser's
// parallel connections) make one Get, and all six resume.
func TestFlightSharesGet(t *testing.T) {
	store := newGateStore()
	srv, ticket := flightSetup(t, store, Options{Deadline: 5 * time.Second})
	cfg := srv.cfg
	const n = 6
	var wg sync.WaitGroup
	var resumed atomic.Int64
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			if ss, err := cfg.UnwrapSession(ticket, flightCS); err == nil && ss != nil {
				resumed.Add(1)
			}
		})
	}
	started.Wait()
	pollUntil(t, func() bool { return inFlight() == n || store.entered.Load() > 1 }, "all lookups in the flight")
	close(store.gate)
	wg.Wait()
	if resumed.Load() != n {
		t.Fatalf("%d of %d lookups resumed", resumed.Load(), n)
	}
	if gets := store.entered.Load(); gets != 1 {
		t.Fatalf("%d concurrent lookups of one handle made %d Gets, want 1", n, gets)
	}
	if got := value(srv.m.shared); got != n-1 {
		t.Errorf("lookups_shared_total = %v, want %d", got, n-1)
	}
}

// TestFlightJoinerDeadline: while a flight waits on a silent store under a
// long Deadline, a lookup whose handshake context ends much sooner does not
// wait for the flight: it times out at its own deadline.
func TestFlightJoinerDeadline(t *testing.T) {
	store := newGateStore()
	g, err := New(store, Options{Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	key := []byte("session key")
	leader := make(chan flightResult, 1)
	go func() { leader <- g.get(context.Background(), key) }()
	pollUntil(t, func() bool { return store.entered.Load() == 1 }, "the leader's Get")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := g.get(ctx, key)
	took := time.Since(start)
	if !r.timedOut || took > 3*time.Second {
		t.Fatalf("joiner with a 50 ms handshake context: timedOut=%v after %v (the flight runs 10 s)", r.timedOut, took)
	}
	close(store.gate)
	if lr := <-leader; lr.timedOut || !isNotFound(lr.err) {
		t.Fatalf("leader: %+v, want a plain miss", lr)
	}
}

// TestFlightDetachedFromLeader: the Get a flight makes does not end when
// its first caller's handshake is cancelled (a client hanging up), so the
// lookups that joined it still get their answer; the cancelled caller waits
// for it, within its Deadline.
func TestFlightDetachedFromLeader(t *testing.T) {
	store := newGateStore()
	g, err := New(store, Options{Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	key := []byte("k")
	store.memStore.Set(context.Background(), key, []byte("v"), time.Minute)
	parent, cancel := context.WithCancel(context.Background())
	leader := make(chan flightResult, 1)
	go func() { leader <- g.get(parent, key) }()
	pollUntil(t, func() bool { return store.entered.Load() == 1 }, "the leader's Get")
	cancel()
	store.mu.Lock()
	getCtx := store.ctxs[0]
	store.mu.Unlock()
	if err := getCtx.Err(); err != nil {
		t.Fatalf("the flight's Get context ended with its caller's: %v", err)
	}
	if _, ok := getCtx.Deadline(); !ok {
		t.Fatal("the flight's Get has no deadline")
	}
	close(store.gate)
	if r := <-leader; r.err != nil || string(r.value) != "v" {
		t.Fatalf("flight result %+v, want v", r)
	}
}

// TestFlightNotForTake: with SingleUse, every concurrent lookup Takes on its
// own, and at most one resumes.
func TestFlightNotForTake(t *testing.T) {
	store := newMemStore()
	store.Delay.Store(int64(20 * time.Millisecond))
	srv := newServers(t, store, 1, Options{SingleUse: true, Deadline: 5 * time.Second})
	sess := session(t, srv[0], tls.VersionTLS12, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	takes0 := store.Takes.Load()
	var wg sync.WaitGroup
	var resumed atomic.Int64
	for range 4 {
		wg.Go(func() {
			if ss, _ := srv[0].cfg.UnwrapSession(ticket, flightCS); ss != nil {
				resumed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := store.Takes.Load() - takes0; got != 4 {
		t.Errorf("4 single-use lookups made %d Takes, want 4", got)
	}
	if resumed.Load() != 1 {
		t.Errorf("%d of 4 single-use lookups resumed, want 1", resumed.Load())
	}
}

// pollUntil polls cond every millisecond for up to 10 s.
func pollUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
