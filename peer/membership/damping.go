// Damping: the pure logic between what a source reports and the ring. A
// member that joins the source joins the ring at once; one that is gone
// from the source stays in the ring for a grace period (reported down, so
// reads go to its replica) and leaves only if it is still gone then, so a
// flapping member, a restart or a partial DNS answer moves no ranges. Time
// is passed in; there are no goroutines here (see follow.go for the shell).

package membership

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// DefaultGrace is how long a member gone from its source stays in the
// ring when Config.Grace is 0: long enough for a restarted process or a
// rescheduled pod to come back under the same name, so a rolling restart
// moves no ranges.
const DefaultGrace = 30 * time.Second

// Damper decides the ring's members from a source's successive lists.
// It is not safe for concurrent use.
type Damper struct {
	self  string
	grace time.Duration
	ring  map[string]time.Time // member -> when it went from the source (zero: present)
}

// Change is what one step of a Damper did. Every list is sorted.
type Change struct {
	// Members is the ring's new member list, or nil when the ring did not
	// change.
	Members []string
	Joined  []string // added to the ring
	Left    []string // removed from the ring: gone from the source for the grace period
	Gone    []string // gone from the source, kept in the ring for the grace period: report down
	Back    []string // back in the source within their grace period (a flap damped): report up
}

// Empty reports whether the step changed nothing.
func (c Change) Empty() bool {
	return c.Members == nil && len(c.Gone) == 0 && len(c.Back) == 0
}

// NewDamper starts from the ring's current members (self among them);
// grace is how long a member gone from the source stays in the ring
// (0 = remove at once).
func NewDamper(self string, members []string, grace time.Duration) *Damper {
	d := &Damper{self: self, grace: grace, ring: make(map[string]time.Time, len(members))}
	for _, m := range members {
		d.ring[m] = time.Time{}
	}
	d.ring[self] = time.Time{}
	return d
}

// ErrSelfMissing is returned by Observe for a list without this member: a
// member leaves the ring by leaving (Peer.Leave on SIGTERM), not because a
// source forgot it, which would hand all its entries off.
var ErrSelfMissing = errors.New("membership: the source's member list does not include this member")

// ErrEmpty is returned by Observe for an empty list.
var ErrEmpty = errors.New("membership: the source's member list is empty")

// Observe takes the source's current list at now. A list that is empty
// or lacks this member is refused (the ring stays as it is) with
// ErrEmpty or ErrSelfMissing; it still lets grace periods that ended by
// now take effect.
func (d *Damper) Observe(now time.Time, source []string) (Change, error) {
	var refused error
	switch {
	case len(source) == 0:
		refused = ErrEmpty
	case !slices.Contains(source, d.self):
		refused = fmt.Errorf("%w (%s)", ErrSelfMissing, d.self)
	}
	if refused != nil {
		return d.Advance(now), refused
	}
	var c Change
	present := make(map[string]bool, len(source))
	for _, m := range source {
		present[m] = true
		gone, in := d.ring[m]
		switch {
		case !in:
			d.ring[m] = time.Time{}
			c.Joined = append(c.Joined, m)
		case !gone.IsZero():
			d.ring[m] = time.Time{}
			c.Back = append(c.Back, m)
		}
	}
	for m, gone := range d.ring {
		if !present[m] && gone.IsZero() {
			d.ring[m] = now
			c.Gone = append(c.Gone, m)
		}
	}
	adv := d.Advance(now) // with grace 0, the gone leave now
	c.Left = adv.Left
	c.Gone = slices.DeleteFunc(c.Gone, func(m string) bool { return slices.Contains(c.Left, m) })
	if len(c.Joined) > 0 || len(c.Left) > 0 {
		c.Members = d.Members()
	}
	slices.Sort(c.Joined)
	slices.Sort(c.Gone)
	slices.Sort(c.Back)
	return c, nil
}

// Advance removes the members whose grace period has ended by now.
func (d *Damper) Advance(now time.Time) Change {
	var c Change
	for m, gone := range d.ring {
		if !gone.IsZero() && !now.Before(gone.Add(d.grace)) {
			delete(d.ring, m)
			c.Left = append(c.Left, m)
		}
	}
	if len(c.Left) > 0 {
		slices.Sort(c.Left)
		c.Members = d.Members()
	}
	return c
}

// NextDeadline returns when the next grace period ends, if one is running.
func (d *Damper) NextDeadline() (time.Time, bool) {
	var next time.Time
	for _, gone := range d.ring {
		if gone.IsZero() {
			continue
		}
		if at := gone.Add(d.grace); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero()
}

// Members returns the ring's members, sorted: those in the source and
// those in their grace period.
func (d *Damper) Members() []string {
	return slices.Sorted(maps.Keys(d.ring))
}

// Counts returns how many ring members are in the source (active) and how
// many are gone from it, in their grace period (leaving).
func (d *Damper) Counts() (active, leaving int) {
	for _, gone := range d.ring {
		if gone.IsZero() {
			active++
		} else {
			leaving++
		}
	}
	return active, leaving
}
