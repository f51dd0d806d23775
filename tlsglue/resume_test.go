// resume_test.go: cross-server resumption with Go clients, at scale, and
// the handshake and lookup counters that go with it.

package tlsglue

import (
	"crypto/tls"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var versions = []struct {
	name string
	v    uint16
}{{"TLS13", tls.VersionTLS13}, {"TLS12", tls.VersionTLS12}}

// TestWalkResumes: a Go client walking A, B, C, A resumes on every hop
// after the first.
func TestWalkResumes(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 3, Options{})
			cfg := clientConfig(t, ver.v)
			walk := []*server{srv[0], srv[1], srv[2], srv[0]}
			for i, s := range walk {
				cs := dial(t, s.addr, cfg)
				if cs.Version != ver.v {
					t.Fatalf("hop %d: version %x", i, cs.Version)
				}
				if want := i > 0; cs.DidResume != want {
					t.Fatalf("hop %d (%s): DidResume = %v, want %v", i, s.name, cs.DidResume, want)
				}
				s.flush(t) // the next server needs the ticket this one just issued
			}
			if got := value(srv[0].m.full); got != 1 {
				t.Errorf("A full handshakes = %v, want 1", got)
			}
			if got := value(srv[0].m.resumed); got != 1 {
				t.Errorf("A resumed handshakes = %v, want 1", got)
			}
			for _, s := range srv[1:] {
				if got := value(s.m.lookups[lrHit]); got != 1 {
					t.Errorf("%s hits = %v, want 1", s.name, got)
				}
				if got := value(s.m.resumed); got != 1 {
					t.Errorf("%s resumed = %v, want 1", s.name, got)
				}
			}
			var writes, reused float64
			for _, s := range srv {
				writes += value(s.m.writes[wrOK])
				reused += value(s.m.writes[wrReused])
			}
			// TLS 1.3 stores a new ticket per connection; a TLS 1.2
			// resumption hands back the handle it resumed and stores nothing.
			wantWrites, wantReused := 4.0, 0.0
			if ver.v == tls.VersionTLS12 {
				wantWrites, wantReused = 1, 3
			}
			if writes != wantWrites || reused != wantReused {
				t.Errorf("writes ok = %v, reused = %v; want %v and %v", writes, reused, wantWrites, wantReused)
			}
			for _, s := range srv {
				if errs := s.handshakeErrors(); len(errs) > 0 {
					t.Errorf("%s: handshake errors: %v", s.name, errs)
				}
			}
		})
	}
}

// TestManySessionsResumeElsewhere: 200 fresh sessions issued on A resume
// on C at >= 99%.
func TestManySessionsResumeElsewhere(t *testing.T) {
	store := newMemStore()
	srv := newServers(t, store, 3, Options{})
	a, c := srv[0], srv[2]
	const n = 200
	cfgs := make([]*tls.Config, n)
	for i := range cfgs {
		cfgs[i] = clientConfig(t, versions[i%2].v)
		if cs := dial(t, a.addr, cfgs[i]); cs.DidResume {
			t.Fatal("fresh client resumed")
		}
	}
	a.flush(t)
	resumed := 0
	for i := range cfgs {
		if dial(t, c.addr, cfgs[i]).DidResume {
			resumed++
		}
	}
	t.Logf("resumed %d/%d on C", resumed, n)
	if resumed*100 < n*99 {
		t.Fatalf("resumed %d of %d (< 99%%)", resumed, n)
	}
	if got := value(c.m.lookups[lrHit]); got != float64(resumed) {
		t.Errorf("C hits = %v, want %d", got, resumed)
	}
}

// TestMetricsRegister: Metrics registers and exposes the documented series.
func TestMetricsRegister(t *testing.T) {
	store := newMemStore()
	srv := newServers(t, store, 2, Options{})
	cfg := clientConfig(t, tls.VersionTLS13)
	dial(t, srv[0].addr, cfg)
	srv[0].flush(t)
	dial(t, srv[1].addr, cfg)
	for _, s := range srv {
		if n := seriesCount(s.m); n == 0 {
			t.Fatal("no series collected")
		}
		for _, name := range []string{
			"tlsring_tlsglue_handshakes_total",
			"tlsring_tlsglue_lookups_total",
			"tlsring_tlsglue_lookup_duration_seconds",
			"tlsring_tlsglue_lookups_shared_total",
			"tlsring_tlsglue_writes_total",
			"tlsring_tlsglue_write_drops_total",
			"tlsring_tlsglue_write_queue_pending",
			"tlsring_tlsglue_early_data_offered_total",
			"tlsring_tlsglue_early_data_accepted_total",
			"tlsring_tlsglue_early_data_refused_total",
		} {
			if seriesCount(s.m, name) == 0 {
				t.Errorf("%s: no %s", s.name, name)
			}
		}
		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(s.m); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if got := value(srv[1].m.lookups[lrHit]); got != 1 {
		t.Errorf("B hits = %v", got)
	}
	if n := value(srv[1].m.latency); n != 1 {
		t.Errorf("latency samples = %v, want 1", n)
	}
}
