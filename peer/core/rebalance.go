// Membership changes: the new ring, what each local entry's move is, and
// the backoff of a rebalance that must be retried.

package core

import (
	"slices"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// SetMembers replaces the member list at now. An invalid list (empty, a
// duplicate) is ignored and Err says why. Health and delayed writes of
// members that left are forgotten. If this member was not in the old ring
// and is in the new one (added back), a new state transfer starts:
// StartTransfer, generation Gen.
func (c *Core) SetMembers(now time.Time, members []string) Decision {
	now = wallClock(now)
	r, err := ring.New(members)
	if err != nil {
		d := Decision{Err: err.Error()}
		if c.cfg.Recorder != nil {
			c.mu.Lock()
			c.record(Event{Kind: KindSetMembers, At: now, Members: members}, d)
			c.mu.Unlock()
		}
		return d
	}
	return c.SetRing(now, r)
}

// SetRing is SetMembers with the ring already built (by the caller, who
// then knows which ring took effect).
func (c *Core) SetRing(now time.Time, r *ring.Ring) Decision {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	var d Decision
	old := c.ring.Swap(r)
	for m := range c.down {
		if !r.Contains(m) {
			delete(c.down, m)
		}
	}
	for m := range c.timeouts {
		if !r.Contains(m) {
			delete(c.timeouts, m)
		}
	}
	c.forgetHints(r.Contains)
	if r.Contains(c.cfg.Self) && !old.Contains(c.cfg.Self) {
		c.startTransfer(now, r)
		d.StartTransfer, d.Gen = true, c.tr.gen
	} else {
		c.updateTransferring(now)
	}
	c.record(Event{Kind: KindSetMembers, At: now, Members: r.Members()}, d)
	return d
}

// Plan decides the move of one local entry when the ring changes from
// `from` to `to`: it appends to dst the members to send key to (its copies
// under to that did not hold it under from, or have left), and reports
// whether this member drops its own copy once the moves succeeded. Each
// entry is sent by one member only: the first of its old copies that is
// still a member (this one when it is leaving, or when every old copy is
// gone but this stray one).
func (c *Core) Plan(from, to *ring.Ring, key []byte, dst []string) (send []string, drop bool) {
	self, n := c.cfg.Self, c.cfg.Replicas
	oldCopies, newCopies := from.Owners(key, n), to.Owners(key, n)
	sender := self
	if to.Contains(self) {
		sender = ""
		for _, m := range oldCopies {
			if to.Contains(m) {
				sender = m
				break
			}
		}
		if sender == "" {
			sender = self
		}
	}
	send = dst
	if sender == self {
		for _, m := range newCopies {
			if m == self || (slices.Contains(oldCopies, m) && to.Contains(m)) {
				continue // has it already
			}
			send = append(send, m)
		}
	}
	return send, !slices.Contains(newCopies, self)
}

// RebalanceBackoff returns how long to wait before retrying a rebalance
// that failed part-way after waiting backoff (0 for the first retry), and
// the backoff to pass for the next one: from RebalanceBackoffMin doubling
// to RebalanceBackoffMax, jittered between half and all of it.
func (c *Core) RebalanceBackoff(now time.Time, backoff time.Duration) (wait, next time.Duration) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if backoff <= 0 {
		backoff = RebalanceBackoffMin
	}
	wait = c.jitter(backoff)
	next = min(2*backoff, RebalanceBackoffMax)
	c.record(Event{Kind: KindRebalanceBackoff, At: now, Backoff: backoff}, Decision{Wait: wait, Next: next})
	return wait, next
}
