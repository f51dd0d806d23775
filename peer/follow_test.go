// Tests of Config.Membership: members that follow a source the test
// changes, on the in-memory transport.

package peer

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/tlsring/tlsring/transport"
)

// listSource reports its list, as it changes, to every member that runs it.
type listSource struct {
	mu      sync.Mutex
	members []string
}

func (s *listSource) set(m ...string) {
	s.mu.Lock()
	s.members = slices.Clone(m)
	s.mu.Unlock()
}

func (s *listSource) Run(ctx context.Context, update func([]string)) error {
	var last []string
	for {
		s.mu.Lock()
		m := slices.Clone(s.members)
		s.mu.Unlock()
		if !slices.Equal(m, last) {
			last = m
			update(m)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestFollowMembership: members following one source grow the ring, shrink
// it only after the grace period, keep every key through both, and a
// member that left stops following.
func TestFollowMembership(t *testing.T) {
	names := memberNames(4)
	src := &listSource{}
	src.set(names[:3]...)
	const grace = 300 * time.Millisecond
	reg := prometheus.NewRegistry()
	follow := func(cfg *Config) {
		cfg.Membership, cfg.MembershipGrace = src, grace
		if cfg.Self == names[0] {
			cfg.Registerer = reg
		}
	}
	c := &cluster{net: transport.NewNetwork(), names: names[:3], peers: map[string]*Peer{}}
	for _, n := range names[:3] {
		c.start(t, n, names[:3], follow)
	}
	c.warm(t)
	ctx := ctxT(t)
	const keys = 300
	for i := range keys {
		if err := c.peers[names[i%3]].Set(ctx, key(i), []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	ringOf := func(want int, members ...string) func() bool {
		return func() bool {
			for _, m := range members {
				if len(c.peers[m].Members()) != want {
					return false
				}
			}
			return true
		}
	}
	allFound := func(from string) {
		t.Helper()
		for i := range keys {
			if _, err := c.peers[from].Get(ctxT(t), key(i)); err != nil {
				t.Fatalf("key %d from %s: %v", i, from, err)
			}
		}
	}

	// Grow: the source lists m3, which starts.
	src.set(names...)
	c.start(t, names[3], names, follow)
	waitFor(t, ringOf(4, names...), "every member to follow the source to 4")
	for _, p := range c.peers {
		if err := p.WaitRebalance(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	allFound(names[3])

	// Shrink: m1 leaves the source; the ring keeps it for the grace period.
	gone := time.Now()
	src.set(names[0], names[2], names[3])
	waitFor(t, ringOf(3, names[0], names[2], names[3]), "the others to drop m1 after the grace period")
	if d := time.Since(gone); d < grace {
		t.Fatalf("m1 left the ring %v after it left the source, within the grace period %v", d, grace)
	}
	if got := c.peers[names[1]].Members(); len(got) != 4 {
		t.Fatalf("m1, absent from the source, changed its own ring to %v; want it refused", got)
	}
	for _, n := range []string{names[0], names[2], names[3]} {
		if err := c.peers[n].WaitRebalance(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	c.peers[names[1]].Close()
	allFound(names[0])

	// A member that leaves follows the source no more.
	if err := c.peers[names[3]].Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	src.set(names[0], names[2])
	waitFor(t, ringOf(2, names[0], names[2]), "m0 and m2 to drop m3")
	if got := c.peers[names[3]].Members(); len(got) != 3 {
		t.Fatalf("m3 changed its ring after Leave: %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "tlsring_membership_joins_total", "tlsring_membership_leaves_total"); err != nil || n != 2 {
		t.Fatalf("membership metrics on the Registerer: %d series, %v", n, err)
	}
}
