// Tests of the routing decisions: route order for every kind, health and
// key position; hedging; the Read and Take trackers over every answer
// sequence; what a miss answers.

package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ring"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%03d", i)
	}
	return out
}

func newCore(t testing.TB, cfg Config) *Core {
	t.Helper()
	if cfg.Members == nil {
		cfg.Members = members(5)
	}
	if cfg.Self == "" {
		cfg.Self = cfg.Members[0]
	}
	c, err := New(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refOrder is the routing rule written out plainly, independently of
// Core.order: reads and writes ask self first if it holds a copy, then the
// others in ring order, down ones last; takes keep ring order, down ones
// (but self) last, and ask all when none is up.
func refOrder(kind RouteKind, owners []string, self string, down map[string]bool) ([]string, int) {
	var first, upList, downList []string
	for _, m := range owners {
		switch {
		case kind != RouteTake && m == self:
			first = append(first, m)
		case m != self && down[m]:
			downList = append(downList, m)
		default:
			upList = append(upList, m)
		}
	}
	order := append(append(first, upList...), downList...)
	up := len(first) + len(upList)
	if kind == RouteTake && up == 0 {
		up = len(order)
	}
	return order, up
}

// TestRouteExhaustive checks the route of many keys, for every kind, every
// set of members marked down and every choice of self, against refOrder.
func TestRouteExhaustive(t *testing.T) {
	ms := members(5)
	keys := make([][]byte, 40)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%d", i)
	}
	for _, replicas := range []int{1, 2, 3, 5} {
		for _, self := range ms {
			c := newCore(t, Config{Self: self, Members: ms, Replicas: replicas})
			for mask := range 1 << len(ms) {
				down := map[string]bool{}
				for i, m := range ms {
					wasDown := c.IsDown(m)
					want := mask&(1<<i) != 0
					if want != wasDown {
						c.Liveness(t0, m, !want)
					}
					if want && m != self {
						down[m] = true
					}
				}
				for _, key := range keys {
					owners := c.Ring().Owners(key, replicas)
					for _, kind := range []RouteKind{RouteRead, RouteWrite, RouteTake} {
						got, up := c.Route(kind, key)
						want, wantUp := refOrder(kind, owners, self, down)
						if !slices.Equal(got, want) || up != wantUp {
							t.Fatalf("replicas %d self %s down %v kind %d key %s: got %v up %d, want %v up %d",
								replicas, self, down, kind, key, got, up, want, wantUp)
						}
					}
				}
			}
		}
	}
}

func TestRouteCases(t *testing.T) {
	ms := members(5)
	r, _ := ring.New(ms)
	// A key whose copies are a, b (owner first) with self b.
	var key []byte
	var a, b string
	for i := 0; ; i++ {
		key = fmt.Appendf(key[:0], "k%d", i)
		o := r.Owners(key, 2)
		a, b = o[0], o[1]
		break
	}
	cases := []struct {
		name   string
		self   string
		down   []string
		kind   RouteKind
		want   []string
		wantUp int
	}{
		{"read from the replica: local first", b, nil, RouteRead, []string{b, a}, 2},
		{"read from the owner", a, nil, RouteRead, []string{a, b}, 2},
		{"owner down: asked last", b, []string{a}, RouteRead, []string{b, a}, 1},
		{"write, replica down", a, []string{b}, RouteWrite, []string{a, b}, 1},
		{"take from the replica: owner first", b, nil, RouteTake, []string{a, b}, 2},
		{"take, owner down: skipped", b, []string{a}, RouteTake, []string{b, a}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, Config{Self: tc.self, Members: ms})
			for _, m := range tc.down {
				c.CallFailed(t0, m, false, "unreachable")
			}
			got, up := c.Route(tc.kind, key)
			if !slices.Equal(got, tc.want) || up != tc.wantUp {
				t.Fatalf("got %v up %d, want %v up %d", got, up, tc.want, tc.wantUp)
			}
		})
	}
	// Every copy down, self not a copy: a read has none up, a take asks all.
	var other string
	for _, m := range ms {
		if m != a && m != b {
			other = m
			break
		}
	}
	c := newCore(t, Config{Self: other, Members: ms})
	c.CallFailed(t0, a, false, "x")
	c.CallFailed(t0, b, false, "x")
	if o, up := c.Route(RouteRead, key); up != 0 || !slices.Equal(o, []string{a, b}) {
		t.Fatalf("read, all down: %v up %d", o, up)
	}
	if o, up := c.Route(RouteTake, key); up != 2 || !slices.Equal(o, []string{a, b}) {
		t.Fatalf("take, all down: %v up %d", o, up)
	}
}

func TestHedge(t *testing.T) {
	c := newCore(t, Config{HedgeAfter: 2 * time.Millisecond})
	cases := []struct {
		kind RouteKind
		left time.Duration
		want time.Duration
	}{
		{RouteRead, 0, 2 * time.Millisecond},
		{RouteRead, time.Second, 2 * time.Millisecond},
		{RouteTake, 0, 2 * time.Millisecond},
		{RouteTake, time.Millisecond, 2 * time.Millisecond},
		{RouteTake, 10 * time.Millisecond, 5 * time.Millisecond},
		{RouteTake, time.Second, 500 * time.Millisecond},
	}
	for _, tc := range cases {
		if got := c.Hedge(tc.kind, tc.left); got != tc.want {
			t.Errorf("Hedge(%d, %v) = %v, want %v", tc.kind, tc.left, got, tc.want)
		}
	}
}

// TestReadExhaustive drives a Read over 1 to 3 copies, for every local miss
// flag, every answer of every copy, and every pattern of hedge timer
// firings, and checks it against the rule: the first value found wins;
// otherwise a miss if any copy (or the local one) answered a miss, or
// none failed; otherwise a failure. Every copy is asked before a read
// that finds nothing ends, and none twice.
func TestReadExhaustive(t *testing.T) {
	results := []Result{Found, NotFound, Failed}
	for n := 1; n <= 3; n++ {
		order := members(n)
		combos := 1
		for range n {
			combos *= 3
		}
		for _, localMiss := range []bool{false, true} {
			for combo := range combos {
				res := make([]Result, n)
				x := combo
				for i := range res {
					res[i] = results[x%3]
					x /= 3
				}
				for _, hedgeEarly := range []bool{false, true} {
					r := NewRead(order, localMiss)
					var inflight []int // indexes asked, answers pending (answered FIFO)
					asked := map[string]bool{}
					ask := func() {
						if m, ok := r.Ask(); ok {
							if asked[m] {
								t.Fatalf("%s asked twice", m)
							}
							asked[m] = true
							inflight = append(inflight, slices.Index(order, m))
						}
					}
					ask()
					if hedgeEarly {
						ask() // the hedge timer fired before the first answer
					}
					out := Pending
					for out == Pending {
						if len(inflight) == 0 {
							t.Fatalf("n %d res %v: pending with nothing in flight", n, res)
						}
						i := inflight[0]
						inflight = inflight[1:]
						if out = r.Answer(res[i]); out == Pending {
							ask()
						}
					}
					// The reference, over the copies answered in order.
					want := OutFailed
					missed, failed := localMiss, false
					for i := range n {
						if !asked[order[i]] {
							break
						}
						if res[i] == Found {
							want = OutFound
							break
						}
						if res[i] == NotFound {
							missed = true
						} else {
							failed = true
						}
					}
					if want != OutFound {
						if len(asked) != n {
							t.Fatalf("n %d res %v: ended with %d of %d copies asked", n, res, len(asked), n)
						}
						if missed || !failed {
							want = OutMiss
						}
					}
					if out != want {
						t.Fatalf("n %d localMiss %v res %v hedge %v: outcome %d, want %d", n, localMiss, res, hedgeEarly, out, want)
					}
				}
			}
		}
	}
}

// TestTakeExhaustive drives a Take over 1 to 3 copies with every answer of
// every copy: the first not-found ends it as a miss (at most one of two
// racing Takes wins), it wins if a copy returned the value and none
// answered not-found, and Rest lists every copy that did not return it.
func TestTakeExhaustive(t *testing.T) {
	results := []Result{Found, NotFound, Failed}
	for n := 1; n <= 3; n++ {
		order := members(n)
		combos := 1
		for range n {
			combos *= 3
		}
		for up := 1; up <= n; up++ {
			for combo := range combos {
				res := make([]Result, n)
				x := combo
				for i := range res {
					res[i] = results[x%3]
					x /= 3
				}
				tk := NewTake(order, up)
				out := Pending
				var asked []int
				for out == Pending {
					m, i, ok := tk.Ask()
					if !ok {
						t.Fatalf("nothing to ask while pending")
					}
					if order[i] != m {
						t.Fatalf("index %d names %s, not %s", i, order[i], m)
					}
					asked = append(asked, i)
					out = tk.Answer(i, res[i])
				}
				want, got := OutFailed, false
				var rest []string
				for _, i := range asked {
					if res[i] == NotFound {
						want = OutMiss
					}
					if res[i] == Found {
						got = true
					}
				}
				if want != OutMiss && got {
					want = OutFound
				}
				if out != want {
					t.Fatalf("n %d up %d res %v: outcome %d, want %d", n, up, res, out, want)
				}
				if want != OutMiss && len(asked) != up {
					t.Fatalf("n %d up %d res %v: asked %d copies, want %d", n, up, res, len(asked), up)
				}
				for i, m := range order {
					if !slices.Contains(asked, i) || res[i] != Found {
						rest = append(rest, m)
					}
				}
				if out == OutFound && !slices.Equal(tk.Rest(nil), rest) {
					t.Fatalf("n %d res %v: rest %v, want %v", n, res, tk.Rest(nil), rest)
				}
			}
		}
	}
	// The caller's deadline passes with the owner's answer (the value) in
	// and the replica's not: the Take won.
	tk := NewTake([]string{"a", "b"}, 2)
	tk.Ask()
	tk.Ask()
	if tk.Answer(0, Found) != Pending || tk.Final() != OutFound || !slices.Equal(tk.Rest(nil), []string{"b"}) {
		t.Fatal("a Take cut short after a found copy must win and delete the rest")
	}
	tk = NewTake([]string{"a", "b"}, 2)
	tk.Ask()
	if tk.Final() != OutFailed {
		t.Fatal("a Take cut short before any answer must fail")
	}
}

func TestMiss(t *testing.T) {
	ms := members(3)
	c := newCore(t, Config{Members: ms})
	cases := []struct {
		transferring, tombstoned bool
		want                     MissAnswer
	}{
		{true, false, MissTransferring},
		{true, true, MissNotFound},
		{false, false, MissNotFound},
		{false, true, MissNotFound},
	}
	for _, tc := range cases {
		if c.Transfer().Transferring != tc.transferring {
			// Finish the transfer: every part of every other member in.
			gen := c.TransferGen()
			for _, p := range c.TransferRound(t0, gen) {
				c.TransferPartDone(t0, gen, p, "")
			}
			c.TransferRoundEnd(t0, gen)
		}
		if c.Transfer().Transferring != tc.transferring {
			t.Fatalf("could not set transferring %v", tc.transferring)
		}
		if got := c.Miss(t0, []byte("k"), tc.tombstoned); got != tc.want {
			t.Errorf("transferring %v tombstoned %v: %d, want %d", tc.transferring, tc.tombstoned, got, tc.want)
		}
		if got := c.LocalMissCounts(); got == tc.transferring {
			t.Errorf("LocalMissCounts = %v while transferring %v", got, tc.transferring)
		}
	}
}

// TestOwnersIsFresh: Route orders ring.Owners' result in place and gives
// it to its caller, which is right only while Owners returns a new slice
// on every call. If the ring ever caches them, this fails before a route
// corrupts the cache.
func TestOwnersIsFresh(t *testing.T) {
	r, _ := ring.New(members(5))
	a := r.Owners([]byte("k"), 3)
	b := r.Owners([]byte("k"), 3)
	if &a[0] == &b[0] {
		t.Fatal("ring.Owners returned the same backing array twice: Route must copy it")
	}
	c := newCore(t, Config{Members: members(5), Replicas: 3})
	want := slices.Clone(c.Ring().Owners([]byte("k"), 3))
	o, _ := c.Route(RouteRead, []byte("k"))
	o[0], o[1] = "x", "y"
	if got := c.Ring().Owners([]byte("k"), 3); !slices.Equal(got, want) {
		t.Fatalf("changing a route changed the ring: %v, want %v", got, want)
	}
}
