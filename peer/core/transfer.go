// State transfer scheduling: a member that starts, or is added back to the
// ring, pulls its entries from every other member in TransferParts parts
// each. The Core decides which parts each round asks, how long to wait
// before retrying failed ones (backoff with jitter), and whether the
// member still counts as transferring (readiness, and what a miss
// answers); the driver asks for the parts.

package core

import (
	"slices"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// Part is one part of one member's share of a state transfer.
type Part struct {
	Member string `json:"member"`
	Part   int    `json:"part"`
}

// transfer is the state of one state transfer. Parts are kept as bit
// masks per member (index as in the ring's sorted member list, which it
// shares), so a core of a 1000-member ring holds a few kilobytes for it,
// not 16,000 parts.
type transfer struct {
	gen     uint64
	members []string          // the ring's members, sorted (shared; self's masks stay 0)
	want    []uint16          // parts not in yet, by member
	next    []uint16          // parts the next round asks for
	retry   []uint16          // parts of this round to retry
	errs    map[string]string // member -> why its last part failed
	waiting int               // members with parts not in, not marked down
	attempt int
	backoff time.Duration
	started time.Time
	took    time.Duration
	done    bool

	transferring bool // waiting > 0
}

const allParts = 1<<TransferParts - 1

// startTransfer starts generation gen+1 for r; c.mu is held (or c is new).
func (c *Core) startTransfer(now time.Time, r *ring.Ring) {
	t := &c.tr
	ms := r.Members()
	*t = transfer{gen: t.gen + 1, members: ms, errs: map[string]string{},
		want: make([]uint16, len(ms)), next: make([]uint16, len(ms)), retry: make([]uint16, len(ms)),
		backoff: TransferBackoffMin, started: now, done: true}
	for i, m := range ms {
		if m == c.cfg.Self {
			continue
		}
		t.want[i], t.next[i] = allParts, allParts
		t.done = false
	}
	c.updateTransferring(now)
}

// updateTransferring recounts the members the transfer waits for at now;
// c.mu is held. A member marked down holds readiness only until
// Config.TransferPatience after the transfer started: it may never come
// back. (Every round end recounts, so the patience running out is seen
// within one backoff.)
func (c *Core) updateTransferring(now time.Time) {
	t := &c.tr
	patient := now.Sub(t.started) < c.cfg.TransferPatience
	t.waiting = 0
	for i, w := range t.want {
		if w != 0 {
			if _, d := c.down[t.members[i]]; !d || patient {
				t.waiting++
			}
		}
	}
	t.transferring = t.waiting > 0
}

// TransferGen returns the generation of the current state transfer (1 for
// the one New starts; SetMembers starts the next).
func (c *Core) TransferGen() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tr.gen
}

// TransferRound returns the parts to ask for in the next round of transfer
// gen: every part not in yet, except (after the first round) those of
// members marked down, which wait for a probe to find them up. Report each
// with TransferPartDone, then call TransferRoundEnd. It returns nothing
// for a transfer that is done or was replaced.
func (c *Core) TransferRound(now time.Time, gen uint64) []Part {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.tr
	var parts []Part
	if gen == t.gen && !t.done {
		for i, mask := range t.next {
			if mask == 0 {
				continue
			}
			t.next[i] = 0
			m := t.members[i]
			if _, d := c.down[m]; d && t.attempt > 0 {
				t.retry[i] |= mask // wait for a probe to find it up
				continue
			}
			for p := range TransferParts {
				if mask&(1<<p) != 0 {
					parts = append(parts, Part{m, p})
				}
			}
		}
	}
	c.record(Event{Kind: KindTransferRound, At: now, Gen: gen}, Decision{Parts: parts})
	return parts
}

// TransferPartDone records the end of one part's request: err is "" if the
// member pushed the whole part, else why not (the part is retried next
// round). It reports whether the member still counts as transferring.
func (c *Core) TransferPartDone(now time.Time, gen uint64, p Part, err string) (transferring bool) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.tr
	if i, ok := slices.BinarySearch(t.members, p.Member); ok && gen == t.gen && !t.done &&
		p.Part >= 0 && p.Part < TransferParts && t.want[i] != 0 {
		bit := uint16(1) << p.Part
		if err != "" {
			t.retry[i] |= bit
			t.errs[p.Member] = err
		} else if t.want[i] &^= bit; t.want[i] == 0 {
			delete(t.errs, p.Member)
			c.updateTransferring(now) // once per member, when its share is in
		}
	}
	c.record(Event{Kind: KindTransferPartDone, At: now, Gen: gen, Part: p, Err: err}, Decision{Transferring: t.transferring})
	return t.transferring
}

// TransferRoundEnd ends a round of transfer gen: Done if every part is
// in, else Wait, how long to wait before the next round (wake early when a
// member comes up: CallOK). Waits start at TransferBackoffMin and double
// up to TransferBackoffMax, with full jitter, so members restarted together
// do not retry in step.
func (c *Core) TransferRoundEnd(now time.Time, gen uint64) Decision {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &c.tr
	var d Decision
	switch {
	case gen != t.gen:
	case t.done:
		d.Done = true
	default:
		t.attempt++
		left := false
		for i, r := range t.retry {
			t.next[i] |= r
			t.retry[i] = 0
			left = left || t.next[i] != 0
		}
		if !left {
			t.done = true
			t.took = now.Sub(t.started)
			d.Done = true
		} else {
			d.Wait = c.jitter(t.backoff)
			t.backoff = min(2*t.backoff, TransferBackoffMax)
		}
		c.updateTransferring(now)
	}
	d.Transferring = t.transferring
	c.record(Event{Kind: KindTransferRoundEnd, At: now, Gen: gen}, d)
	return d
}

// jitter returns a wait between half of b and b; c.mu is held.
func (c *Core) jitter(b time.Duration) time.Duration {
	return b/2 + time.Duration(c.rnd.Int64N(int64(b/2)+1))
}

// TransferStatus describes the current state transfer.
type TransferStatus struct {
	Gen          uint64
	Transferring bool              // a miss may yet be filled: waiting for members not marked down
	Pending      map[string]string // members whose share is not in, with the last error ("" if none yet)
	Done         bool              // every part is in
	Took         time.Duration     // how long it took, once Done
}

// Transfer returns the state of the current state transfer; Pending is
// filled only while Transferring.
func (c *Core) Transfer() TransferStatus {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := &c.tr
	s := TransferStatus{Gen: t.gen, Transferring: t.transferring, Done: t.done, Took: t.took}
	if t.transferring {
		s.Pending = map[string]string{}
		for i, w := range t.want {
			if w != 0 {
				s.Pending[t.members[i]] = t.errs[t.members[i]]
			}
		}
	}
	return s
}

// PartOf is the transfer part of key: FNV-1a of the key modulo parts. It
// must be the same in every member and every version.
func PartOf(key []byte, parts int) int {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return int(h % uint64(parts))
}

// Readiness is whether a member is ready to serve its share of the ring,
// and why not, read in one snapshot.
type Readiness struct {
	// Ready: the state transfer waits for nobody, and the member reaches
	// at least one other member (or is the only one). It is not "every
	// member is up": with one member of a large ring down, every other
	// member is still ready.
	Ready        bool
	Transferring bool                // as in TransferStatus
	Pending      map[string]string   // as in TransferStatus, while Transferring
	Down         map[string]DownInfo // members marked down
	Members      int                 // members in the ring
}

// Readiness returns the member's readiness.
func (c *Core) Readiness() Readiness {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := &c.tr
	rd := Readiness{Transferring: t.transferring, Members: c.ring.Load().Len(), Down: make(map[string]DownInfo, len(c.down))}
	for m, d := range c.down {
		rd.Down[m] = d
	}
	if t.transferring {
		rd.Pending = map[string]string{}
		for i, w := range t.want {
			if w != 0 {
				rd.Pending[t.members[i]] = t.errs[t.members[i]]
			}
		}
	}
	reachable := rd.Members == 1 || len(rd.Down) < rd.Members-1
	rd.Ready = !rd.Transferring && reachable
	return rd
}
