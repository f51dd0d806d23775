// keyring_test.go: the key schedule on an in-memory ring with injected
// clocks: sharing, rotation, retention and erasure, skewed clocks, a
// restarted member, a member cut off, an owner that is down.

package ticketkeys

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

const (
	period    = time.Minute
	retention = 3 * time.Minute
)

// epochStart is a time at the start of an epoch.
var epochStart = time.Unix(1_800_000_000/60*60, 0)

// fleet returns keyrings for members "a" (the owner of every key) and
// others, sharing one store and clock.
func fleet(t *testing.T, c *clock, names ...string) ([]*Keyring, []*member) {
	s := newMemStore(c)
	var ks []*Keyring
	var ms []*member
	for _, n := range names {
		m := &member{Store: s, self: n, owner: names[0]}
		ms = append(ms, m)
		ks = append(ks, newRing(t, m, Options{Period: period, Retention: retention, Now: c.now}))
	}
	return ks, ms
}

func TestSharedAcrossMembers(t *testing.T) {
	c := newClock(epochStart.Add(time.Second))
	ks, _ := fleet(t, c, "a", "b")
	refresh(t, ks[0])
	refresh(t, ks[1])
	tk, err := ks[0].Seal([]byte("state"))
	if err != nil {
		t.Fatal(err)
	}
	mustOpen(t, ks[1], tk, "state")
	tk2, _ := ks[1].Seal([]byte("other"))
	mustOpen(t, ks[0], tk2, "other")
	if got := ks[0].Keys(); len(got) != 1 || got[0].Local {
		t.Fatalf("a holds %+v, want one ring key", got)
	}
	// A flipped bit anywhere is refused.
	for i := range tk {
		bad := bytes.Clone(tk)
		bad[i] ^= 1
		if _, err := ks[1].Open(bad); err == nil {
			t.Fatalf("ticket with byte %d flipped opened", i)
		}
	}
}

// TestRotationAndRetention: the next key is fetched half-way through an
// epoch; a ticket resumes through its retention and nowhere after; its key
// is erased from every member and from the store, so a key set captured
// then cannot open it.
func TestRotationAndRetention(t *testing.T) {
	c := newClock(epochStart.Add(time.Second))
	ks, ms := fleet(t, c, "a", "b")
	for _, k := range ks {
		refresh(t, k)
	}
	old, _ := ks[0].Seal([]byte("old"))
	oldEpoch := ks[0].epochAt(c.now())
	c.add(period / 2)
	for _, k := range ks {
		refresh(t, k)
	}
	if n := len(ks[1].Keys()); n != 2 {
		t.Fatalf("b holds %d keys half-way through the epoch, want 2 (current, next)", n)
	}
	// Through the retention, every member opens it.
	for c.now().Add(20 * time.Second).Before(ks[0].expiry(oldEpoch)) {
		c.add(20 * time.Second)
		for _, k := range ks {
			refresh(t, k)
			mustOpen(t, k, old, "old")
		}
	}
	c.set(ks[0].expiry(oldEpoch))
	for _, k := range ks {
		refresh(t, k)
		if _, err := k.Open(old); !errors.Is(err, ErrTooOld) {
			t.Fatalf("past the retention: Open err = %v, want ErrTooOld", err)
		}
		for _, key := range k.Keys() {
			if key.Epoch == oldEpoch {
				t.Fatalf("key of epoch %d still held past its retention", oldEpoch)
			}
		}
	}
	if ms[0].Holds(ks[0].name(oldEpoch)) {
		t.Fatal("store still holds the expired key")
	}
	// A captured key set (every key held now, by every member, and the
	// store's) opens nothing older than the retention, even ignoring the
	// epoch in the ticket.
	var captured []Key
	for _, k := range ks {
		captured = append(captured, k.Keys()...)
	}
	ms[0].Range(func(_ string, v []byte, exp time.Time) {
		if exp.After(c.now()) {
			captured = append(captured, *newKey(0, v, false))
		}
	})
	if len(captured) == 0 {
		t.Fatal("nothing captured")
	}
	for _, key := range captured {
		if _, err := aeadFor(&key.Secret, old[13:headerLen]).Open(nil, zeroNonce[:], old[headerLen:], old[:headerLen]); err == nil {
			t.Fatalf("captured key of epoch %d opens a ticket older than the retention", key.Epoch)
		}
	}
}

// TestSkewedClocks: b's clock runs 5 s behind a's. Across an epoch
// boundary each opens the other's tickets, whichever epoch sealed them.
func TestSkewedClocks(t *testing.T) {
	c := newClock(epochStart.Add(period - 20*time.Second))
	s := newMemStore(c)
	a := newRing(t, &member{Store: s, self: "a", owner: "a"}, Options{Period: period, Retention: retention, Now: c.now})
	b := newRing(t, &member{Store: s, self: "b", owner: "a"}, Options{Period: period, Retention: retention, Now: c.skewed(-5 * time.Second)})
	refresh(t, a)
	refresh(t, b)
	c.add(18 * time.Second) // a: 2 s before the boundary, b: 7 s
	refresh(t, a)
	refresh(t, b)
	c.add(4 * time.Second) // a: 2 s after, b: 3 s before
	if a.epochAt(c.now()) == b.epochAt(b.o.Now()) {
		t.Fatal("test setup: clocks in one epoch")
	}
	fromA, _ := a.Seal([]byte("a"))
	fromB, _ := b.Seal([]byte("b"))
	mustOpen(t, b, fromA, "a")
	mustOpen(t, a, fromB, "b")
}

// TestRestartedMember: a member that starts with an empty memory gets every
// retained key from the ring and opens tickets issued before it started.
func TestRestartedMember(t *testing.T) {
	c := newClock(epochStart.Add(time.Second))
	ks, ms := fleet(t, c, "a", "b")
	var tickets [][]byte
	for range 3 {
		refresh(t, ks[0])
		tk, _ := ks[0].Seal([]byte("x"))
		tickets = append(tickets, tk)
		c.add(period)
	}
	refresh(t, ks[0])
	fresh := newRing(t, ms[1], Options{Period: period, Retention: retention, Now: c.now})
	refresh(t, fresh)
	for i, tk := range tickets {
		if _, err := fresh.Open(tk); err != nil {
			t.Fatalf("ticket %d: %v", i, err)
		}
	}
}

// TestCutOff: a member that reaches no one seals under a local key (never
// fails); it opens its own tickets, others do not; once the ring is back
// it seals under the ring's key again.
func TestCutOff(t *testing.T) {
	c := newClock(epochStart.Add(time.Second))
	ks, ms := fleet(t, c, "a", "b")
	refresh(t, ks[0])
	ms[1].cut.Store(true)
	if _, err := ks[1].Refresh(t.Context()); err == nil {
		t.Fatal("refresh of a cut-off member reported no error")
	}
	tk, err := ks[1].Seal([]byte("local"))
	if err != nil {
		t.Fatal(err)
	}
	mustOpen(t, ks[1], tk, "local")
	if _, err := ks[0].Open(tk); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("other member: err = %v, want ErrUnknownKey", err)
	}
	ms[1].cut.Store(false)
	refresh(t, ks[1])
	tk2, _ := ks[1].Seal([]byte("ring"))
	mustOpen(t, ks[0], tk2, "ring")
	mustOpen(t, ks[1], tk, "local") // the local key still opens what it sealed
}

// TestOwnerDown: when the owner never makes the key, another member makes
// it an eighth of a period into the epoch and the others adopt it.
func TestOwnerDown(t *testing.T) {
	c := newClock(epochStart.Add(time.Second))
	ks, _ := fleet(t, c, "owner", "b", "c")
	refresh(t, ks[1])
	if len(ks[1].Keys()) != 0 {
		t.Fatal("a non-owner made a key before the owner's turn")
	}
	c.add(period / 8)
	refresh(t, ks[1])
	refresh(t, ks[2])
	tk, _ := ks[1].Seal([]byte("x"))
	mustOpen(t, ks[2], tk, "x")
}

func TestOptions(t *testing.T) {
	s := newMemStore(newClock(epochStart))
	for _, o := range []Options{{Period: time.Millisecond}, {Period: time.Second, Retention: time.Hour}, {Retention: -1}, {Retention: 8 * 24 * time.Hour}, {Timeout: -1}} {
		if _, err := New(s, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) accepted")
	}
}
