// Routing decisions: the order in which a key's copies are asked, when a
// read or take hedges to the next copy, how a read and a take progress to
// their result, and what a miss answers.

package core

import (
	"time"
)

// RouteKind says what a route is for.
type RouteKind uint8

// Route kinds.
const (
	// RouteRead and RouteWrite order a key's copies this member first if
	// it holds one (a local read is free), then the others in ring order,
	// members marked down last.
	RouteRead RouteKind = iota + 1
	RouteWrite
	// RouteTake orders them in ring order, owner first wherever the Take
	// runs (the owner decides races between Takes), with members marked
	// down (other than this one) moved to the end; when every copy is
	// down, all are asked.
	RouteTake
)

// Route returns the members holding key under the current ring, in the
// order to ask them for kind, and how many of them to ask: up of them are
// not marked down (for RouteRead and RouteWrite, up may be 0: every copy is
// down; for RouteTake, up is never 0). The returned slice is the caller's.
func (c *Core) Route(kind RouteKind, key []byte) (order []string, up int) {
	// Owners returns a fresh slice on every call (TestOwnersIsFresh): it is
	// ordered in place and handed to the caller, with no copy.
	order = c.ring.Load().Owners(key, c.cfg.Replicas)
	c.mu.RLock()
	up = c.order(kind, order)
	if c.cfg.Recorder != nil {
		c.record(Event{Kind: KindRoute, Route: kind, Key: key}, Decision{Order: order, Up: up})
	}
	c.mu.RUnlock()
	return order, up
}

// order sorts owners (in ring order) in place for kind; c.mu is held. Each
// member's health is read once.
func (c *Core) order(kind RouteKind, owners []string) (up int) {
	var downBuf [8]string
	down := downBuf[:0]
	n := 0
	if kind != RouteTake {
		for i, m := range owners {
			if m == c.cfg.Self {
				copy(owners[1:i+1], owners[:i])
				owners[0] = m
				n = 1
				break
			}
		}
	}
	for _, m := range owners[n:] {
		if _, isDown := c.down[m]; isDown && m != c.cfg.Self {
			down = append(down, m)
			continue
		}
		owners[n] = m
		n++
	}
	copy(owners[n:], down)
	if kind == RouteTake && n == 0 {
		return len(owners) // every copy down: ask them all anyway
	}
	return n
}

// Hedge returns how long a call of kind waits for one copy before the next
// is asked too, left being what remains of the caller's deadline (0: none).
// A read hedges after HedgeAfter. A Take waits half of what is left (at
// least HedgeAfter): moving on to the replica before the owner answered
// lets two racing Takes each remove one copy and both lose.
func (c *Core) Hedge(kind RouteKind, left time.Duration) time.Duration {
	if kind == RouteTake && left > 0 {
		return max(c.cfg.HedgeAfter, left/2)
	}
	return c.cfg.HedgeAfter
}

// MissAnswer is how a member answers a Get or Take of a key its store does
// not hold.
type MissAnswer uint8

// Miss answers.
const (
	// MissNotFound: the key is not here (StatusNotFound).
	MissNotFound MissAnswer = iota + 1
	// MissTransferring: the key may yet arrive by state transfer; the
	// caller should ask the other copy (StatusError).
	MissTransferring
)

// Miss decides the answer to a read or take this member's store misses:
// not found, unless the state transfer still runs and the key is not known
// deleted (tombstoned). A Take relies on a tombstone's answer being not
// found: that is what lets only one of two racing Takes win.
func (c *Core) Miss(now time.Time, key []byte, tombstoned bool) MissAnswer {
	now = wallClock(now)
	c.mu.RLock()
	a := MissNotFound
	if c.tr.transferring && !tombstoned {
		a = MissTransferring
	}
	if c.cfg.Recorder != nil {
		c.record(Event{Kind: KindMiss, At: now, Key: key, Tombstoned: tombstoned}, Decision{Miss: a})
	}
	c.mu.RUnlock()
	return a
}

// LocalMissCounts reports whether a miss of this member's own store is a
// miss (false while the state transfer still runs: the key may yet
// arrive). It is the same state Miss decides on, read without an event.
func (c *Core) LocalMissCounts() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.tr.transferring
}

// Result is one copy's answer to a read or take.
type Result uint8

// Results.
const (
	Found    Result = iota + 1 // the copy had the value
	NotFound                   // the copy answered that it has none
	Failed                     // no answer, or an error answer
)

// Outcome is a finished read or take.
type Outcome uint8

// Outcomes.
const (
	Pending   Outcome = iota // not finished
	OutFound                 // a copy returned the value (a Take: it won)
	OutMiss                  // no copy that answered has the key
	OutFailed                // no copy answered: return the last error
)

// Read is the progress of one Get over the copies of its key other than
// this member's own: it says whom to ask next, on a hedge timer or an
// answer, and when the Get is decided. It is a value with no pointers into
// the Core; the zero Read has nothing to ask.
type Read struct {
	order   []string
	next    int
	pending int
	missed  bool // a copy that answered does not have the key
	failed  bool
}

// NewRead starts a read of the copies in order (Route's order without this
// member's own copy, which the caller read already). localMiss says this
// member's own copy answered a miss that counts (LocalMissCounts).
func NewRead(order []string, localMiss bool) Read {
	return Read{order: order, missed: localMiss}
}

// Ask returns the next copy to ask, if any is left, and counts it as
// pending. Call it once to start, and when the hedge timer fires (see
// Hedge).
func (r *Read) Ask() (member string, ok bool) {
	if r.next == len(r.order) {
		return "", false
	}
	m := r.order[r.next]
	r.next++
	r.pending++
	return m, true
}

// Answer records a pending copy's answer. It returns the Outcome once the
// read is decided (Pending otherwise); while pending, a miss or failure
// means the next copy should be asked: call Ask.
func (r *Read) Answer(res Result) Outcome {
	r.pending--
	switch res {
	case Found:
		return OutFound
	case NotFound:
		r.missed = true
	default:
		r.failed = true
	}
	if r.pending > 0 || r.next < len(r.order) {
		return Pending
	}
	return r.Final()
}

// Final is the outcome once no call is pending and none is left to ask: a
// miss if some copy answered one (or none failed), else a failure.
func (r *Read) Final() Outcome {
	if r.missed || !r.failed {
		return OutMiss
	}
	return OutFailed
}

// Take is the progress of one Take over the copies of its key, in
// RouteTake order. It wins only if some copy returned the value and no copy
// answered that it had none; the first not-found ends it as a miss. Its
// copies are removed one after another: Ask the first, then the next after
// each answer or when the hedge timer (Hedge(RouteTake, left)) fires.
type Take struct {
	order    []string // all copies, RouteTake order
	ask      int      // how many of them to ask
	next     int
	pending  int
	got      bool
	answered uint64 // bit i: order[i] returned the value
}

// NewTake starts a Take over order, asking its first up members (Route's
// results for RouteTake).
func NewTake(order []string, up int) Take {
	return Take{order: order, ask: up}
}

// Ask returns the next copy to ask and its index in order, if any is left.
func (t *Take) Ask() (member string, index int, ok bool) {
	if t.next == t.ask {
		return "", 0, false
	}
	i := t.next
	t.next++
	t.pending++
	return t.order[i], i, true
}

// Answer records the answer of the copy at index. It returns the Outcome
// once the take is decided (Pending otherwise: call Ask for the next copy).
func (t *Take) Answer(index int, res Result) Outcome {
	t.pending--
	switch res {
	case Found:
		t.got = true
		t.answered |= 1 << index
	case NotFound:
		return OutMiss // another Take got here first (or this copy never had it)
	}
	if t.pending > 0 || t.next < t.ask {
		return Pending
	}
	return t.Final()
}

// Final is the outcome when the Take stops (no call pending, or the
// caller's deadline passed): won if some copy returned the value.
func (t *Take) Final() Outcome {
	if t.got {
		return OutFound
	}
	return OutFailed
}

// Rest appends to dst the copies that may still hold the key after a won
// Take (those that did not return the value): send them a Delete.
func (t *Take) Rest(dst []string) []string {
	for i, m := range t.order {
		if t.answered&(1<<i) == 0 {
			dst = append(dst, m)
		}
	}
	return dst
}
