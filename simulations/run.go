// run.go: one run of a scenario: the engine, the world, the workload and
// every strategy, sampled every SampleInterval into a Result.

package simulations

import (
	"errors"
	"fmt"
	"time"
)

// Options adjust a run without editing its scenario.
type Options struct {
	// Seed, if not zero, replaces the scenario's seed.
	Seed uint64
	// Scale multiplies the arrival rate (0 = 1): 0.01 runs a hundredth of
	// the handshakes, as the tests do.
	Scale float64
	// Progress, if set, is called now and then with the share of virtual
	// time done (0 to 1) and the handshakes so far.
	Progress func(done float64, handshakes int64)
}

// Result is what a run measured.
type Result struct {
	Scenario   *Scenario
	Seed       uint64
	Scale      float64
	Strategies []StrategyResult
	Faults     []FaultMark
	Events     uint64 // events the engine handled
	Visits     int64
}

// FaultMark is a fault as the report marks it.
type FaultMark struct {
	At   time.Duration
	Text string
}

// StrategyResult is one strategy's measurements.
type StrategyResult struct {
	Name    string
	Total   counts
	Series  []sample
	HSP50   int64
	HSP99   int64
	LkP50   int64
	LkP99   int64
	MemMean int64 // mean over samples of the store bytes per live member
	MemPeak int64 // the most any member held at a sample

	hsAll, lkAll       hist
	hsSeries, lkSeries []hist
}

// Run plays sc.
func Run(sc *Scenario, opt Options) (*Result, error) {
	if sc == nil {
		return nil, errors.New("simulations: no scenario")
	}
	seed := sc.Seed
	if opt.Seed != 0 {
		seed = opt.Seed
	}
	scale := opt.Scale
	if scale == 0 {
		scale = 1
	}
	if scale < 0 || scale > 1000 {
		return nil, fmt.Errorf("simulations: scale %v must be between 0 and 1000", scale)
	}
	en := &engine{}
	w := newWorld(sc, en)
	wl := newWorkload(sc, en, w, seed, scale)
	var strats []strategy
	for _, name := range sc.Strategies {
		switch name {
		case StratTLSRing:
			for _, d := range sc.TLSRing.Deadlines {
				label := "tlsring"
				if len(sc.TLSRing.Deadlines) > 1 {
					label = "tlsring " + d.D().String()
				}
				t, err := newTLSRing(label, d.D(), sc, w, en, seed)
				if err != nil {
					return nil, err
				}
				strats = append(strats, t)
			}
		default:
			strats = append(strats, newSimple(name, sc, w, en, seed))
		}
	}
	w.strats = strats
	wl.strats = strats
	w.schedule()
	wl.scheduleArrival(0)
	end := int64(sc.Duration)
	step := int64(sc.SampleInterval)
	var lastCPU = make([]int64, len(strats))
	var tick func(int64)
	if opt.Progress != nil {
		tick = func(now int64) { opt.Progress(float64(now)/float64(end), handshakes(strats)) }
	}
	for t := step; ; t += step {
		t = min(t, end)
		en.run(t, tick)
		en.now = t
		for i, s := range strats {
			busy := s.cpuBusy()
			r := s.recorder()
			r.cur.CPU = busy - lastCPU[i]
			lastCPU[i] = busy
			mean, mx := s.memory()
			r.flush(t, mean, mx)
		}
		if t >= end {
			break
		}
	}
	if opt.Progress != nil {
		opt.Progress(1, handshakes(strats))
	}
	res := &Result{Scenario: sc, Seed: seed, Scale: scale, Events: en.events, Visits: wl.visits}
	for _, f := range w.faults {
		res.Faults = append(res.Faults, FaultMark{At: time.Duration(f.T), Text: f.Text})
	}
	for _, s := range strats {
		r := s.recorder()
		sr := StrategyResult{Name: s.name(), Total: r.total, Series: r.series,
			HSP50: r.hsAll.quantile(.5), HSP99: r.hsAll.quantile(.99), LkP50: r.lkAll.quantile(.5), LkP99: r.lkAll.quantile(.99), MemPeak: r.memPeak,
			hsAll: r.hsAll, lkAll: r.lkAll, hsSeries: r.hsSeries, lkSeries: r.lkSeries}
		if r.memCnt > 0 {
			sr.MemMean = r.memSum / r.memCnt
		}
		res.Strategies = append(res.Strategies, sr)
	}
	return res, nil
}

func handshakes(strats []strategy) int64 {
	if len(strats) == 0 {
		return 0
	}
	r := strats[0].recorder()
	return r.total.Handshakes + r.cur.Handshakes
}
