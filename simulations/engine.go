// engine.go: virtual time. Events wait in a 4-ary heap ordered by time,
// then by the order they were scheduled, so that a run is a pure function
// of its scenario and seed.

package simulations

import (
	"math"
	"math/rand/v2"
	"time"
)

// handler is whatever an event is for; kind and the args say what to do.
type handler interface {
	handle(e *event)
}

type event struct {
	t    int64 // virtual nanoseconds since the start
	seq  uint64
	h    handler
	kind uint8
	a, b int32
	x    int64
}

func (e *event) before(o *event) bool {
	return e.t < o.t || e.t == o.t && e.seq < o.seq
}

// engine is the clock and the event queue.
type engine struct {
	now    int64
	seq    uint64
	heap   []event
	events uint64 // handled so far
}

func (en *engine) at(t int64, h handler, kind uint8, a, b int32, x int64) {
	if t < en.now {
		t = en.now
	}
	en.seq++
	en.heap = append(en.heap, event{t: t, seq: en.seq, h: h, kind: kind, a: a, b: b, x: x})
	en.up(len(en.heap) - 1)
}

func (en *engine) up(i int) {
	h := en.heap
	e := h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (en *engine) pop() event {
	h := en.heap
	top := h[0]
	last := h[len(h)-1]
	h = h[:len(h)-1]
	en.heap = h
	n := len(h)
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if h[j].before(&h[m]) {
				m = j
			}
		}
		if !h[m].before(&last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}

// run handles events until the queue is empty or the next is past end.
// tick, if set, is called about every 64k events.
func (en *engine) run(end int64, tick func(now int64)) {
	for len(en.heap) > 0 {
		if en.heap[0].t > end {
			return
		}
		e := en.pop()
		en.now = e.t
		e.h.handle(&e)
		en.events++
		if tick != nil && en.events&0xffff == 0 {
			tick(en.now)
		}
	}
}

// newRand returns a PCG source for one concern of one run.
func newRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream*0x9e3779b97f4a7c15+1))
}

// sampler draws from a Dist.
type sampler struct {
	kind     uint8 // 0 fixed, 1 exponential, 2 lognormal, 3 uniform
	a, b     float64
	fixedVal int64
}

func newSampler(d Dist) sampler {
	switch d.Kind {
	case "exponential":
		return sampler{kind: 1, a: float64(d.Mean)}
	case "lognormal":
		// median m, 99th percentile p: sigma = ln(p/m) / z(0.99).
		return sampler{kind: 2, a: math.Log(float64(d.Median)), b: math.Log(float64(d.P99)/float64(d.Median)) / 2.3263478740408408}
	case "uniform":
		return sampler{kind: 3, a: float64(d.Min), b: float64(d.Max - d.Min)}
	}
	return sampler{fixedVal: int64(d.Value)}
}

func (s *sampler) draw(r *rand.Rand) int64 {
	switch s.kind {
	case 1:
		return int64(r.ExpFloat64() * s.a)
	case 2:
		return int64(math.Exp(s.a + s.b*r.NormFloat64()))
	case 3:
		return int64(s.a + r.Float64()*s.b)
	}
	return s.fixedVal
}

// mean returns the distribution's mean.
func (s *sampler) mean() float64 {
	switch s.kind {
	case 1:
		return s.a
	case 2:
		return math.Exp(s.a + s.b*s.b/2)
	case 3:
		return s.a + s.b/2
	}
	return float64(s.fixedVal)
}

const second = int64(time.Second)
