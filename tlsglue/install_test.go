// install_test.go: option validation, composition with existing hooks,
// session lifetime, the write queue and the Glue lifecycle.

package tlsglue

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOptionsValidation(t *testing.T) {
	store := newMemStore()
	bad := []Options{
		{Deadline: -1},
		{Deadline: time.Minute},
		{Lifetime: -time.Second},
		{Lifetime: MaxLifetime + time.Second},
		{Lifetime: time.Millisecond},
		{Label: strings.Repeat("x", 256)},
		{QueueSize: -1},
		{Writers: -1},
		{WriteTimeout: -1},
	}
	for _, o := range bad {
		if err := Install(&tls.Config{}, store, o); err == nil {
			t.Errorf("Install accepted %+v", o)
		}
	}
	if err := Install(nil, store, Options{}); err == nil {
		t.Error("Install accepted a nil Config")
	}
	if err := Install(&tls.Config{}, nil, Options{}); err == nil {
		t.Error("Install accepted a nil Store")
	}
	if err := Install(&tls.Config{SessionTicketsDisabled: true}, store, Options{}); err == nil {
		t.Error("Install accepted SessionTicketsDisabled")
	}
	g, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	o := g.opts
	if o.Deadline != DefaultDeadline || o.Lifetime != DefaultLifetime || o.QueueSize != DefaultQueueSize ||
		o.Writers != DefaultWriters || o.WriteTimeout != DefaultWriteTimeout || o.Metrics == nil || o.Logger == nil {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if g.Metrics() != o.Metrics {
		t.Fatal("Metrics() is not Options.Metrics")
	}
}

// TestComposition: hooks set before Install keep working as documented.
func TestComposition(t *testing.T) {
	store := newMemStore()
	var fallbackCalls, verifyCalls, gcfcCalls atomic.Int64
	var passThrough atomic.Bool
	cfg := &tls.Config{
		UnwrapSession: func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			fallbackCalls.Add(1)
			return nil, nil
		},
		VerifyConnection: func(tls.ConnectionState) error { verifyCalls.Add(1); return nil },
	}
	other := &tls.Config{}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		gcfcCalls.Add(1)
		if passThrough.Load() {
			return other, nil
		}
		return nil, nil
	}
	g, err := New(store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Install(cfg); err != nil {
		t.Fatal(err)
	}
	// Non-handles go to the previous UnwrapSession, and are not counted.
	if ss, err := cfg.UnwrapSession([]byte("an old stateless ticket"), tls.ConnectionState{}); ss != nil || err != nil {
		t.Fatal(ss, err)
	}
	if fallbackCalls.Load() != 1 || value(g.m.lookups[lrMalformed]) != 0 {
		t.Fatalf("fallback calls %d, malformed %v", fallbackCalls.Load(), value(g.m.lookups[lrMalformed]))
	}
	// VerifyConnection: the user's runs, then the handshake is counted.
	if err := cfg.VerifyConnection(tls.ConnectionState{DidResume: true}); err != nil {
		t.Fatal(err)
	}
	if verifyCalls.Load() != 1 || value(g.m.resumed) != 1 {
		t.Fatal("VerifyConnection not composed")
	}
	// GetConfigForClient: the user's runs first; nil means a per-handshake
	// clone with tlsglue's per-handshake UnwrapSession.
	c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c == cfg {
		t.Fatalf("GetConfigForClient = %v, %v", c, err)
	}
	if gcfcCalls.Load() != 1 || c.GetConfigForClient != nil || isShared(c.UnwrapSession) {
		t.Fatal("clone does not carry a per-handshake UnwrapSession")
	}
	passThrough.Store(true)
	if c, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{}); c != other || err != nil {
		t.Fatalf("user's Config not passed through: %v %v", c, err)
	}
}

// TestWrappedUnwrapNotBypassed: a layer that wraps UnwrapSession in place
// after Install, without handling GetConfigForClient, is not bypassed.
func TestWrappedUnwrapNotBypassed(t *testing.T) {
	g, err := New(newMemStore(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cfg := &tls.Config{}
	if err := g.Install(cfg); err != nil {
		t.Fatal(err)
	}
	inner := cfg.UnwrapSession
	wrapper := func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) { return inner(id, cs) }
	cfg.UnwrapSession = wrapper
	c, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if reflect.ValueOf(c.UnwrapSession).Pointer() != reflect.ValueOf(wrapper).Pointer() {
		t.Fatal("the wrapper was replaced")
	}
}

// TestLifetime pins the SessionState encoding tlsglue reads the creation
// time and cipher suite from, checks that a TLS 1.2 session re-issued on resumption keeps its
// creation time (and so gets a shorter TTL), and that a session older than
// Lifetime is a miss even if the store still has it.
func TestLifetime(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			var clock atomic.Int64
			t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
			clock.Store(t0.Unix())
			now := func() time.Time { return time.Unix(clock.Load(), 0) }
			var mu sync.Mutex
			var created []time.Time
			store := newMemStore()
			const life = time.Hour
			srv := newServers(t, store, 2, Options{Lifetime: life}, serverOpts{time: now, configure: func(_ int, cfg *tls.Config) *tls.Config {
				inner := cfg.WrapSession
				cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
					b, _ := ss.Bytes()
					c, ok := createdAt(b)
					if !ok {
						t.Error("createdAt: unrecognised SessionState encoding")
					}
					if suite, ok := stateSuite(b); !ok || suite != cs.CipherSuite {
						t.Errorf("stateSuite = %#04x, %v; want %#04x", suite, ok, cs.CipherSuite)
					}
					mu.Lock()
					created = append(created, c)
					mu.Unlock()
					return inner(cs, ss)
				}
				return cfg
			}})
			session(t, srv[0], ver.v, testSNI) // issued at t0
			clock.Add(600)
			sessA := session(t, srv[0], ver.v, testSNI) // issued at t0+10m
			clock.Add(600)
			// Resume sessA on B at t0+20m, keeping it for later.
			ccfg := clientConfig(t, ver.v)
			ccfg.ClientSessionCache = newFixedCache(sessA)
			realStart := time.Now()
			if st := dial(t, srv[1].addr, ccfg); !st.DidResume {
				t.Fatal("did not resume on B")
			}
			srv[1].flush(t)
			mu.Lock()
			if len(created) != 3 {
				t.Fatalf("%d wraps, want 3", len(created))
			}
			want := []time.Time{t0, t0.Add(600 * time.Second), t0.Add(1200 * time.Second)}
			if ver.v == tls.VersionTLS12 {
				want[2] = want[1] // re-issued: the secret is as old as sessA's
			}
			for i := range want {
				if !created[i].Equal(want[i]) {
					t.Errorf("wrap %d: createdAt %v, want %v", i, created[i], want[i])
				}
			}
			mu.Unlock()
			// The re-issued entry's TTL is Lifetime minus the secret's age.
			// The entry B wrote expires first (1.2) or with the others (1.3).
			latest := time.Now().Add(time.Hour)
			store.Range(func(_ string, _ []byte, expires time.Time) {
				if expires.Before(latest) {
					latest = expires
				}
			})
			wantTTL := life
			if ver.v == tls.VersionTLS12 {
				wantTTL = life - 600*time.Second
			}
			if ttl := latest.Sub(realStart); ttl < wantTTL-time.Minute || ttl > wantTTL+time.Minute {
				t.Errorf("re-issued TTL %v, want about %v", ttl, wantTTL)
			}
			// Past Lifetime, the store still holds sessA but it is a miss.
			clock.Store(t0.Add(600*time.Second + life + time.Second).Unix())
			before := value(srv[1].m.lookups[lrMiss])
			if st, err := offer(t, srv[1], ver.v, testSNI, sessA); err != nil || st.DidResume {
				t.Fatalf("expired session: resumed=%v err=%v", st.DidResume, err)
			}
			if got := value(srv[1].m.lookups[lrMiss]) - before; got != 1 {
				t.Fatalf("expired session counted %v misses, want 1", got)
			}
		})
	}
}

// TestWriteQueueFull: with a store that never acknowledges writes and a
// queue of one, handshakes carry on, and the overflow is dropped and counted.
func TestWriteQueueFull(t *testing.T) {
	store := newMemStore()
	store.BlockSets.Store(true)
	srv := newServers(t, store, 1, Options{QueueSize: 1, Writers: 1, WriteTimeout: time.Hour})
	const n = 6
	for range n {
		dial(t, srv[0].addr, clientConfig(t, tls.VersionTLS13))
	}
	m := srv[0].m
	// One write in progress (blocked), one queued, the rest dropped.
	if got := value(m.drops); got != n-2 {
		t.Fatalf("drops = %v, want %d", got, n-2)
	}
	if got := value(m.pending); got != 2 {
		t.Fatalf("pending = %v, want 2", got)
	}
	if err := srv[0].glue.Close(); err != nil {
		t.Fatal(err)
	}
	if got := value(m.writes[wrTimeout]); got != 1 {
		t.Fatalf("cancelled writes = %v, want 1", got)
	}
	if got := value(m.drops); got != n-1 {
		t.Fatalf("drops after Close = %v, want %d", got, n-1)
	}
	if got := value(m.pending); got != 0 {
		t.Fatalf("pending after Close = %v", got)
	}
}

// TestShutdownDrains: Shutdown waits for queued writes; later sessions are
// dropped; handshakes still work after it.
func TestShutdownDrains(t *testing.T) {
	store := newMemStore()
	store.Delay.Store(0)
	srv := newServers(t, store, 1, Options{Writers: 1})
	for range 3 {
		dial(t, srv[0].addr, clientConfig(t, tls.VersionTLS13))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv[0].glue.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := value(srv[0].m.writes[wrOK]); got != 3 {
		t.Fatalf("writes after Shutdown = %v, want 3", got)
	}
	dial(t, srv[0].addr, clientConfig(t, tls.VersionTLS13))
	if got := value(srv[0].m.drops); got != 1 {
		t.Fatalf("drops = %v, want 1", got)
	}
}

// TestStoreWriteErrors: failed writes are counted, never surface.
func TestStoreWriteErrors(t *testing.T) {
	store := newMemStore()
	boom := errors.New("boom")
	store.Fail.Store(&boom)
	srv := newServers(t, store, 1, Options{})
	dial(t, srv[0].addr, clientConfig(t, tls.VersionTLS12))
	srv[0].flush(t)
	if got := value(srv[0].m.writes[wrError]); got != 1 {
		t.Fatalf("write errors = %v, want 1 (ok %v drops %v sets %d)", got, value(srv[0].m.writes[wrOK]), value(srv[0].m.drops), store.Sets.Load())
	}
}

// TestInstallNoLeak: the package-level Install has no Close; its workers
// exit on their own once idle (goleak in TestMain checks the rest).
func TestInstallNoLeak(t *testing.T) {
	store := newMemStore()
	cfg := &tls.Config{Certificates: []tls.Certificate{getPKI(t).leaf(t, false)}}
	if err := Install(cfg, store, Options{}); err != nil {
		t.Fatal(err)
	}
	s := &server{name: "I", cfg: cfg}
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.addr = s.ln.Addr().String()
	s.wg.Add(1)
	go s.serve()
	defer func() { s.ln.Close(); s.wg.Wait() }()
	ccfg := clientConfig(t, tls.VersionTLS13)
	dial(t, s.addr, ccfg)
	// Wait for the write to land (no Flush without the Glue: poll the store,
	// bounded, on a condition).
	deadline := time.Now().Add(10 * time.Second)
	for store.Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("write never landed")
		}
		runtime.Gosched()
	}
	if st := dial(t, s.addr, ccfg); !st.DidResume {
		t.Fatal("did not resume")
	}
}
