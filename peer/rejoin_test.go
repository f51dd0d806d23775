// Tests of what keeps copies whole across restarts and outages: state
// transfer on (re)join, delayed writes to members that were down,
// tombstones, readiness, and the one-health-read routing.

package peer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// holdsExactly checks that every key is held by exactly its current owners
// among the named members.
func (c *cluster) holdsExactly(t *testing.T, keys [][]byte, names []string) {
	t.Helper()
	for i, k := range keys {
		owners := c.peers[names[0]].Owners(k)
		for _, name := range names {
			if has := c.peers[name].HasLocal(k); has != slices.Contains(owners, name) {
				t.Fatalf("key %d: %s holds it = %v; owners %v", i, name, has, owners)
			}
		}
	}
}

func waitReady(t *testing.T, p *Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRestartPullsEntries restarts every member in turn, empty, at the same
// name (a rolling restart with a static member list): each pulls its share
// back before the next goes, and nothing is lost.
func TestRestartPullsEntries(t *testing.T) {
	c := newCluster(t, 4, nil)
	ctx := ctxT(t)
	var keys [][]byte
	for i := range 400 {
		keys = append(keys, key(i))
		if err := c.peers[c.names[i%4]].Set(ctx, key(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range c.names {
		c.peers[name].Close()
		p := c.start(t, name, c.names, nil)
		if p.LocalStats().Entries == 400 {
			t.Fatal("a restarted member started with entries: the test restarts nothing")
		}
		waitReady(t, p)
		c.holdsExactly(t, keys, c.names)
	}
	for i, k := range keys {
		if v, err := c.peers[c.names[i%4]].Get(ctx, k); err != nil || string(v) != "v" {
			t.Fatalf("key %d after a rolling restart: %q, %v", i, v, err)
		}
	}
}

// TestTransferringMemberDefersToOtherCopy: while a restarted member's
// state transfer waits, its local misses are not misses: Get and Take go to
// the other copy and find the entry.
func TestTransferringMemberDefersToOtherCopy(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t)
	x, y, z := c.names[0], c.names[1], c.names[2]
	// Keys held by x and y; z is neither.
	var keys [][]byte
	for i := 0; len(keys) < 10; i++ {
		if o := c.peers[z].Owners(key(i)); slices.Contains(o, x) && slices.Contains(o, y) {
			keys = append(keys, key(i))
			if err := c.peers[z].Set(ctx, key(i), []byte("ticket"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	// z is silent, so x's transfer waits for it (silent is not down until
	// DownAfter timeouts: the transfer keeps retrying).
	c.peers[x].Close()
	c.net.SetFault(z, transport.Silent)
	px := c.start(t, x, c.names, func(cfg *Config) {
		cfg.TransferTimeout = 300 * time.Millisecond
		cfg.DownAfter = 1000
	})
	waitFor(t, func() bool { return px.Readiness().Transferring }, "x to be transferring")
	waitFor(t, func() bool { _, ok := px.Readiness().TransferPending[z]; return ok }, "z pending")
	for i, k := range keys[:5] {
		if v, err := px.Get(ctx, k); err != nil || string(v) != "ticket" {
			t.Fatalf("Get %d on a transferring member: %q, %v", i, v, err)
		}
		if v, err := c.peers[y].Take(ctx, k); err != nil || string(v) != "ticket" {
			t.Fatalf("Take %d with a transferring copy: %q, %v", i, v, err)
		}
	}
	if rd := px.Readiness(); rd.Ready || !strings.Contains(rd.String(), "state transfer") {
		t.Fatalf("readiness during transfer: %v", rd)
	}
	c.net.SetFault(z, transport.Healthy)
	waitReady(t, px)
	// The taken keys stay taken on x (the delete reached it or a tombstone
	// stopped the transfer's copy); the others arrived.
	for i, k := range keys {
		if has := px.HasLocal(k); has != (i >= 5) {
			t.Fatalf("key %d on x after the transfer: held = %v", i, has)
		}
	}
}

// TestDelayedWritesReachMemberThatWasDown: writes and deletes made while a
// copy's member did not answer reach it when it answers again.
func TestDelayedWritesReachMemberThatWasDown(t *testing.T) {
	for name, fault := range map[string]transport.Fault{"refusing": transport.Refusing, "silent": transport.Silent} {
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *Config) { cfg.ProbeInterval = 20 * time.Millisecond })
			ctx := ctxT(t)
			down, writer := c.names[0], c.peers[c.names[1]]
			var mine, gone [][]byte
			for i := 0; len(mine) < 50; i++ {
				if slices.Contains(writer.Owners(key(i)), down) {
					mine = append(mine, key(i))
				}
			}
			for _, k := range mine[:10] { // to be deleted while down
				writer.Set(ctx, k, []byte("v"), time.Minute)
				gone = append(gone, k)
			}
			c.net.SetFault(down, fault)
			for _, k := range mine[10:] {
				wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				if err := writer.Set(wctx, k, []byte("v"), time.Minute); err != nil {
					t.Fatal(err)
				}
				cancel()
			}
			for _, k := range gone {
				if err := writer.Delete(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			if c.peers[down].HasLocal(mine[10]) {
				t.Fatal("the down member got a write: the fault did not hold")
			}
			c.net.SetFault(down, transport.Healthy)
			for _, p := range c.peers {
				waitReady(t, p)
			}
			waitFor(t, func() bool {
				for _, k := range mine[10:] {
					if !c.peers[down].HasLocal(k) {
						return false
					}
				}
				for _, k := range gone {
					if c.peers[down].HasLocal(k) {
						return false
					}
				}
				return true
			}, "delayed writes and deletes to reach the member")
			for _, k := range gone {
				if _, err := c.peers[down].Get(ctx, k); !errors.Is(err, ErrNotFound) {
					t.Fatalf("a key deleted while its copy was down reads back: %v", err)
				}
			}
		})
	}
}

// TestDelayedWritesBounded: a member down for long cannot make the others
// keep more than HintBytes for it.
func TestDelayedWritesBounded(t *testing.T) {
	const hintBytes = 64 << 10
	c := newCluster(t, 3, func(cfg *Config) { cfg.HintBytes = hintBytes })
	ctx := ctxT(t)
	down, writer := c.names[0], c.peers[c.names[1]]
	c.net.SetFault(down, transport.Refusing)
	for i := range 2000 {
		writer.Set(ctx, key(i), make([]byte, 500), time.Minute)
	}
	n, b := writer.hints.stats()
	if b > hintBytes || n == 0 {
		t.Fatalf("%d delayed writes of %d bytes, bound %d", n, b, hintBytes)
	}
}

// TestReAddedMemberGetsItsShare: a member taken out of the ring and put
// back holds its share again after one membership change, and pulls what
// was written while it was out.
func TestReAddedMemberGetsItsShare(t *testing.T) {
	c := newCluster(t, 4, nil)
	ctx := ctxT(t)
	out := c.names[3]
	rest := c.names[:3]
	var keys [][]byte
	for i := range 200 {
		keys = append(keys, key(i))
		c.peers[rest[i%3]].Set(ctx, key(i), []byte("v"), time.Minute)
	}
	for _, name := range c.names {
		c.peers[name].SetMembers(rest)
	}
	for _, name := range c.names {
		if err := c.peers[name].WaitRebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 200; i < 300; i++ {
		keys = append(keys, key(i))
		c.peers[rest[i%3]].Set(ctx, key(i), []byte("v"), time.Minute)
	}
	// The re-added member learns the list first: its pull waits until the
	// others have it in their ring too.
	c.peers[out].SetMembers(c.names)
	for _, name := range rest {
		c.peers[name].SetMembers(c.names)
	}
	for _, name := range c.names {
		if err := c.peers[name].WaitRebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, c.peers[out])
	c.holdsExactly(t, keys, c.names)
}

// TestReadiness: a member that reaches no other member is not ready, and
// names why.
func TestReadiness(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ProbeInterval = 20 * time.Millisecond })
	p := c.peers[c.names[0]]
	waitReady(t, p)
	c.net.SetFault(c.names[1], transport.Refusing)
	c.net.SetFault(c.names[2], transport.Refusing)
	p.WarmUp(ctxT(t)) // meets both failures
	waitFor(t, func() bool { return len(p.Readiness().Unreachable) == 2 }, "both others marked down")
	rd := p.Readiness()
	if rd.Ready || !strings.Contains(rd.String(), "no other member reachable") || !strings.Contains(rd.String(), c.names[1]) {
		t.Fatalf("readiness with no member reachable: %v", rd)
	}
	// One member back: ready again (one dead member must not drain a fleet).
	c.net.SetFault(c.names[1], transport.Healthy)
	waitReady(t, p)
	if rd := p.Readiness(); len(rd.Unreachable) != 1 {
		t.Fatalf("readiness with one member down: %v", rd)
	}
}

// TestTargetsUnderHealthFlips: with a member's health flipping, every
// routing list names each copy exactly once.
func TestTargetsUnderHealthFlips(t *testing.T) {
	c := newCluster(t, 3, nil)
	p := c.peers[c.names[0]]
	flipper := c.names[1]
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			p.health.failed(flipper, transport.ErrUnreachable)
			p.health.ok(flipper)
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()
	for i := range 100000 {
		k := key(i % 500)
		got, up := p.targets(k)
		want := p.Owners(k)
		if len(got) != len(want) || up > len(got) {
			t.Fatalf("targets %v (up %d), owners %v", got, up, want)
		}
		for _, m := range want {
			if !slices.Contains(got, m) {
				t.Fatalf("targets %v miss copy %s of owners %v", got, m, want)
			}
		}
	}
}
