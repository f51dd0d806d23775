package peer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type cluster struct {
	net   *transport.Network
	names []string
	peers map[string]*Peer
}

func memberNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%d:7000", i)
	}
	return names
}

// newCluster starts n in-memory members.
func newCluster(t testing.TB, n int, tweak func(*Config)) *cluster {
	t.Helper()
	c := &cluster{net: transport.NewNetwork(), names: memberNames(n), peers: map[string]*Peer{}}
	for _, name := range c.names {
		c.start(t, name, c.names, tweak)
	}
	c.warm(t)
	return c
}

// warm waits until every member has reached every other, so that none is
// still marked down from starting before the others, and every member's
// state transfer is done (no background calls left to disturb a test).
func (c *cluster) warm(t testing.TB) {
	t.Helper()
	for _, p := range c.peers {
		if err := p.WarmUp(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range c.peers {
		if err := p.WaitReady(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, p.transferDone, "state transfer to finish")
	}
}

func (c *cluster) start(t testing.TB, name string, members []string, tweak func(*Config)) *Peer {
	t.Helper()
	cfg := Config{Self: name, Members: members, Logger: quiet, Listen: c.net.Listen}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c.peers[name] = p
	return p
}

func key(i int) []byte {
	s := sha256.Sum256([]byte(fmt.Sprint(i)))
	return s[:16]
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigErrors(t *testing.T) {
	net := transport.NewNetwork()
	for name, cfg := range map[string]Config{
		"no self":          {Members: []string{"a"}, Listen: net.Listen},
		"self not member":  {Self: "x", Members: []string{"a", "b"}, Listen: net.Listen},
		"no members":       {Self: "a", Listen: net.Listen},
		"duplicate member": {Self: "a", Members: []string{"a", "a"}, Listen: net.Listen},
		"no TLS for QUIC":  {Self: "a", Members: []string{"a"}},
		"negative bytes":   {Self: "a", Members: []string{"a"}, MaxBytes: -1, Listen: net.Listen},
	} {
		if p, err := New(cfg); err == nil {
			p.Close()
			t.Errorf("%s: New succeeded, want error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	c := newCluster(t, 3, nil)
	p := c.peers[c.names[0]]
	ctx := ctxT(t)
	long := make([]byte, MaxKeySize+1)
	for name, err := range map[string]error{
		"empty key get":   errOf(p.Get(ctx, nil)),
		"long key get":    errOf(p.Get(ctx, long)),
		"empty key set":   p.Set(ctx, nil, []byte("v"), time.Minute),
		"long key set":    p.Set(ctx, long, []byte("v"), time.Minute),
		"huge value":      p.Set(ctx, []byte("k"), make([]byte, MaxValueSize+1), time.Minute),
		"zero ttl":        p.Set(ctx, []byte("k"), []byte("v"), 0),
		"negative ttl":    p.Set(ctx, []byte("k"), []byte("v"), -time.Second),
		"ttl over limit":  p.Set(ctx, []byte("k"), []byte("v"), MaxTTL+time.Second),
		"empty key take":  errOf(p.Take(ctx, nil)),
		"empty key del":   p.Delete(ctx, nil),
		"long key delete": p.Delete(ctx, long),
	} {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want a validation error", name, err)
		}
	}
	// The largest valid key and value work.
	maxKey := make([]byte, MaxKeySize)
	if err := p.Set(ctx, maxKey, make([]byte, MaxValueSize), time.Minute); err != nil {
		t.Fatalf("largest key and value: %v", err)
	}
	if v, err := c.peers[c.names[2]].Get(ctx, maxKey); err != nil || len(v) != MaxValueSize {
		t.Fatalf("largest value read back: %d bytes, %v", len(v), err)
	}
}

func errOf(_ []byte, err error) error { return err }

func TestAnyMemberReadsAnyWrite(t *testing.T) {
	c := newCluster(t, 5, nil)
	ctx := ctxT(t)
	for i := 0; i < 200; i++ {
		w := c.peers[c.names[i%5]]
		if err := w.Set(ctx, key(i), []byte(fmt.Sprint("v", i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ {
		for _, name := range c.names {
			v, err := c.peers[name].Get(ctx, key(i))
			if err != nil || string(v) != fmt.Sprint("v", i) {
				t.Fatalf("%s Get key %d = %q, %v", name, i, v, err)
			}
		}
	}
	if _, err := c.peers[c.names[1]].Get(ctx, key(999)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

// TestWriteLandsOnOwnerAndReplica checks placement: exactly the two ring
// copies hold each key, whoever wrote it.
func TestWriteLandsOnOwnerAndReplica(t *testing.T) {
	c := newCluster(t, 5, nil)
	ctx := ctxT(t)
	for i := 0; i < 100; i++ {
		w := c.peers[c.names[(i*3)%5]]
		if err := w.Set(ctx, key(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		owners := w.Owners(key(i))
		if len(owners) != 2 {
			t.Fatalf("owners = %v", owners)
		}
		for _, name := range c.names {
			has := c.peers[name].HasLocal(key(i))
			if has != slices.Contains(owners, name) {
				t.Fatalf("key %d: %s holds it = %v, owners %v", i, name, has, owners)
			}
		}
	}
}

func TestTakeAndDeleteRemoveBothCopies(t *testing.T) {
	c := newCluster(t, 4, nil)
	ctx := ctxT(t)
	a, b := c.peers[c.names[0]], c.peers[c.names[3]]
	for i := 0; i < 50; i++ {
		a.Set(ctx, key(i), []byte("v"), time.Minute)
	}
	for i := 0; i < 50; i++ {
		var err error
		if i%2 == 0 {
			_, err = b.Take(ctx, key(i))
		} else {
			err = b.Delete(ctx, key(i))
		}
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	// Take deletes the other copy in the background; wait for it.
	for _, p := range c.peers {
		waitFor(t, func() bool { return p.LocalStats().Entries == 0 }, "members to drop taken and deleted entries")
	}
	for i := 0; i < 50; i++ {
		if _, err := a.Get(ctx, key(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("key %d after take/delete: %v", i, err)
		}
	}
}

// TestTakeSingleWinnerAcrossMembers races Takes of one key from every
// member: with every member healthy, exactly one wins.
func TestTakeSingleWinnerAcrossMembers(t *testing.T) {
	c := newCluster(t, 5, nil)
	ctx := ctxT(t)
	for round := 0; round < 100; round++ {
		k := key(round)
		if err := c.peers[c.names[round%5]].Set(ctx, k, []byte("ticket"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if wins := raceTakes(t, ctx, k, c.peers, c.names, c.names); wins != 1 {
			t.Fatalf("round %d: %d Takes won, want exactly 1", round, wins)
		}
	}
}

// raceTakes starts one Take of k on each named member at once and returns
// how many got the value.
func raceTakes(t *testing.T, ctx context.Context, k []byte, peers map[string]*Peer, names ...[]string) int {
	var wins atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, list := range names {
		for _, name := range list {
			wg.Go(func() {
				<-start
				if v, err := peers[name].Take(ctx, k); err == nil && string(v) == "ticket" {
					wins.Add(1)
				} else if err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("Take: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return int(wins.Load())
}

// TestTakeAtMostOnceWithDivergentHealth: one member believes the key's
// owner is down and takes from the replica alone, another asks both.
// Exactly one wins: the replica's copy decides. (Deciding by the first copy
// in ring order would let both win here; a rule that never lets a Take win
// would pass an at-most-once check, so the test wants exactly one.)
func TestTakeAtMostOnceWithDivergentHealth(t *testing.T) {
	c := newCluster(t, 4, nil)
	ctx := ctxT(t)
	for round := 0; round < 100; round++ {
		k := key(round)
		owners := c.peers[c.names[0]].Owners(k)
		var others []string
		for _, name := range c.names {
			if !slices.Contains(owners, name) {
				others = append(others, name)
			}
		}
		x, y := c.peers[others[0]], c.peers[others[1]]
		if err := x.Set(ctx, k, []byte("ticket"), time.Minute); err != nil {
			t.Fatal(err)
		}
		// Set returns once one copy has the key; the race is about a key
		// both copies hold.
		waitFor(t, func() bool { return c.peers[owners[0]].HasLocal(k) && c.peers[owners[1]].HasLocal(k) }, "both copies")
		x.health.failed(owners[0], errors.New("test: pretend the owner is down"))
		if wins := raceTakes(t, ctx, k, c.peers, []string{x.Self(), y.Self()}); wins != 1 {
			t.Fatalf("round %d: %d Takes won, want exactly 1", round, wins)
		}
		x.health.ok(owners[0])
	}
}

// TestClosedOwnerServedByReplica closes members and reads their keys
// through the surviving copy.
func TestClosedOwnerServedByReplica(t *testing.T) {
	c := newCluster(t, 5, nil)
	ctx := ctxT(t)
	reader := c.peers[c.names[4]]
	for i := 0; i < 300; i++ {
		reader.Set(ctx, key(i), []byte("v"), time.Minute)
	}
	dead := c.names[0]
	c.peers[dead].Close()
	lost := 0
	for i := 0; i < 300; i++ {
		if _, err := reader.Get(ctx, key(i)); err != nil {
			lost++
			t.Errorf("key %d (owners %v) lost after %s closed: %v", i, reader.Owners(key(i)), dead, err)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of 300 keys lost", lost)
	}
}

// TestSilentOwnerHedged checks that a member that never answers costs a
// read about one hedge delay, not the caller's deadline, and is then
// skipped.
func TestSilentOwnerHedged(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.HedgeAfter = 2 * time.Millisecond })
	ctx := ctxT(t)
	silent := c.names[0]
	reader := c.peers[c.names[1]]
	var keys [][]byte
	for i := 0; len(keys) < 20; i++ {
		if reader.Owners(key(i))[0] == silent && !slices.Contains(reader.Owners(key(i)), reader.Self()) {
			keys = append(keys, key(i))
			if err := reader.Set(ctx, key(i), []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.net.SetFault(silent, transport.Silent)
	for i, k := range keys {
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		start := time.Now()
		v, err := reader.Get(dctx, k)
		took := time.Since(start)
		cancel()
		if err != nil || string(v) != "v" {
			t.Fatalf("Get with silent owner: %q, %v", v, err)
		}
		if took > 100*time.Millisecond {
			t.Fatalf("read %d took %v with a 2ms hedge; it waited for the silent owner", i, took)
		}
	}
	waitFor(t, func() bool { return reader.health.isDown(silent) }, "the silent member to be marked down")
	// Writes skip a member marked down instead of waiting out the deadline.
	start := time.Now()
	if err := reader.Set(ctx, keys[0], []byte("w"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("Set took %v with the silent member marked down", took)
	}
	// Recovery: once it answers again, the probe marks it up.
	c.net.SetFault(silent, transport.Healthy)
	waitFor(t, func() bool { return !reader.health.isDown(silent) }, "the probe to mark the member up")
}

// TestDeadlineHonoured checks that with every copy silent a Get returns at
// its context's deadline: the median within 5 ms of it, as in tlsglue's
// deadline tests. The worst gets 250 ms: under -race on a 2-core machine
// shared with other builds a wake-up now and then runs 150 ms late
// (measured at load 14). Either bound catches a Get that waits for a
// silent copy: it would wait RequestTimeout (1 s) or forever.
func TestDeadlineHonoured(t *testing.T) {
	c := newCluster(t, 3, nil)
	reader := c.peers[c.names[2]]
	c.net.SetFault(c.names[0], transport.Silent)
	c.net.SetFault(c.names[1], transport.Silent)
	const deadline = 20 * time.Millisecond
	var took []time.Duration
	for i := 0; len(took) < 15; i++ {
		if slices.Contains(reader.Owners(key(i)), reader.Self()) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		_, err := reader.Get(ctx, key(i))
		took = append(took, time.Since(start))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	}
	slices.Sort(took)
	if med, worst := took[len(took)/2], took[len(took)-1]; med > deadline+5*time.Millisecond || worst > deadline+250*time.Millisecond {
		t.Fatalf("Get with every copy silent: median %v, worst %v, deadline %v", med, worst, deadline)
	}
}

func TestMaxBytesUnderWriteFlood(t *testing.T) {
	const maxBytes = 512 << 10
	c := newCluster(t, 3, func(cfg *Config) { cfg.MaxBytes = maxBytes })
	// The bound is tested, not speed: 9,000 writes under -race on a loaded
	// machine get a roomy deadline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for g, name := range c.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				if err := c.peers[name].Set(ctx, key(g*100000+i), make([]byte, 1000), time.Minute); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, name := range c.names {
		st := c.peers[name].LocalStats()
		if st.Bytes > maxBytes || st.Evictions == 0 {
			t.Errorf("%s: %+v, bound %d", name, st, maxBytes)
		}
	}
}

// TestSetMembersRebalances adds a member and removes one, and checks that
// every entry ends up on exactly its new owner and replica.
func TestSetMembersRebalances(t *testing.T) {
	all := memberNames(5)
	c := &cluster{net: transport.NewNetwork(), names: all[:4], peers: map[string]*Peer{}}
	for _, name := range c.names {
		c.start(t, name, c.names, nil)
	}
	c.warm(t)
	ctx := ctxT(t)
	const n = 400
	for i := 0; i < n; i++ {
		c.peers[c.names[i%4]].Set(ctx, key(i), []byte("v"), time.Minute)
	}
	check := func(members []string) {
		t.Helper()
		for _, name := range members {
			if err := c.peers[name].WaitRebalance(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			owners := c.peers[members[0]].Owners(key(i))
			for _, name := range members {
				if has := c.peers[name].HasLocal(key(i)); has != slices.Contains(owners, name) {
					t.Fatalf("members %v, key %d: %s holds it = %v, owners %v", members, i, name, has, owners)
				}
			}
		}
	}
	// Join: m4 starts with the new list; the others learn it.
	c.start(t, all[4], all, nil)
	for _, name := range all[:4] {
		c.peers[name].SetMembers(all)
	}
	check(all)
	// Leave: m1 hands off and closes; the others learn the new list.
	left := all[1]
	rest := slices.DeleteFunc(slices.Clone(all), func(m string) bool { return m == left })
	if err := c.peers[left].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	c.peers[left].Close()
	for _, name := range rest {
		c.peers[name].SetMembers(rest)
	}
	check(rest)
	// Nothing lost on the way.
	for i := 0; i < n; i++ {
		if _, err := c.peers[rest[0]].Get(ctx, key(i)); err != nil {
			t.Fatalf("key %d lost: %v", i, err)
		}
	}
}

func TestClosed(t *testing.T) {
	c := newCluster(t, 1, nil)
	p := c.peers[c.names[0]]
	p.Close()
	if err := p.Set(context.Background(), []byte("k"), []byte("v"), time.Minute); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDownAfterTimeouts: a member is marked down at once when unreachable,
// but only after DownAfter timeouts in a row when merely slow; an answer
// in between resets the count.
func TestDownAfterTimeouts(t *testing.T) {
	c := newCluster(t, 3, nil)
	p := c.peers[c.names[0]]
	slow, gone := c.names[1], c.names[2]
	p.health.failed(slow, context.DeadlineExceeded)
	p.health.failed(slow, context.DeadlineExceeded)
	p.health.ok(slow)
	p.health.failed(slow, context.DeadlineExceeded)
	p.health.failed(slow, context.DeadlineExceeded)
	if p.health.isDown(slow) {
		t.Fatal("marked down after two timeouts in a row")
	}
	p.health.failed(slow, fmt.Errorf("wrapped: %w", context.DeadlineExceeded))
	if !p.health.isDown(slow) {
		t.Fatalf("not marked down after %d timeouts in a row", DefaultDownAfter)
	}
	p.health.failed(gone, transport.ErrUnreachable)
	if !p.health.isDown(gone) {
		t.Fatal("an unreachable member was not marked down at once")
	}
}

// TestReturnedValueIsTheCallers: changing what Get returned does not change
// what is stored, on the local path or the remote one.
func TestReturnedValueIsTheCallers(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t)
	for _, p := range c.peers {
		for i := 0; i < 20; i++ {
			if err := p.Set(ctx, key(i), []byte("value"), time.Minute); err != nil {
				t.Fatal(err)
			}
			v, err := p.Get(ctx, key(i))
			if err != nil {
				t.Fatal(err)
			}
			v[0] = 'X'
			if v, _ := p.Get(ctx, key(i)); string(v) != "value" {
				t.Fatalf("stored value became %q after the caller changed its copy", v)
			}
		}
	}
}
