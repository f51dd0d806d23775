// singleuse_test.go: with Options.SingleUse a handle resumes at most once,
// cluster-wide, even when two servers race for it.

package tlsglue

import (
	"crypto/tls"
	"sync"
	"testing"
)

// TestSingleUseRace: one session offered concurrently to B and C resumes
// on exactly one of them (the in-memory Take is atomic), and never again.
func TestSingleUseRace(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 3, Options{SingleUse: true})
			const rounds = 10
			for r := range rounds {
				sess := session(t, srv[0], ver.v, testSNI)
				if resumed := raceOffer(t, srv[1:], ver.v, sess); resumed != 1 {
					t.Fatalf("round %d: %d servers resumed one single-use session", r, resumed)
				}
				// A third attempt, anywhere, is a full handshake.
				if st, err := offer(t, srv[0], ver.v, testSNI, sess); err != nil || st.DidResume {
					t.Fatalf("round %d: reuse: resumed=%v err=%v", r, st.DidResume, err)
				}
			}
			var hits, misses float64
			for _, s := range srv {
				hits += value(s.m.lookups[lrHit])
				misses += value(s.m.lookups[lrMiss])
			}
			if hits != rounds || misses != 2*rounds {
				t.Fatalf("hits=%v misses=%v, want %d and %d", hits, misses, rounds, 2*rounds)
			}
			if store.Gets.Load() != 0 {
				t.Fatalf("single-use lookups used Get %d times", store.Gets.Load())
			}
		})
	}
}

// TestSingleUseSameHandshakeTwice: a handle unwrapped twice within one
// handshake (crypto/tls may call UnwrapSession more than once per
// ClientHello) is taken once and both calls get the session.
func TestSingleUseSameHandshakeTwice(t *testing.T) {
	store := newMemStore()
	srv := newServers(t, store, 1, Options{SingleUse: true})
	sess := session(t, srv[0], tls.VersionTLS13, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv[0].cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil || c == nil {
		t.Fatalf("GetConfigForClient = %v, %v", c, err)
	}
	cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}
	ss1, err1 := c.UnwrapSession(ticket, cs)
	ss2, err2 := c.UnwrapSession(ticket, cs)
	if ss1 == nil || ss2 == nil || err1 != nil || err2 != nil {
		t.Fatalf("unwraps: %v %v / %v %v", ss1, err1, ss2, err2)
	}
	if n := store.Takes.Load(); n != 1 {
		t.Fatalf("%d Takes, want 1", n)
	}
	// Another handshake (another clone) finds it gone.
	c2, _ := srv[0].cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if ss, err := c2.UnwrapSession(ticket, cs); ss != nil || err != nil {
		t.Fatalf("second handshake unwrap = %v, %v", ss, err)
	}
}

// raceOffer offers sess to every server at once and returns how many
// resumed it; a failed handshake fails t.
func raceOffer(t *testing.T, srv []*server, v uint16, sess *tls.ClientSessionState) int {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]tls.ConnectionState, len(srv))
	errs := make([]error, len(srv))
	for i, s := range srv {
		wg.Go(func() { results[i], errs[i] = offer(t, s, v, testSNI, sess) })
	}
	wg.Wait()
	resumed := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("offer to %s: %v", srv[i].name, errs[i])
		}
		if results[i].DidResume {
			resumed++
		}
	}
	return resumed
}
