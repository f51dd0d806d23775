// run.go: one run of a scenario: the engine, the world, the workload and
// every strategy, sampled every SampleInterval into a Result.

package simulations

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/peer/core"
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

	// coreRecorder, if set (tests), gives the recorder of a tlsring
	// strategy's member's core, or nil.
	coreRecorder func(strategy string, member int) core.Recorder
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
	MemMean int64 // store bytes per live member at the end, mean over members
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
	// Each strategy runs in its own engine with its own copy of the
	// world and the workload. They draw from their own seeded sources,
	// which no strategy touches, so every strategy sees the same clients
	// at the same virtual times and the same faults, and the strategies
	// can run in parallel, one per core, with the same result.
	var units []*unit
	for _, name := range sc.Strategies {
		n := 1
		if name == StratTLSRing {
			n = len(sc.TLSRing.Deadlines)
		}
		for i := range n {
			u := &unit{en: &engine{}}
			u.w = newWorld(sc, u.en)
			u.wl = newWorkload(sc, u.en, u.w, seed, scale)
			switch name {
			case StratTLSRing:
				d := sc.TLSRing.Deadlines[i]
				label := "tlsring"
				if n > 1 {
					label = "tlsring " + d.D().String()
				}
				var rec func(int) core.Recorder
				if opt.coreRecorder != nil {
					rec = func(m int) core.Recorder { return opt.coreRecorder(label, m) }
				}
				t, err := newTLSRing(label, d.D(), sc, u.w, u.en, seed, rec)
				if err != nil {
					return nil, err
				}
				u.strat = t
			default:
				u.strat = newSimple(name, sc, u.w, u.en, seed)
			}
			u.w.strats = []strategy{u.strat}
			u.wl.strats = u.w.strats
			u.w.schedule()
			u.wl.scheduleArrival(0)
			units = append(units, u)
		}
	}
	end := int64(sc.Duration)
	step := int64(sc.SampleInterval)
	var progMu sync.Mutex
	report := func() {
		if opt.Progress == nil {
			return
		}
		// The slowest strategy's progress: they all see the same clients.
		lo, hs := end, units[0].hs.Load()
		for _, u := range units {
			if d := u.done.Load(); d < lo {
				lo, hs = d, u.hs.Load()
			}
		}
		progMu.Lock()
		opt.Progress(float64(lo)/float64(end), hs)
		progMu.Unlock()
	}
	work := make(chan *unit, len(units))
	for _, u := range units {
		work <- u
	}
	close(work)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(units)) {
		wg.Go(func() {
			for u := range work {
				u.run(end, step, report)
			}
		})
	}
	wg.Wait()
	report()
	strats := make([]strategy, len(units))
	var events uint64
	for i, u := range units {
		strats[i] = u.strat
		events += u.en.events
	}
	w, wl := units[0].w, units[0].wl
	res := &Result{Scenario: sc, Seed: seed, Scale: scale, Events: events, Visits: wl.visits}
	for _, f := range w.faults {
		res.Faults = append(res.Faults, FaultMark{At: time.Duration(f.T), Text: f.Text})
	}
	for _, s := range strats {
		r := s.recorder()
		sr := StrategyResult{Name: s.name(), Total: r.total, Series: r.series,
			HSP50: r.hsAll.quantile(.5), HSP99: r.hsAll.quantile(.99), LkP50: r.lkAll.quantile(.5), LkP99: r.lkAll.quantile(.99), MemPeak: r.memPeak,
			hsAll: r.hsAll, lkAll: r.lkAll, hsSeries: r.hsSeries, lkSeries: r.lkSeries}
		sr.MemMean = r.memLast
		res.Strategies = append(res.Strategies, sr)
	}
	return res, nil
}

// unit is one strategy with its own engine, world and workload.
type unit struct {
	en    *engine
	w     *world
	wl    *workload
	strat strategy
	done  atomic.Int64 // virtual time reached, for progress
	hs    atomic.Int64 // handshakes so far, for progress
}

// run plays the unit to end, sampling every step.
func (u *unit) run(end, step int64, report func()) {
	en, s := u.en, u.strat
	progress := func(now int64) {
		u.done.Store(now)
		r := s.recorder()
		u.hs.Store(r.total.Handshakes + r.cur.Handshakes)
		report()
	}
	var lastCPU int64
	for t := step; ; t += step {
		t = min(t, end)
		en.run(t, progress)
		en.now = t
		busy := s.cpuBusy()
		r := s.recorder()
		r.cur.CPU = busy - lastCPU
		lastCPU = busy
		mean, mx := s.memory()
		r.flush(t, mean, mx)
		progress(t)
		if t >= end {
			return
		}
	}
}
