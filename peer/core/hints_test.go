// Tests of delayed writes: the bound, replacement, delivery layout,
// expiry, rerouting after a ring change, and putting back what failed.

package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ring"
)

func TestHintBound(t *testing.T) {
	ms := members(3)
	x := ms[1]
	cost := int64(len("k0")+10) + HintOverhead
	c := newCore(t, Config{Members: ms, HintBytes: 3 * cost})
	val := []byte(strings.Repeat("v", 10))
	for i := range 3 {
		if !c.HintAdd(t0, x, fmt.Appendf(nil, "k%d", i), c.SetHintAt(t0, val, time.Hour)) {
			t.Fatalf("hint %d dropped within the bound", i)
		}
	}
	if c.HintAdd(t0, x, []byte("k3"), c.SetHintAt(t0, val, time.Hour)) {
		t.Fatal("a hint over the bound was kept")
	}
	if n, b := c.HintStats(); n != 3 || b != 3*cost {
		t.Fatalf("stats %d %d, want 3 %d", n, b, 3*cost)
	}
	// A newer write of a kept key replaces it (same cost: fits).
	if !c.HintAdd(t0, x, []byte("k1"), c.DeleteHintAt(t0)) {
		t.Fatal("replacing a kept key was refused")
	}
	if n, b := c.HintStats(); n != 3 || b != 2*cost+int64(len("k1"))+HintOverhead {
		t.Fatalf("stats after replace %d %d", n, b)
	}
	// A newer write that does not fit drops the older one too.
	big := []byte(strings.Repeat("v", int(3*cost)))
	if c.HintAdd(t0, x, []byte("k0"), c.SetHintAt(t0, big, time.Hour)) {
		t.Fatal("an oversize hint was kept")
	}
	if n, _ := c.HintStats(); n != 2 {
		t.Fatalf("%d hints after an oversize replacement, want 2", n)
	}
	// The caller's value buffer is not kept.
	buf := []byte("abc")
	c2 := newCore(t, Config{Members: ms})
	c2.HintAdd(t0, x, []byte("kk"), c2.SetHintAt(t0, buf, time.Hour))
	buf[0] = 'X'
	c2.CallOK(t0, x)
	if d := c2.HintsTake(t0, x); len(d.Sets) != 1 || string(d.Sets[0].Value) != "abc" {
		t.Fatalf("delivery %+v: the hint must own its value", d)
	}
}

// keyOwnedBy returns a key whose copies (2 replicas) under r include
// member, or exclude it when want is false.
func keyOwnedBy(r *ring.Ring, member string, want bool, skip int) []byte {
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "key-%d", i)
		if slices.Contains(r.Owners(k, 2), member) == want {
			if skip == 0 {
				return k
			}
			skip--
		}
	}
}

func TestHintDelivery(t *testing.T) {
	ms := members(4)
	self, x := ms[0], ms[1]
	c := newCore(t, Config{Self: self, Members: ms, TombstoneTTL: time.Minute})
	r := c.Ring()
	k1, k2, k3 := keyOwnedBy(r, x, true, 0), keyOwnedBy(r, x, true, 1), keyOwnedBy(r, x, true, 2)
	c.HintAdd(t0, x, k1, c.SetHintAt(t0, []byte("v1"), time.Hour))
	c.HintAdd(t0, x, k2, c.DeleteHintAt(t0))
	c.HintAdd(t0, x, k3, c.SetHintAt(t0, []byte("v3"), time.Second))
	if got := c.HintsPending(); !slices.Equal(got, []string{x}) {
		t.Fatalf("pending %v", got)
	}
	if !c.HintsClaim(t0, x) || c.HintsClaim(t0, x) {
		t.Fatal("one delivery at a time")
	}
	if got := c.HintsPending(); got != nil {
		t.Fatalf("pending during a delivery: %v", got)
	}
	if d := c.Tick(t0.Add(time.Hour)); d.Deliver != nil {
		t.Fatalf("tick delivers during a delivery: %v", d.Deliver)
	}
	now := t0.Add(2 * time.Second) // k3 has expired
	d := c.HintsTake(now, x)
	if len(d.Sets) != 1 || string(d.Sets[0].Key) != string(k1) || d.Sets[0].TTL != time.Hour-2*time.Second {
		t.Fatalf("sets %+v", d.Sets)
	}
	if len(d.Deletes) != 1 || d.Deletes[0].Key != string(k2) || d.Expired != 1 || d.Local != nil {
		t.Fatalf("delivery %+v", d)
	}
	if n, b := c.HintStats(); n != 0 || b != 0 {
		t.Fatalf("stats after take %d %d", n, b)
	}
	// The delete failed; meanwhile a newer write of k1 arrived. Put back:
	// k2 returns, k1's newer write stays.
	c.HintAdd(now, x, k1, c.SetHintAt(now, []byte("newer"), time.Hour))
	c.HintsReturn(now, x, []HintEntry{d.Deletes[0], d.Sets[0].Entry()})
	c.HintsDone(now, x)
	if !c.HintsClaim(now, x) {
		t.Fatal("a delivery can start again after HintsDone")
	}
	d = c.HintsTake(now, x)
	if len(d.Sets) != 1 || string(d.Sets[0].Value) != "newer" || len(d.Deletes) != 1 {
		t.Fatalf("after return: %+v", d)
	}
	// A member marked down is not delivered to by Tick.
	c.HintsDone(now, x)
	c.HintAdd(now, x, k1, c.SetHintAt(now, []byte("v"), time.Hour))
	c.CallFailed(now, x, false, "x")
	if d := c.Tick(now.Add(time.Hour)); d.Deliver != nil || !slices.Equal(d.Probe, []string{x}) {
		t.Fatalf("tick with x down: %+v", d)
	}
	c.CallOK(now, x)
	if d := c.Tick(now.Add(2 * time.Hour)); !slices.Equal(d.Deliver, []string{x}) {
		t.Fatalf("tick with x up: %+v", d)
	}
}

func TestHintReroute(t *testing.T) {
	ms := members(5)
	self, x := ms[0], ms[1]
	c := newCore(t, Config{Self: self, Members: ms})
	// Keys x holds now; after x leaves, each goes to its new copies.
	var keys [][]byte
	for i := range 20 {
		k := keyOwnedBy(c.Ring(), x, true, i)
		keys = append(keys, k)
		c.HintAdd(t0, x, k, c.SetHintAt(t0, []byte("v"), time.Hour))
	}
	c.HintAdd(t0, x, keyOwnedBy(c.Ring(), x, true, 20), c.SetHintAt(t0, []byte("v"), time.Millisecond))
	// Leave x in the ring (so its hints are not forgotten) but move keys:
	// add members until some of x's keys have other copies.
	more := append(slices.Clone(ms), members(12)[5:]...)
	c.SetMembers(t0, more)
	r := c.Ring()
	d := c.HintsTake(t0.Add(time.Second), x)
	stay, local := 0, 0
	for _, k := range keys {
		copies := r.Owners(k, 2)
		switch {
		case slices.Contains(copies, x):
			stay++
		case slices.Contains(copies, self):
			local++
		}
	}
	if len(d.Sets) != stay || len(d.Local) != local {
		t.Fatalf("delivery: %d sets %d local, want %d %d", len(d.Sets), len(d.Local), stay, local)
	}
	if stay == len(keys) {
		t.Fatal("test setup: no key moved")
	}
	// The moved keys are kept for their new copies other than self.
	n, _ := c.HintStats()
	want := 0
	for _, k := range keys {
		copies := r.Owners(k, 2)
		if slices.Contains(copies, x) {
			continue
		}
		for _, m := range copies {
			if m != self {
				want++
			}
		}
	}
	if n != want {
		t.Fatalf("%d rerouted hints kept, want %d (the expired one dropped)", n, want)
	}
	// Hints of a member that leaves are forgotten.
	c.SetMembers(t0, ms[:1])
	if n, b := c.HintStats(); n != 0 || b != 0 {
		t.Fatalf("hints of departed members kept: %d %d", n, b)
	}
}
