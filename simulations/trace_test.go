// trace_test.go: the simulator's members are the real decision core. A
// member's core is recorded during a run (every event the simulator fed
// it and the decision it returned) and replayed into a fresh core
// (core.Replay): the same decisions, step by step. The recorded run must
// cover the decisions that matter: routing, marking a member down,
// probing it, delayed writes, and a restarted member's state transfer;
// single-use sessions presented on two parallel connections give Takes
// that race, and misses.

package simulations

import (
	"testing"

	"github.com/tlsring/tlsring/peer/core"
)

func TestMemberCoreTraceReplays(t *testing.T) {
	sc := mustParse(t, `
members: 4
duration: 40s
sample_interval: 1s
strategies: [tlsring]
workload: {arrival_rate: 100, return_probability: 0.9, return_after: {dist: exponential, mean: 5s}, parallel: 2, parallel_share: 0.3}
tlsring: {single_use: true}
faults:
  - {at: 10s, kind: crash, member: 1, for: 10s}
`)
	recs := map[int][]*core.TraceRecorder{}
	res := mustRun(t, sc, Options{coreRecorder: func(_ string, m int) core.Recorder {
		if m > 1 {
			return nil
		}
		r := core.NewTraceRecorder(core.Config{}, epoch)
		recs[m] = append(recs[m], r)
		return r
	}})
	if res.Strategies[0].Total.Resumed == 0 {
		t.Fatal("nothing resumed")
	}
	// Member 0 saw member 1 die and come back; member 1 ran twice, the
	// second time with a state transfer.
	if len(recs[0]) != 1 || len(recs[1]) != 2 {
		t.Fatalf("recorded %d cores of member 0 and %d of member 1, want 1 and 2", len(recs[0]), len(recs[1]))
	}
	kinds := map[core.Kind]int{}
	downs, ups, probes := 0, 0, 0
	for _, rs := range recs {
		for _, r := range rs {
			tr := r.Trace()
			if err := core.Replay(tr); err != nil {
				t.Fatalf("member %s: %v", tr.Config.Self, err)
			}
			for _, s := range tr.Steps {
				kinds[s.Event.Kind]++
				switch {
				case s.Event.Kind == core.KindCallFailed && s.Decision.Changed:
					downs++
				case s.Event.Kind == core.KindCallOK && s.Decision.Changed:
					ups++
				case s.Event.Kind == core.KindTick:
					probes += len(s.Decision.Probe)
				}
			}
		}
	}
	t.Logf("replayed steps by kind: %v; %d marked down, %d up again, %d probes", kinds, downs, ups, probes)
	for _, k := range []core.Kind{core.KindRoute, core.KindCallOK, core.KindCallFailed, core.KindTick, core.KindMiss, core.KindHintAdd, core.KindHintsTake, core.KindTransferRound, core.KindTransferPartDone, core.KindTransferRoundEnd} {
		if kinds[k] == 0 {
			t.Errorf("no %s step recorded", k)
		}
	}
	if downs == 0 || ups == 0 || probes == 0 {
		t.Errorf("member 0 should mark member 1 down, probe it and see it up again: %d down, %d up, %d probes", downs, ups, probes)
	}
}
