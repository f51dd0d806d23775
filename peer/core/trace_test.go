// Tests of recording and replay: a random run of every event kind replays
// to the same decisions, survives a JSON round trip, and a changed
// decision is caught. FuzzReplay feeds Replay arbitrary traces.

package core

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// randomRun drives a recorded core with n random events of every kind.
func randomRun(t testing.TB, seed uint64, n int) Trace {
	rnd := rand.New(rand.NewPCG(seed, 1))
	ms := members(6)
	rec := NewTraceRecorder(Config{}, time.Time{})
	c, err := New(Config{Self: ms[0], Members: ms, Seed: seed, Recorder: rec, HintBytes: 4000,
		ExternalLiveness: seed%3 == 2}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rings := make([]*ring.Ring, len(ms))
	for k := range rings {
		// rings[0]: without this member; rings[1]: everyone; rings[k]: this
		// member and m00k on.
		if k == 0 {
			rings[k], _ = ring.New(ms[1:]) // without this member
		} else if k == 1 {
			rings[k], _ = ring.New(ms)
		} else {
			rings[k], _ = ring.New(append(ms[:1:1], ms[k:]...))
		}
	}
	// A wall clock reading, as the real member passes: it has a monotonic
	// reading and a location, which a JSON trace does not keep.
	now := time.Now()
	gen := uint64(1)
	var parts []Part
	for range n {
		now = now.Add(time.Duration(rnd.IntN(50)) * time.Millisecond)
		m := ms[rnd.IntN(len(ms))]
		key := []byte{0xff, byte(rnd.IntN(30)), 0xc3} // not UTF-8: keys are bytes
		switch rnd.IntN(14) {
		case 0:
			c.Route(RouteKind(1+rnd.IntN(3)), key)
		case 1:
			c.CallOK(now, m)
		case 2:
			c.CallFailed(now, m, rnd.IntN(2) == 0, "err")
		case 3:
			if rnd.IntN(3) == 0 {
				c.LivenessDown(now, m, "gossip says so")
			} else {
				c.Liveness(now, m, rnd.IntN(2) == 0)
			}
		case 4:
			c.Tick(now)
		case 5:
			c.Miss(now, key, rnd.IntN(2) == 0)
		case 6:
			var d Decision
			switch k := rnd.IntN(len(ms) + 3); {
			case k < len(ms):
				d = c.SetRing(now, rings[k]) // some members leave (this one, for k = 0)
			case k == len(ms):
				d = c.SetMembers(now, []string{"dup", "dup"})
			default:
				d = c.SetRing(now, rings[1])
			}
			if d.StartTransfer {
				gen, parts = d.Gen, nil
			}
		case 7:
			if rnd.IntN(2) == 0 {
				c.HintAdd(now, m, key, c.DeleteHintAt(now))
			} else {
				c.HintAdd(now, m, key, c.SetHintAt(now, []byte("value"), time.Duration(rnd.IntN(1000))*time.Millisecond))
			}
		case 8:
			c.HintsClaim(now, m)
		case 9:
			d := c.HintsTake(now, m)
			if rnd.IntN(2) == 0 {
				failed := slices.Clone(d.Deletes)
				for _, s := range d.Sets {
					failed = append(failed, s.Entry())
				}
				c.HintsReturn(now, m, failed)
			}
			c.HintsDone(now, m)
		case 10:
			if len(parts) == 0 {
				parts = c.TransferRound(now, gen)
			}
		case 11:
			for j := rnd.IntN(20); j >= 0 && len(parts) > 0; j-- {
				err := ""
				if rnd.IntN(3) == 0 {
					err = "timeout"
				}
				c.TransferPartDone(now, gen, parts[0], err)
				parts = parts[1:]
				if len(parts) == 0 {
					c.TransferRoundEnd(now, gen)
				}
			}
		case 12:
			c.RebalanceBackoff(now, time.Duration(rnd.IntN(3))*time.Second)
		case 13:
			c.Step(Event{Kind: KindRoute, Route: RouteTake, Key: key})
		}
	}
	return rec.Trace()
}

func TestReplayRandomRuns(t *testing.T) {
	for seed := range uint64(8) {
		tr := randomRun(t, seed, 2000)
		kinds := map[Kind]bool{}
		for _, s := range tr.Steps {
			kinds[s.Event.Kind] = true
		}
		for k := KindRoute; k <= KindRebalanceBackoff; k++ {
			if !kinds[k] {
				t.Fatalf("seed %d: no %s event recorded", seed, k)
			}
		}
		if err := Replay(tr); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// Through JSON, as a simulator would load it.
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		var back Trace
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := Replay(back); err != nil {
			t.Fatalf("seed %d, after JSON: %v", seed, err)
		}
	}
}

func TestReplayCatchesADifference(t *testing.T) {
	tr := randomRun(t, 99, 3000)
	changed := -1
	for i := range tr.Steps {
		d := &tr.Steps[i].Decision
		switch tr.Steps[i].Event.Kind {
		case KindRoute:
			if len(d.Order) > 1 && changed < 0 {
				d.Order[0], d.Order[1] = d.Order[1], d.Order[0]
				changed = i
			}
		}
	}
	err := Replay(tr)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("step %d ", changed)) {
		t.Fatalf("a swapped route at step %d: Replay said %v", changed, err)
	}
	// A different seed changes the jitter: a recorded wait differs.
	tr = randomRun(t, 5, 3000)
	tr.Config.Seed++
	if err := Replay(tr); err == nil {
		t.Fatal("replay with another seed decided the same waits")
	}
}

func FuzzReplay(f *testing.F) {
	tr := randomRun(f, 1, 200)
	b, _ := json.Marshal(tr)
	f.Add(b)
	f.Add([]byte(`{"config":{"self":"a","members":["a","b"]},"steps":[{"event":{"kind":6,"members":["a","a"]}}]}`))
	f.Add([]byte(`{"config":{"self":"a","members":["a","b"],"replicas":99}}`))
	f.Add([]byte(`{"config":{"self":"a","members":["a","b"]},"steps":[{"event":{"kind":15,"gen":1,"part":{"member":"zz","part":3}}},{"event":{"kind":200}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr Trace
		if json.Unmarshal(data, &tr) != nil {
			return
		}
		if len(tr.Steps) > 2000 || len(tr.Config.Members) > 200 {
			return
		}
		_ = Replay(tr) // must not panic; a mismatch is an error, not a crash
	})
}
