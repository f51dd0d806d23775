// world.go: the facts every strategy shares: which members exist and are
// up, their racks, partitions and slowness, the faults that change them,
// and the network and CPU models each strategy's fleet uses.

package simulations

import (
	"fmt"
	"math/rand/v2"
)

var sprintf = fmt.Sprintf

// world is the fleet's physical state, the same for every strategy.
type world struct {
	sc          *Scenario
	en          *engine
	n           int     // members in the fleet now (scale-out grows it)
	alive       []bool  // the process is running
	lbUp        []bool  // the balancer sends it connections
	incarnation []int32 // restarts so far
	cut         []bool  // on the far side of a partition
	slow        []float64
	rack        []int
	lbGen       int // bumped when lbUp changes
	strats      []strategy
	faults      []faultEvent // for the report: what happened when
}

// faultEvent is a fault as the plots mark it.
type faultEvent struct {
	T    int64
	Text string
}

// world event kinds.
const (
	evCrash uint8 = iota
	evRestart
	evLBDetect
	evCut
	evHeal
	evSlow
	evUnslow
	evScale
)

func newWorld(sc *Scenario, en *engine) *world {
	maxN := sc.Members
	for _, f := range sc.Faults {
		if f.Kind == "scale_out" {
			maxN = max(maxN, f.To)
		}
	}
	w := &world{sc: sc, en: en, n: sc.Members}
	w.alive = make([]bool, maxN)
	w.lbUp = make([]bool, maxN)
	w.incarnation = make([]int32, maxN)
	w.cut = make([]bool, maxN)
	w.slow = make([]float64, maxN)
	w.rack = make([]int, maxN)
	for i := range maxN {
		w.alive[i] = i < sc.Members
		w.lbUp[i] = i < sc.Members
		w.slow[i] = 1
		w.rack[i] = i % sc.Racks
	}
	return w
}

// schedule puts the scenario's faults on the clock.
func (w *world) schedule() {
	end := int64(w.sc.Duration)
	for _, f := range w.sc.Faults {
		at := int64(f.At)
		until := end + 1
		if f.For > 0 {
			until = at + int64(f.For)
		}
		switch f.Kind {
		case "crash":
			w.crashFor(*f.Member, at, until)
		case "rack":
			for m := range w.alive {
				if w.rack[m] == *f.Rack && m < w.membersAt(at) {
					w.crashFor(m, at, until)
				}
			}
		case "rolling_restart":
			for i := range w.membersAt(at) {
				t := at + int64(i)*int64(f.Every)
				if t < end {
					w.crashFor(i, t, t+int64(f.DownFor))
				}
			}
		case "partition":
			for _, m := range f.Members {
				w.en.at(at, w, evCut, int32(m), 0, 0)
				if until <= end {
					w.en.at(until, w, evHeal, int32(m), 0, 0)
				}
			}
		case "slow":
			w.en.at(at, w, evSlow, int32(*f.Member), 0, int64(f.Factor*1000))
			if until <= end {
				w.en.at(until, w, evUnslow, int32(*f.Member), 0, 0)
			}
		case "scale_out":
			w.en.at(at, w, evScale, int32(f.To), 0, 0)
		}
	}
}

// membersAt returns the fleet size at virtual time t, by the scale-outs before it.
func (w *world) membersAt(t int64) int {
	n := w.sc.Members
	for _, f := range w.sc.Faults {
		if f.Kind == "scale_out" && int64(f.At) <= t {
			n = f.To
		}
	}
	return n
}

func (w *world) crashFor(m int, at, until int64) {
	w.en.at(at, w, evCrash, int32(m), 0, 0)
	w.en.at(at+int64(w.sc.Balancer.DetectAfter), w, evLBDetect, int32(m), 0, 0)
	if until <= int64(w.sc.Duration) {
		w.en.at(until, w, evRestart, int32(m), 0, 0)
	}
}

func (w *world) handle(e *event) {
	m := int(e.a)
	switch e.kind {
	case evCrash:
		if !w.alive[m] {
			return
		}
		w.alive[m] = false
		w.note(e.t, "crash m%d", m)
		for _, s := range w.strats {
			s.memberDown(m)
		}
	case evLBDetect:
		if !w.alive[m] {
			w.lbUp[m] = false
			w.lbGen++
		}
	case evRestart:
		if w.alive[m] {
			return
		}
		w.alive[m] = true
		w.lbUp[m] = true
		w.lbGen++
		w.incarnation[m]++
		w.note(e.t, "restart m%d", m)
		for _, s := range w.strats {
			s.memberUp(m)
		}
	case evCut:
		w.cut[m] = true
		w.note(e.t, "partition m%d", m)
	case evHeal:
		w.cut[m] = false
		w.note(e.t, "heal m%d", m)
	case evSlow:
		w.slow[m] = float64(e.x) / 1000
		w.note(e.t, "slow m%d x%g", m, w.slow[m])
	case evUnslow:
		w.slow[m] = 1
		w.note(e.t, "normal m%d", m)
	case evScale:
		old := w.n
		w.n = m
		for i := old; i < w.n; i++ {
			w.alive[i], w.lbUp[i] = true, true
		}
		w.lbGen++
		w.note(e.t, "scale-out %d->%d", old, w.n)
		for _, s := range w.strats {
			s.membersChanged(old, w.n)
		}
	}
}

func (w *world) note(t int64, format string, args ...any) {
	// Consecutive notes at one time (a rack, a rolling step) merge into one mark.
	text := sprintf(format, args...)
	if k := len(w.faults); k > 0 && w.faults[k-1].T == t {
		if len(w.faults[k-1].Text) < 60 {
			w.faults[k-1].Text += ", " + text
		}
		return
	}
	w.faults = append(w.faults, faultEvent{T: t, Text: text})
}

// reachable reports whether a message from a to b gets through the partitions.
func (w *world) reachable(a, b int) bool { return w.cut[a] == w.cut[b] }

// network draws member-to-member delays for one strategy's fleet.
type network struct {
	w          *world
	lat, cross sampler
	loss       float64
	r          *rand.Rand
}

// delay returns the one-way delay of a message from a to b, and false if
// it is lost (loss, partition, or b not running: its answer never comes).
func (n *network) delay(a, b int) (int64, bool) {
	if !n.w.alive[b] || !n.w.reachable(a, b) {
		return 0, false
	}
	if n.loss > 0 && n.r.Float64() < n.loss {
		return 0, false
	}
	s := &n.lat
	if n.w.rack[a] != n.w.rack[b] {
		s = &n.cross
	}
	d := s.draw(n.r)
	if f := max(n.w.slow[a], n.w.slow[b]); f != 1 {
		d = int64(float64(d) * f)
	}
	return d, true
}

// cpu is one member's processors: a FIFO queue served by a number of
// cores. A job submitted at now starts on the core free first.
type cpu struct {
	free []int64 // when each core is next free
	busy int64   // CPU nanoseconds spent, for CPU per handshake
}

func newCPUs(n, cores int) []cpu {
	out := make([]cpu, n)
	for i := range out {
		out[i].free = make([]int64, cores)
	}
	return out
}

// run queues a job of cost at now (scaled by the member's slowness) and
// returns when it ends.
func (c *cpu) run(now, cost int64, slow float64) int64 {
	if slow != 1 {
		cost = int64(float64(cost) * slow)
	}
	i := 0
	for j := 1; j < len(c.free); j++ {
		if c.free[j] < c.free[i] {
			i = j
		}
	}
	start := max(now, c.free[i])
	c.free[i] = start + cost
	c.busy += cost
	return start + cost
}

// reset empties the queue (a restarted process).
func (c *cpu) reset(now int64) {
	for i := range c.free {
		c.free[i] = now
	}
}
