// Tests of failure detection: when a member is marked down and up, the
// external liveness event, and the probe schedule.

package core

import (
	"slices"
	"testing"
	"time"
)

func TestHealthTransitions(t *testing.T) {
	ms := members(4)
	self, x := ms[0], ms[1]
	type step struct {
		ev       string // "timeout", "refused", "ok", "dead", "alive"
		wantChg  bool
		wantDown bool
	}
	cases := []struct {
		name      string
		downAfter int
		steps     []step
	}{
		{"timeouts mark down after DownAfter in a row", 3, []step{
			{"timeout", false, false}, {"timeout", false, false}, {"timeout", true, true}, {"timeout", false, true}}},
		{"an answer resets the timeouts", 3, []step{
			{"timeout", false, false}, {"timeout", false, false}, {"ok", false, false},
			{"timeout", false, false}, {"timeout", false, false}, {"timeout", true, true}}},
		{"refused marks down at once", 3, []step{{"refused", true, true}, {"refused", false, true}}},
		{"DownAfter 1", 1, []step{{"timeout", true, true}}},
		{"an answer brings it back", 3, []step{{"refused", true, true}, {"ok", true, false}, {"ok", false, false}}},
		{"liveness down and up", 3, []step{{"dead", true, true}, {"dead", false, true}, {"alive", true, false}, {"alive", false, false}}},
		{"liveness up clears timeouts", 3, []step{
			{"timeout", false, false}, {"timeout", false, false}, {"alive", false, false}, {"timeout", false, false}}},
		{"an answer ends a liveness down", 3, []step{{"dead", true, true}, {"ok", true, false}}},
		{"a probe's answer after timeouts", 2, []step{{"timeout", false, false}, {"timeout", true, true}, {"ok", true, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, Config{Self: self, Members: ms, DownAfter: tc.downAfter})
			for i, s := range tc.steps {
				var chg bool
				switch s.ev {
				case "timeout":
					chg = c.CallFailed(t0, x, true, "deadline exceeded")
				case "refused":
					chg = c.CallFailed(t0, x, false, "refused")
				case "ok":
					chg = c.CallOK(t0, x)
				case "dead":
					chg = c.Liveness(t0, x, false)
				case "alive":
					chg = c.Liveness(t0, x, true)
				}
				if chg != s.wantChg || c.IsDown(x) != s.wantDown {
					t.Fatalf("step %d %s: changed %v down %v, want %v %v", i, s.ev, chg, c.IsDown(x), s.wantChg, s.wantDown)
				}
			}
		})
	}
	c := newCore(t, Config{Self: self, Members: ms})
	if c.CallFailed(t0, self, false, "x") || c.Liveness(t0, self, false) || c.IsDown(self) {
		t.Fatal("a member never marks itself down")
	}
	if c.CallFailed(t0, "stranger", false, "x") || c.IsDown("stranger") {
		t.Fatal("a member outside the ring is not tracked")
	}
	c.CallFailed(t0, x, false, "first")
	c.CallFailed(t0.Add(time.Second), x, false, "second")
	if d := c.Down()[x]; d.Since != t0 || d.Err != "second" {
		t.Fatalf("down info %+v: want since the first failure, the latest error", d)
	}
	c.SetMembers(t0, []string{ms[0], ms[2], ms[3]})
	if c.IsDown(x) {
		t.Fatal("a member that left is forgotten")
	}
}

func TestProbeSchedule(t *testing.T) {
	ms := members(4)
	iv := 200 * time.Millisecond
	c := newCore(t, Config{Members: ms, ProbeInterval: iv})
	c.CallFailed(t0, ms[3], false, "x")
	c.CallFailed(t0, ms[1], false, "x")
	if d := c.Tick(t0.Add(iv - 1)); d.Probe != nil {
		t.Fatalf("probe before the interval: %v", d.Probe)
	}
	if c.NextTick() != t0.Add(iv) {
		t.Fatalf("NextTick %v", c.NextTick())
	}
	// A driver ticking just after each grid point always finds a round due,
	// however late the previous tick was.
	for i, late := range []time.Duration{time.Millisecond, 150 * time.Millisecond, 0, 199 * time.Millisecond} {
		at := t0.Add(time.Duration(i+1)*iv + late)
		d := c.Tick(at)
		if !slices.Equal(d.Probe, []string{ms[1], ms[3]}) {
			t.Fatalf("tick %d: probe %v, want the down members sorted", i, d.Probe)
		}
		if want := t0.Add(time.Duration(i+2) * iv); c.NextTick() != want {
			t.Fatalf("tick %d: next %v, want %v", i, c.NextTick(), want)
		}
	}
	// A tick that missed rounds skips to the next grid point.
	d := c.Tick(t0.Add(10*iv + 5))
	if len(d.Probe) != 2 || c.NextTick() != t0.Add(11*iv) {
		t.Fatalf("late tick: %v, next %v", d.Probe, c.NextTick())
	}
	if d := c.Tick(t0.Add(10*iv + 6)); d.Probe != nil {
		t.Fatal("a second tick in one round probes again")
	}
}

func TestExternalLiveness(t *testing.T) {
	ms := members(3)
	x := ms[1]
	c := newCore(t, Config{Self: ms[0], Members: ms, ExternalLiveness: true, DownAfter: 1})
	if c.CallFailed(t0, x, false, "refused") || c.CallFailed(t0, x, true, "timeout") || c.IsDown(x) {
		t.Fatal("with external liveness, calls must not mark members down")
	}
	if !c.LivenessDown(t0, x, "gossip: suspect") || !c.IsDown(x) || c.Down()[x].Err != "gossip: suspect" {
		t.Fatalf("the source marks down, with its reason: %+v", c.Down())
	}
	if c.CallOK(t0, x) || !c.IsDown(x) {
		t.Fatal("with external liveness, an answer must not mark a member up")
	}
	if d := c.Tick(t0.Add(time.Hour)); d.Probe != nil {
		t.Fatalf("with external liveness, no probes: %v", d.Probe)
	}
	if !c.Liveness(t0, x, true) || c.IsDown(x) {
		t.Fatal("the source marks up")
	}
	// Without it, a liveness down is probed and ended by an answer.
	c = newCore(t, Config{Self: ms[0], Members: ms})
	c.LivenessDown(t0, x, "")
	if c.Down()[x].Err != livenessReason {
		t.Fatalf("default reason: %+v", c.Down()[x])
	}
	if d := c.Tick(t0.Add(time.Hour)); !slices.Equal(d.Probe, []string{x}) {
		t.Fatalf("probe %v", d.Probe)
	}
}
