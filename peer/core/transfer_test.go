// Tests of state transfer scheduling, readiness and backoff, and of the
// rebalance move plan.

package core

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ring"
)

func TestTransferRounds(t *testing.T) {
	ms := members(4)
	self := ms[0]
	c := newCore(t, Config{Self: self, Members: ms, Seed: 7})
	gen := c.TransferGen()
	if gen != 1 || !c.Transfer().Transferring {
		t.Fatalf("a new member transfers: gen %d %+v", gen, c.Transfer())
	}
	parts := c.TransferRound(t0, gen)
	if len(parts) != 3*TransferParts {
		t.Fatalf("%d parts, want %d", len(parts), 3*TransferParts)
	}
	seen := map[Part]bool{}
	for _, p := range parts {
		if p.Member == self || seen[p] || p.Part < 0 || p.Part >= TransferParts {
			t.Fatalf("bad or repeated part %+v", p)
		}
		seen[p] = true
	}
	// ms[1] answers everything; ms[2] fails one part; ms[3] fails all
	// and is then marked down.
	for _, p := range parts {
		err := ""
		if (p.Member == ms[2] && p.Part == 5) || p.Member == ms[3] {
			err = "timeout"
		}
		c.TransferPartDone(t0, gen, p, err)
	}
	st := c.Transfer()
	if _, ok := st.Pending[ms[1]]; ok || st.Pending[ms[2]] != "timeout" || !st.Transferring {
		t.Fatalf("after round 1: %+v", st)
	}
	c.CallFailed(t0, ms[3], false, "unreachable")
	d := c.TransferRoundEnd(t0, gen)
	if d.Done || d.Wait < TransferBackoffMin/2 || d.Wait > TransferBackoffMin || !d.Transferring {
		t.Fatalf("round end 1: %+v", d)
	}
	// Round 2: ms[3] is down: its parts wait, only ms[2]'s part is asked.
	parts = c.TransferRound(t0, gen)
	if !slices.Equal(parts, []Part{{ms[2], 5}}) {
		t.Fatalf("round 2 parts %v", parts)
	}
	if !c.TransferPartDone(t0, gen, parts[0], "timeout") {
		t.Fatal("still waiting for ms[2]")
	}
	waits := []time.Duration{}
	for range 6 {
		d = c.TransferRoundEnd(t0, gen)
		waits = append(waits, d.Wait)
		for _, p := range c.TransferRound(t0, gen) {
			c.TransferPartDone(t0, gen, p, "timeout")
		}
	}
	b := TransferBackoffMin
	for i, w := range waits {
		b = min(2*b, TransferBackoffMax)
		if w < b/2 || w > b {
			t.Fatalf("wait %d = %v, want in [%v, %v]", i, w, b/2, b)
		}
	}
	// ms[2] answers: only ms[3], down, is left: not transferring, not done.
	c.TransferRoundEnd(t0, gen)
	parts = c.TransferRound(t0, gen)
	if !slices.Equal(parts, []Part{{ms[2], 5}}) {
		t.Fatalf("retried parts %v", parts)
	}
	c.TransferPartDone(t0, gen, parts[0], "")
	d = c.TransferRoundEnd(t0.Add(time.Second), gen)
	if d.Done || !d.Transferring || c.Miss(t0, []byte("k"), false) == MissNotFound {
		t.Fatalf("with only a down member left, within the patience: %+v", d)
	}
	c.TransferRound(t0.Add(time.Second), gen) // ms[3]'s parts wait for a probe
	d = c.TransferRoundEnd(t0.Add(DefaultTransferPatience), gen)
	if d.Done || d.Transferring || c.Miss(t0, []byte("k"), false) != MissNotFound {
		t.Fatalf("with only a down member left, past the patience: %+v", d)
	}
	// ms[3] comes back: waiting again, and its parts are asked.
	c.CallOK(t0, ms[3])
	if !c.Transfer().Transferring {
		t.Fatal("a member that comes back holds readiness again")
	}
	parts = c.TransferRound(t0, gen)
	if len(parts) != TransferParts {
		t.Fatalf("%d parts for the member back, want %d", len(parts), TransferParts)
	}
	for _, p := range parts {
		c.TransferPartDone(t0, gen, p, "")
	}
	d = c.TransferRoundEnd(t0.Add(2*time.Second), gen)
	if st := c.Transfer(); !d.Done || d.Transferring || !st.Done || st.Took != 2*time.Second {
		t.Fatalf("done: %+v %+v", d, st)
	}
	// Stale generations are ignored.
	if c.TransferRound(t0, gen+1) != nil || c.TransferRound(t0, gen) != nil {
		t.Fatal("rounds after done or of an unknown generation")
	}
}

func TestTransferJitterSeeded(t *testing.T) {
	waits := func(seed uint64) []time.Duration {
		c := newCore(t, Config{Members: members(3), Seed: seed})
		var out []time.Duration
		for range 8 {
			for _, p := range c.TransferRound(t0, 1) {
				c.TransferPartDone(t0, 1, p, "x")
			}
			out = append(out, c.TransferRoundEnd(t0, 1).Wait)
		}
		return out
	}
	if !slices.Equal(waits(1), waits(1)) {
		t.Fatal("the same seed must give the same waits")
	}
	if slices.Equal(waits(1), waits(2)) {
		t.Fatal("different seeds gave the same eight waits")
	}
}

func TestTransferAddedBack(t *testing.T) {
	ms := members(3)
	c := newCore(t, Config{Self: ms[0], Members: ms})
	if d := c.SetMembers(t0, ms[1:]); d.StartTransfer {
		t.Fatal("leaving starts no transfer")
	}
	d := c.SetMembers(t0, ms)
	if !d.StartTransfer || d.Gen != 2 || c.TransferGen() != 2 {
		t.Fatalf("added back: %+v", d)
	}
	if c.TransferRound(t0, 1) != nil {
		t.Fatal("the replaced transfer's rounds must be empty")
	}
	if d := c.SetMembers(t0, append(ms, "m999")); d.StartTransfer {
		t.Fatal("another member joining starts no transfer here")
	}
	if d := c.SetMembers(t0, []string{"a", "a"}); d.Err == "" {
		t.Fatal("an invalid list must be refused")
	}
	if !c.Ring().Contains("m999") {
		t.Fatal("a refused list must not replace the ring")
	}
	one := newCore(t, Config{Self: "solo", Members: []string{"solo"}})
	if st := one.Transfer(); !st.Done || st.Transferring {
		t.Fatalf("a lone member has nothing to transfer: %+v", st)
	}
}

func TestRebalanceBackoff(t *testing.T) {
	c := newCore(t, Config{Seed: 3})
	b := time.Duration(0)
	want := RebalanceBackoffMin
	for range 10 {
		var w time.Duration
		w, b = c.RebalanceBackoff(t0, b)
		if w < want/2 || w > want {
			t.Fatalf("wait %v outside [%v, %v]", w, want/2, want)
		}
		want = min(2*want, RebalanceBackoffMax)
		if b != want {
			t.Fatalf("next backoff %v, want %v", b, want)
		}
	}
}

// TestPlanExhaustive checks the move plan of many keys over several
// membership changes, taking every member's plan together: every new copy
// that did not hold the key gets it from exactly one of the old copies that
// stay (from a stray one if none stays), plus once from each old copy that
// is leaving (it hands everything off); nobody sends to a copy that already
// has it; and a member drops its copy iff it is not a new copy.
func TestPlanExhaustive(t *testing.T) {
	all := members(8)
	changes := [][2][]string{
		{all[:5], all[:6]},                   // one joins
		{all[:6], all[:5]},                   // one leaves
		{all[:5], append(all[:4:4], all[5])}, // one replaced
		{all[:3], all[:8]},                   // scale out
		{all[:8], all[:2]},                   // scale in
		{all[:1], all[1:3]},                  // the only member leaves
	}
	for _, replicas := range []int{1, 2, 3} {
		for ci, ch := range changes {
			from, _ := ring.New(ch[0])
			to, _ := ring.New(ch[1])
			cores := map[string]*Core{}
			for _, m := range ch[0] {
				cores[m] = newCore(t, Config{Self: m, Members: ch[0], Replicas: replicas})
			}
			for i := range 300 {
				key := fmt.Appendf(nil, "k%d", i)
				oldCopies := from.Owners(key, replicas)
				newCopies := to.Owners(key, replicas)
				got := map[string]int{}
				for _, holder := range oldCopies {
					send, drop := cores[holder].Plan(from, to, key, nil)
					for _, m := range send {
						got[m]++
					}
					if drop == slices.Contains(newCopies, holder) {
						t.Fatalf("change %d r%d %s: %s drop %v, new copies %v", ci, replicas, key, holder, drop, newCopies)
					}
				}
				leaving, staying := 0, 0
				for _, h := range oldCopies {
					if to.Contains(h) {
						staying++
					} else {
						leaving++
					}
				}
				for _, m := range newCopies {
					has := slices.Contains(oldCopies, m) && to.Contains(m)
					want := leaving
					if staying > 0 {
						want++
					}
					if has {
						want = 0
					}
					if got[m] != want {
						t.Fatalf("change %d r%d %s: %s sent %d times, want %d (old %v new %v)", ci, replicas, key, m, got[m], want, oldCopies, newCopies)
					}
					delete(got, m)
				}
				if len(got) != 0 {
					t.Fatalf("change %d %s: sent to non-copies %v", ci, key, got)
				}
			}
		}
	}
}

func TestReadiness(t *testing.T) {
	ms := members(3)
	c := newCore(t, Config{Self: ms[0], Members: ms})
	rd := c.Readiness()
	if rd.Ready || !rd.Transferring || len(rd.Pending) != 2 || rd.Members != 3 {
		t.Fatalf("starting: %+v", rd)
	}
	for _, p := range c.TransferRound(t0, 1) {
		err := ""
		if p.Member == ms[2] {
			err = "timeout"
		}
		c.TransferPartDone(t0, 1, p, err)
	}
	c.TransferRoundEnd(t0, 1)
	if rd = c.Readiness(); rd.Ready || rd.Pending[ms[2]] != "timeout" || len(rd.Pending) != 1 {
		t.Fatalf("waiting for one: %+v", rd)
	}
	c.CallFailed(t0, ms[2], false, "unreachable")
	if rd = c.Readiness(); rd.Ready || !rd.Transferring || rd.Down[ms[2]].Err != "unreachable" {
		t.Fatalf("the member waited for was just marked down: not ready yet %+v", rd)
	}
	c.TransferRound(t0.Add(time.Second), 1)
	c.TransferRoundEnd(t0.Add(DefaultTransferPatience-time.Millisecond), 1)
	if rd = c.Readiness(); rd.Ready {
		t.Fatalf("ready before the transfer patience ran out: %+v", rd)
	}
	c.TransferRound(t0.Add(DefaultTransferPatience), 1)
	c.TransferRoundEnd(t0.Add(DefaultTransferPatience), 1)
	if rd = c.Readiness(); !rd.Ready || rd.Transferring || rd.Down[ms[2]].Err != "unreachable" {
		t.Fatalf("the member waited for is down past the patience: ready %+v", rd)
	}
	c.CallFailed(t0, ms[1], false, "unreachable")
	if rd = c.Readiness(); rd.Ready {
		t.Fatalf("no other member reachable: %+v", rd)
	}
	solo := newCore(t, Config{Self: "solo", Members: []string{"solo"}})
	if !solo.Readiness().Ready {
		t.Fatal("a lone member is ready")
	}
}
