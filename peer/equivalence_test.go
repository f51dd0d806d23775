// The equivalence test of the decision core: real members over real QUIC
// on loopback go through a scripted fault sequence (writes, reads, takes; a
// member stopped, written around, restarted at its address and caught up;
// a membership change) while each records what it fed its core (peer/core)
// and what the core decided; each trace is then replayed into a fresh
// core, through JSON as a simulator would load it, and must give the same
// decisions, step for step.

package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/transport/transporttest"
)

func TestCoreEquivalenceQUIC(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 4)
	peers := make([]*Peer, 4)
	recs := make([]*core.TraceRecorder, 4)
	for i, a := range addrs {
		recs[i] = core.NewTraceRecorder(core.Config{}, time.Time{})
		p, err := New(Config{Self: a, Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quiet,
			Recorder: recs[i], ProbeInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[i] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range peers {
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, p.transferDone, "state transfer to finish")
	}
	val := func(i int) []byte { return fmt.Appendf(nil, "v%d", i) }

	// Healthy: writes from every member, reads everywhere, takes.
	for i := range 40 {
		if err := peers[i%4].Set(ctx, key(i), val(i), time.Minute); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	for i := range 40 {
		if v, err := peers[(i+1)%4].Get(ctx, key(i)); err != nil || string(v) != string(val(i)) {
			t.Fatalf("Get %d = %q, %v", i, v, err)
		}
	}
	for i := range 5 {
		if v, err := peers[(i+2)%4].Take(ctx, key(i)); err != nil || string(v) != string(val(i)) {
			t.Fatalf("Take %d = %q, %v", i, v, err)
		}
		if _, err := peers[i%4].Take(ctx, key(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second Take %d: %v, want not found", i, err)
		}
	}

	// A member stops: the others mark it down, keep delayed writes for it,
	// and read its keys from their other copies.
	dead := addrs[3]
	peers[3].Close()
	live := peers[:3]
	// One member hears it from a liveness source (gossip) first.
	live[0].health.liveness(dead, false, errors.New("gossip: no acks"))
	for i := 40; i < 80; i++ {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		err := live[i%3].Set(wctx, key(i), val(i), time.Minute)
		wcancel()
		if err != nil {
			t.Fatalf("Set %d with a member down: %v", i, err)
		}
	}
	for _, p := range live {
		waitFor(t, func() bool { return p.health.isDown(dead) }, "the stopped member to be marked down")
	}
	for i := 5; i < 80; i++ {
		gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := live[i%3].Get(gctx, key(i))
		gcancel()
		if err != nil || string(v) != string(val(i)) {
			t.Fatalf("Get %d with a member down (owners %v) = %q, %v", i, live[i%3].Owners(key(i)), v, err)
		}
	}
	for i := 5; i < 10; i++ {
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := live[i%3].Take(tctx, key(i))
		tcancel()
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("Take %d with a member down: %v", i, err)
		}
		_ = v // a key whose other copy was the stopped member's may be a miss (see Take)
	}
	if err := live[0].Delete(ctx, key(20)); err != nil {
		t.Fatal(err)
	}

	// The member restarts at its address, pulls its entries by state
	// transfer, is found up by the others' probes and gets the writes it
	// missed.
	recs = append(recs, core.NewTraceRecorder(core.Config{}, time.Time{}))
	back, err := New(Config{Self: dead, Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quiet,
		Recorder: recs[4], ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	if err := back.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range live {
		waitFor(t, func() bool { n, _ := p.hints.stats(); return !p.health.isDown(dead) && n == 0 },
			"the restarted member to be up and its delayed writes delivered")
	}

	// The membership changes: the restarted member is removed again and
	// hands its entries off; the others move theirs.
	for _, p := range append(live, back) {
		p.SetMembers(addrs[:3])
	}
	for _, p := range append(live, back) {
		if err := p.WaitRebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 10; i < 80; i++ {
		v, err := live[(i+1)%3].Get(ctx, key(i))
		if i == 20 {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted key: %q, %v", v, err)
			}
			continue
		}
		if err != nil || string(v) != string(val(i)) {
			t.Fatalf("Get %d after the change = %q, %v", i, v, err)
		}
	}
	if v, err := live[2].Take(ctx, key(30)); err != nil || string(v) != string(val(30)) {
		t.Fatalf("Take after the change = %q, %v", v, err)
	}
	for _, p := range append(live, back) {
		p.Close()
	}

	// Replay every member's trace into a fresh core, through JSON.
	kinds := map[core.Kind]int{}
	marked, queued, upAgain := 0, 0, 0
	for i, rec := range recs {
		tr := rec.Trace()
		if tr.Config.Self != addrs[min(i, 3)] || len(tr.Steps) == 0 {
			t.Fatalf("member %d: trace of %q with %d steps", i, tr.Config.Self, len(tr.Steps))
		}
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		var back core.Trace
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := core.Replay(back); err != nil {
			t.Fatalf("member %d (%d steps): %v", i, len(tr.Steps), err)
		}
		for _, s := range tr.Steps {
			kinds[s.Event.Kind]++
			if (s.Event.Kind == core.KindCallFailed || s.Event.Kind == core.KindLiveness) && s.Decision.Changed && s.Event.Member == dead {
				marked++
			}
			if s.Event.Kind == core.KindCallOK && s.Decision.Changed && s.Event.Member == dead {
				upAgain++
			}
			if s.Event.Kind == core.KindHintAdd && s.Decision.Queued && s.Event.Member == dead {
				queued++
			}
		}
		t.Logf("member %d: %d steps replayed alike", i, len(tr.Steps))
	}
	// The traces must hold the decisions the script exercises, or the
	// replay proves little.
	for _, k := range []core.Kind{core.KindRoute, core.KindCallOK, core.KindCallFailed, core.KindTick,
		core.KindMiss, core.KindSetMembers, core.KindHintAdd, core.KindTransferRound,
		core.KindTransferPartDone, core.KindTransferRoundEnd, core.KindHintsClaim, core.KindHintsTake,
		core.KindHintsDone, core.KindLiveness} {
		if kinds[k] == 0 {
			t.Errorf("no %s event recorded", k)
		}
	}
	if marked < 3 || queued == 0 || upAgain < 3 {
		t.Errorf("the stopped member was marked down %d times and up again %d times (want one each per live member), %d delayed writes for it",
			marked, upAgain, queued)
	}
	routes := 0
	for _, rec := range recs[:3] {
		for _, s := range rec.Trace().Steps {
			if s.Event.Kind == core.KindRoute && slices.Contains(s.Decision.Order, dead) {
				routes++
			}
		}
	}
	if routes == 0 {
		t.Error("no route involved the stopped member")
	}
}
