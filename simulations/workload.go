// workload.go: the clients. New clients arrive as a Poisson process (with
// the daily curve, by thinning); each visit opens one connection, or
// Parallel of them; after a visit a client comes back with
// ReturnProbability after a ReturnAfter delay, or is gone. Every strategy
// is shown every visit, at the same virtual time.

package simulations

import "math/rand/v2"

// client is one TLS client, as every strategy sees it.
type client struct {
	id     uint64
	rtt    int64 // round trip to the fleet
	tls13  bool
	rsa    bool
	visits int32
}

type workload struct {
	sc       *Scenario
	en       *engine
	w        *world
	r        *rand.Rand
	rate     float64 // new clients per second at curve 1 (scaled)
	maxCurve float64
	ret, rtt sampler
	clients  []client
	free     []int32
	nextID   uint64
	strats   []strategy
	visits   int64 // visits so far, for progress
}

// workload event kinds.
const (
	evArrive uint8 = iota
	evReturn
)

func newWorkload(sc *Scenario, en *engine, w *world, seed uint64, scale float64) *workload {
	wl := &workload{sc: sc, en: en, w: w, r: newRand(seed, 1), rate: sc.Workload.ArrivalRate * scale, maxCurve: 1}
	if len(sc.Workload.DailyCurve) == 24 {
		wl.maxCurve = 0
		for _, c := range sc.Workload.DailyCurve {
			wl.maxCurve = max(wl.maxCurve, c)
		}
	}
	wl.ret = newSampler(sc.Workload.ReturnAfter)
	wl.rtt = newSampler(sc.Network.ClientRTT)
	return wl
}

func (wl *workload) curve(t int64) float64 {
	if len(wl.sc.Workload.DailyCurve) != 24 {
		return 1
	}
	h := (t / (3600 * second)) % 24
	return wl.sc.Workload.DailyCurve[h]
}

// scheduleArrival draws the next new client after now.
func (wl *workload) scheduleArrival(now int64) {
	lmax := wl.rate * wl.maxCurve
	if lmax <= 0 {
		return
	}
	t := now
	for {
		t += int64(wl.r.ExpFloat64() / lmax * 1e9)
		if t > int64(wl.sc.Duration) {
			return
		}
		if wl.maxCurve == 1 && len(wl.sc.Workload.DailyCurve) != 24 || wl.r.Float64()*wl.maxCurve < wl.curve(t) {
			break
		}
	}
	wl.en.at(t, wl, evArrive, 0, 0, 0)
}

func (wl *workload) handle(e *event) {
	var slot int32
	switch e.kind {
	case evArrive:
		wl.scheduleArrival(e.t)
		if n := len(wl.free); n > 0 {
			slot = wl.free[n-1]
			wl.free = wl.free[:n-1]
		} else {
			slot = int32(len(wl.clients))
			wl.clients = append(wl.clients, client{})
			for _, s := range wl.strats {
				s.grow(len(wl.clients))
			}
		}
		wl.nextID++
		wl.clients[slot] = client{
			id:    wl.nextID,
			rtt:   wl.rtt.draw(wl.r),
			tls13: wl.r.Float64() < *wl.sc.Workload.TLS13Share,
			rsa:   wl.r.Float64() < wl.sc.Workload.RSAShare,
		}
		for _, s := range wl.strats {
			s.forget(slot)
		}
	case evReturn:
		slot = e.a
	}
	c := &wl.clients[slot]
	k := 1
	if wl.sc.Workload.ParallelShare > 0 && wl.r.Float64() < wl.sc.Workload.ParallelShare {
		k = wl.sc.Workload.Parallel
	}
	wl.visits++
	for _, s := range wl.strats {
		s.visit(c, slot, k, e.t)
	}
	c.visits++
	if wl.r.Float64() < wl.sc.Workload.ReturnProbability {
		wl.en.at(e.t+max(1, wl.ret.draw(wl.r)), wl, evReturn, slot, 0, 0)
	} else {
		wl.free = append(wl.free, slot)
	}
}
