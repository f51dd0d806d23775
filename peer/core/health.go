// Failure detection: a member that cannot be reached, or whose calls time
// out DownAfter times in a row, is marked down and asked last until a probe
// (or an external liveness source) finds it answering again.

package core

import (
	"slices"
	"time"
)

// DownInfo says when and why a member was marked down.
type DownInfo struct {
	Since time.Time
	Err   string // the latest failure (readiness shows it)
}

// CallOK records that member answered a call. It reports whether member
// was marked down and is up again: then deliver its delayed writes and wake
// a state transfer waiting for it.
func (c *Core) CallOK(now time.Time, member string) (up bool) {
	now = wallClock(now)
	c.mu.RLock()
	_, was := c.down[member]
	n := c.timeouts[member]
	c.mu.RUnlock()
	if (c.cfg.ExternalLiveness || !was && n == 0) && c.cfg.Recorder == nil {
		return false // the common case: no write lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cfg.ExternalLiveness {
		up = c.markUp(now, member)
		delete(c.timeouts, member)
	}
	c.record(Event{Kind: KindCallOK, At: now, Member: member}, Decision{Changed: up})
	return up
}

func (c *Core) markUp(now time.Time, member string) bool {
	if _, was := c.down[member]; !was {
		return false
	}
	delete(c.down, member)
	c.updateTransferring(now)
	return true
}

// CallFailed records a call to member that got no answer; timedOut says it
// ran out of time (rather than being refused or unreachable), err says
// why. A member that refused or could not be reached is marked down at
// once; one that timed out only after DownAfter timeouts in a row, since a
// handshake's deadline is short and a busy member may answer a little late
// without being dead. It reports whether member was marked down now.
func (c *Core) CallFailed(now time.Time, member string, timedOut bool, err string) (markedDown bool) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.cfg.ExternalLiveness {
		markedDown = c.failed(now, member, timedOut, err)
	}
	c.record(Event{Kind: KindCallFailed, At: now, Member: member, TimedOut: timedOut, Err: err}, Decision{Changed: markedDown})
	return markedDown
}

func (c *Core) failed(now time.Time, member string, timedOut bool, err string) bool {
	if member == c.cfg.Self || !c.ring.Load().Contains(member) {
		return false
	}
	d, was := c.down[member]
	if was {
		d.Err = err
		c.down[member] = d
		return false
	}
	if timedOut {
		c.timeouts[member]++
		if c.timeouts[member] < c.cfg.DownAfter {
			return false
		}
	}
	c.down[member] = DownInfo{Since: now, Err: err}
	c.updateTransferring(now)
	return true
}

// Liveness applies what an external source (a membership service, a
// gossip layer) says about member: alive false marks it down now, alive
// true marks it up again, as a call's answer would. It reports whether
// that changed member's state. There is one notion of down: a member so
// marked is probed like any other and comes back on its first answer
// (unless Config.ExternalLiveness makes the source the only judge).
func (c *Core) Liveness(now time.Time, member string, alive bool) (changed bool) {
	return c.liveness(now, member, alive, "")
}

// LivenessDown is Liveness(now, member, false) with the source's reason,
// which readiness shows.
func (c *Core) LivenessDown(now time.Time, member, reason string) (changed bool) {
	return c.liveness(now, member, false, reason)
}

// livenessReason is the reason of a Liveness down without one.
const livenessReason = "marked down by the liveness source"

func (c *Core) liveness(now time.Time, member string, alive bool, reason string) (changed bool) {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if alive {
		changed = c.markUp(now, member)
		delete(c.timeouts, member)
	} else {
		why := reason
		if why == "" {
			why = livenessReason
		}
		changed = c.failed(now, member, false, why)
	}
	c.record(Event{Kind: KindLiveness, At: now, Member: member, Alive: alive, Err: reason}, Decision{Changed: changed})
	return changed
}

// IsDown reports whether member is marked down.
func (c *Core) IsDown(member string) bool {
	c.mu.RLock()
	_, d := c.down[member]
	c.mu.RUnlock()
	return d
}

// Down returns the members marked down with why, for readiness and
// metrics.
func (c *Core) Down() map[string]DownInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]DownInfo, len(c.down))
	for m, d := range c.down {
		out[m] = d
	}
	return out
}

// NextTick returns when Tick next has probes to send.
func (c *Core) NextTick() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.nextProbe
}

// Tick is the periodic event (every ProbeInterval). When a probe round is
// due it returns the members marked down, to ping (Probe, sorted), and the
// members not marked down that have delayed writes and no delivery
// running, to deliver to (Deliver, sorted): a write can fail on a member
// that was never marked down, or its first delivery can fail. A Tick before
// the round is due returns nothing.
func (c *Core) Tick(now time.Time) Decision {
	now = wallClock(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	var d Decision
	if !now.Before(c.nextProbe) {
		// The next round is the next point of a fixed grid (New's time plus
		// multiples of ProbeInterval), so a driver ticking every
		// ProbeInterval from just after New always finds a round due.
		late := now.Sub(c.nextProbe)
		c.nextProbe = c.nextProbe.Add((late/c.cfg.ProbeInterval + 1) * c.cfg.ProbeInterval)
		if !c.cfg.ExternalLiveness {
			for m := range c.down {
				d.Probe = append(d.Probe, m)
			}
			slices.Sort(d.Probe)
		}
		for m, hs := range c.hints.byMember {
			if _, isDown := c.down[m]; len(hs) > 0 && !isDown && !c.hints.delivering[m] {
				d.Deliver = append(d.Deliver, m)
			}
		}
		slices.Sort(d.Deliver)
	}
	c.record(Event{Kind: KindTick, At: now}, d)
	return d
}
