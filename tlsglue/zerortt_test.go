// zerortt_test.go: early data (0-RTT) across an HTTP/3 fleet: quic-go
// http3 servers, each resuming through its own real ring member over QUIC;
// returning clients sending their request in 0-RTT to another server than
// the one that issued their session; and their recorded first flights
// replayed to every server, after the client and racing it.

package tlsglue

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ticketkeys"
)

// h3Deadline is the lookup deadline of the tests about correctness: roomy
// enough that -race on a loaded 2-core machine never times out a lookup.
const h3Deadline = time.Second

// h3Fleet starts n members and an HTTP/3 server on each.
func h3Fleet(t *testing.T, n int, opts Options, ho ...h3Opts) []*h3Server {
	t.Helper()
	if opts.Deadline == 0 {
		opts.Deadline = h3Deadline
	}
	members := newMembers(t, n)
	srv := newH3Servers(t, memberStores(members), opts, ho...)
	for _, s := range srv {
		s.fleet = members
	}
	return srv
}

func memberStores(members []*peer.Peer) []Store {
	out := make([]Store, len(members))
	for i, m := range members {
		out[i] = m
	}
	return out
}

// returning gives a fresh client its session from issuer (a request
// without early data) and waits for the session to be stored (on every
// copy, when the fleet is known: see settle).
func returning(t *testing.T, issuer *h3Server, path string) *h3Client {
	t.Helper()
	c := newH3Client(t)
	if r := c.mustGet(t, issuer.addr, path); r.resumed {
		t.Fatal("a fresh client resumed")
	}
	issuer.flush(t)
	if issuer.fleet != nil {
		settle(t, issuer.fleet, c)
	}
	return c
}

// TestH3CrossServerEarlyData: with SingleUse, 100 returning clients whose
// sessions A issued send their request in 0-RTT to B or C; at least 99 are
// answered from early data. The servers' accepted counts match quic-go's
// own account (Used0RTT) request for request.
func TestH3CrossServerEarlyData(t *testing.T) {
	srv := h3Fleet(t, 3, Options{SingleUse: true})
	const n, parallel = 100, 10
	var early atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range n {
		c := returning(t, srv[0], fmt.Sprintf("/first/%d", i))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s := srv[1+i%2]
			path := fmt.Sprintf("/return/%d", i)
			r, _, err := c.earlyGet(t, s, path)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			if r.used0RTT {
				early.Add(1)
			} else {
				t.Logf("client %d: no 0-RTT on %s (resumed %v)", i, s.name, r.resumed)
			}
			if _, e := s.counts(path); (e == 1) != r.used0RTT {
				t.Errorf("client %d: the client says 0-RTT %v, %s's handler saw %d early requests", i, r.used0RTT, s.name, e)
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d returning clients answered from early data on another server", early.Load(), n)
	if early.Load() < 99 {
		t.Errorf("0-RTT accepted for %d of %d returning clients, want >= 99", early.Load(), n)
	}
	var offered, accepted float64
	for _, s := range srv[1:] {
		ec := s.waitDecided(t, 0)
		offered += ec.offered
		accepted += ec.accepted
		lookups := map[string]float64{}
		for i, r := range lookupResults {
			lookups[r] = value(s.m.lookups[i])
		}
		t.Logf("%s: early data offered %v, accepted %v, refused %v; lookups %v", s.name, ec.offered, ec.accepted, ec.refused, lookups)
	}
	if offered != n || accepted != float64(early.Load()) {
		t.Errorf("metrics: offered %v accepted %v; want %d and %d", offered, accepted, n, early.Load())
	}
	if ec := srv[0].earlyCounts(); ec.offered != 0 {
		t.Errorf("A: early data offered %v times by fresh clients", ec.offered)
	}
}

// replayEverywhere replays flight to every server in turn and returns how
// many accepted early data, failing t if a replay's early data reached a
// handler on a server whose metrics say it refused it.
func replayEverywhere(t *testing.T, srv []*h3Server, flight [][]byte) (accepted int, reasons map[string]float64) {
	t.Helper()
	reasons = map[string]float64{}
	for _, s := range srv {
		before, after := replay(t, s, flight)
		if after.accepted > before.accepted {
			accepted++
		}
		for r, v := range after.refused {
			reasons[r] += v - before.refused[r]
		}
	}
	return accepted, reasons
}

// TestH3ReplayAfterUse: with SingleUse, a returning client's first flight
// (ClientHello and early data, recorded on its way to B) replayed from a
// fresh socket to A, B and C once the client is done: no server accepts
// its early data, and no handler sees the replayed request.
func TestH3ReplayAfterUse(t *testing.T) {
	srv := h3Fleet(t, 3, Options{SingleUse: true})
	const n = 10
	replays, accepted, genuine := 0, 0, 0
	reasons := map[string]float64{}
	for i := range n {
		c := returning(t, srv[0], fmt.Sprintf("/first/%d", i))
		path := fmt.Sprintf("/return/%d", i)
		r, rec, err := c.earlyGet(t, srv[1], path)
		if err != nil {
			t.Fatal(err)
		}
		if r.used0RTT {
			genuine++
		}
		a, rs := replayEverywhere(t, srv, rec.recorded())
		replays += len(srv)
		accepted += a
		for k, v := range rs {
			reasons[k] += v
		}
		for _, s := range srv {
			req, early := s.counts(path)
			if s == srv[1] {
				req--
				early = 0 // the client's own
			}
			if req != 0 || early != 0 {
				t.Errorf("client %d: %s handled the replayed request %d times (%d as early data)", i, s.name, req, early)
			}
		}
	}
	t.Logf("genuine 0-RTT accepted %d/%d; replayed flights accepted %d/%d; refusals %v", genuine, n, accepted, replays, reasons)
	if accepted != 0 {
		t.Errorf("replayed early data accepted %d times of %d", accepted, replays)
	}
	if genuine < n-1 {
		t.Errorf("the genuine clients' 0-RTT was accepted %d times of %d", genuine, n)
	}
	if reasons[EarlyRefusedNoSession] != float64(replays) {
		t.Errorf("refusals %v, want all %d %q", reasons, replays, EarlyRefusedNoSession)
	}
}

// TestH3DefaultRefusesEarlyData: without SingleUse (tlsglue's default),
// returning clients resume on another server but their early data is
// refused (and resent by quic-go in 1-RTT), so their replayed first
// flights get no early data accepted anywhere either.
func TestH3DefaultRefusesEarlyData(t *testing.T) {
	srv := h3Fleet(t, 3, Options{})
	const n = 5
	replays, accepted := 0, 0
	reasons := map[string]float64{}
	for i := range n {
		c := returning(t, srv[0], fmt.Sprintf("/first/%d", i))
		path := fmt.Sprintf("/return/%d", i)
		r, rec, err := c.earlyGet(t, srv[1], path)
		if err != nil {
			t.Fatal(err)
		}
		if !r.resumed || r.used0RTT || r.server != "B" {
			t.Errorf("client %d: resumed %v, 0-RTT %v, answered by %q; want a resumption on B without 0-RTT", i, r.resumed, r.used0RTT, r.server)
		}
		a, rs := replayEverywhere(t, srv, rec.recorded())
		replays += len(srv)
		accepted += a
		for k, v := range rs {
			reasons[k] += v
		}
		for _, s := range srv {
			if req, early := s.counts(path); early != 0 || (s != srv[1] && req != 0) {
				t.Errorf("client %d: %s handled %d requests, %d as early data", i, s.name, req, early)
			}
		}
	}
	t.Logf("replayed flights accepted %d/%d; refusals %v", accepted, replays, reasons)
	if accepted != 0 {
		t.Errorf("replayed early data accepted %d times of %d", accepted, replays)
	}
	if ec := srv[1].earlyCounts(); ec.refused[EarlyRefusedReplayable] < n {
		t.Errorf("B refused %v, want %d for %q", ec.refused, n, EarlyRefusedReplayable)
	}
}

// TestH3ReplayableEarlyDataIsReplayed: what the opt-in costs, and proof
// that the replay harness sees replays when they are accepted: with
// ReplayableEarlyData and no SingleUse, every replayed first flight has its
// early data accepted, and every server's handler executes the replayed
// request.
func TestH3ReplayableEarlyDataIsReplayed(t *testing.T) {
	srv := h3Fleet(t, 3, Options{ReplayableEarlyData: true})
	const n = 3
	replays, accepted := 0, 0
	for i := range n {
		c := returning(t, srv[0], fmt.Sprintf("/first/%d", i))
		path := fmt.Sprintf("/return/%d", i)
		r, rec, err := c.earlyGet(t, srv[1], path)
		if err != nil {
			t.Fatal(err)
		}
		if !r.used0RTT {
			t.Errorf("client %d: no 0-RTT on B", i)
		}
		a, _ := replayEverywhere(t, srv, rec.recorded())
		replays += len(srv)
		accepted += a
		for _, s := range srv {
			want := 1
			if s == srv[1] {
				want = 2 // the client's and the replay's
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				_, early := s.counts(path)
				if early == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("client %d: %s handled %d early requests, want %d", i, s.name, early, want)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	t.Logf("replayed flights accepted %d/%d", accepted, replays)
	if accepted != replays {
		t.Errorf("replayed early data accepted %d times of %d, want every time", accepted, replays)
	}
}

// TestH3ReplayRace: with SingleUse, the client's first flight goes to B
// while a copy of each datagram leaves at once for A and C from sockets of
// their own: of the three handshakes offering the one session's early
// data, at most one accepts it.
func TestH3ReplayRace(t *testing.T) {
	srv := h3Fleet(t, 3, Options{SingleUse: true})
	const rounds = 20
	winners := map[string]int{}
	for i := range rounds {
		c := returning(t, srv[0], fmt.Sprintf("/first/%d", i))
		path := fmt.Sprintf("/return/%d", i)
		before := make([]earlyCounts, len(srv))
		for j, s := range srv {
			before[j] = s.earlyCounts()
		}
		r, _, err := c.earlyGet(t, srv[1], path, srv[0].addr, srv[2].addr)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		winner := "none"
		for j, s := range srv {
			after := s.waitDecided(t, before[j].offered+1)
			if d := int(after.accepted - before[j].accepted); d > 0 {
				total += d
				winner = s.name
			}
		}
		if r.used0RTT && winner != "B" {
			t.Errorf("round %d: the client's 0-RTT was accepted but the metrics name %s", i, winner)
		}
		earlyHandled := 0
		for _, s := range srv {
			_, e := s.counts(path)
			earlyHandled += e
		}
		if total > 1 || earlyHandled > 1 {
			t.Fatalf("round %d: early data accepted %d times, handled as early data %d times", i, total, earlyHandled)
		}
		winners[winner]++
	}
	t.Logf("who accepted the early data, over %d races: %v", rounds, winners)
}

// slowTake delays every Take, modelling a slow owner: by delay, or (when
// delay is 0) until the lookup's deadline has passed, after which the Take
// still completes at the owner, as a Take the owner received in time but
// answered late would.
type slowTake struct {
	Store
	delay    time.Duration
	returned atomic.Int64
}

func (s *slowTake) Take(ctx context.Context, key []byte) ([]byte, error) {
	defer s.returned.Add(1)
	if s.delay == 0 {
		<-ctx.Done()
		late, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		s.Store.Take(late, key)
		return nil, ctx.Err()
	}
	time.Sleep(s.delay)
	return s.Store.Take(ctx, key)
}

// TestH3TakeBeforeEarlyData: the early data waits for the single-use Take.
// With a Take that takes 300 ms (the client's 0-RTT packets arrive long
// before it returns), the request is still answered from early data, and
// its handler runs only after the Take returned. With a Take that outlasts
// the lookup deadline, the handshake is full, no early data is accepted,
// the request is answered in 1-RTT, and a replay finds the session gone.
func TestH3TakeBeforeEarlyData(t *testing.T) {
	t.Run("slow", func(t *testing.T) {
		members := memberStores(newMembers(t, 2))
		slow := &slowTake{Store: members[1], delay: 300 * time.Millisecond}
		srv := newH3Servers(t, []Store{members[0], slow}, Options{SingleUse: true, Deadline: 5 * time.Second})
		var takesAtHandler atomic.Int64
		takesAtHandler.Store(-1)
		srv[1].onRequest = func(r *http.Request, early bool) {
			if r.URL.Path == "/return" {
				takesAtHandler.Store(slow.returned.Load())
			}
		}
		c := returning(t, srv[0], "/first")
		r, _, err := c.earlyGet(t, srv[1], "/return")
		if err != nil {
			t.Fatal(err)
		}
		if !r.used0RTT || !r.resumed {
			t.Fatalf("resumed %v, 0-RTT %v; want both", r.resumed, r.used0RTT)
		}
		if n := takesAtHandler.Load(); n != 1 {
			t.Fatalf("the early request's handler ran when %d Takes had returned, want 1", n)
		}
	})
	t.Run("past the deadline", func(t *testing.T) {
		members := memberStores(newMembers(t, 3))
		late := &slowTake{Store: members[1]}
		srv := newH3Servers(t, []Store{members[0], late, members[2]}, Options{SingleUse: true, Deadline: 100 * time.Millisecond})
		c := returning(t, srv[0], "/first")
		r, rec, err := c.earlyGet(t, srv[1], "/return")
		if err != nil {
			t.Fatal(err)
		}
		if r.resumed || r.used0RTT || r.server != "B" {
			t.Fatalf("resumed %v, 0-RTT %v, answered by %q; want a full handshake on B", r.resumed, r.used0RTT, r.server)
		}
		ec := srv[1].waitDecided(t, 1)
		if ec.accepted != 0 || ec.refused[EarlyRefusedNoSession] != 1 {
			t.Fatalf("B: %+v, want one refusal %q", ec, EarlyRefusedNoSession)
		}
		// Every lookup on B times out (the resend's too, of the session
		// the refused connection got).
		if to, hit := value(srv[1].m.lookups[lrTimeout]), value(srv[1].m.lookups[lrHit]); to < 1 || hit != 0 {
			t.Errorf("B: %v lookup timeouts and %v hits, want only timeouts", to, hit)
		}
		before, after := replay(t, srv[2], rec.recorded())
		if after.accepted != before.accepted {
			t.Fatal("C accepted the replayed early data of a session taken late")
		}
	})
}

// TestH3QUICRefusesEarlyData: quic-go's own checks still apply after
// tlsglue's: a server whose transport parameters are below those the
// session was issued under (fewer streams), or that does not allow 0-RTT,
// resumes the session without early data, counted as "quic"; the Take has
// burned the session all the same, so a replay of that flight finds
// nothing.
func TestH3QUICRefusesEarlyData(t *testing.T) {
	srv := h3Fleet(t, 3, Options{SingleUse: true}, h3Opts{quic: func(i int) *quic.Config {
		switch i {
		case 1:
			return &quic.Config{Allow0RTT: true, MaxIncomingStreams: 10}
		case 2:
			return &quic.Config{Allow0RTT: false}
		}
		return &quic.Config{Allow0RTT: true}
	}})
	for _, s := range srv[1:] {
		c := returning(t, srv[0], "/first/"+s.name)
		r, rec, err := c.earlyGet(t, s, "/return/"+s.name)
		if err != nil {
			t.Fatal(err)
		}
		if !r.resumed || r.used0RTT {
			t.Errorf("%s: resumed %v, 0-RTT %v; want a resumption without 0-RTT", s.name, r.resumed, r.used0RTT)
		}
		if ec := s.waitDecided(t, 1); ec.refused[EarlyRefusedQUIC] != 1 {
			t.Errorf("%s: %+v, want one refusal %q", s.name, ec, EarlyRefusedQUIC)
		}
		before, after := replay(t, srv[0], rec.recorded())
		if after.accepted != before.accepted || after.refused[EarlyRefusedNoSession] != before.refused[EarlyRefusedNoSession]+1 {
			t.Errorf("replay to A after %s: %+v -> %+v, want a refusal %q", s.name, before, after, EarlyRefusedNoSession)
		}
	}
}

// TestH3StatelessRefusesEarlyData: a stateless ticket (sealed under the
// fleet's keys, agreed through real members) opens on every server any
// number of times, so even with SingleUse it resumes without early data,
// and its replayed first flight gets none accepted anywhere.
func TestH3StatelessRefusesEarlyData(t *testing.T) {
	members := newMembers(t, 3)
	clk := &testClock{}
	var ks []*ticketkeys.Keyring
	for _, m := range members {
		k, err := ticketkeys.New(m, ticketkeys.Options{Now: clk.now, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	refreshUntilHeld(t, ks...)
	srv := newH3Servers(t, memberStores(members), Options{Mode: Stateless, SingleUse: true, Deadline: h3Deadline},
		h3Opts{options: func(i int, o *Options) { o.TicketKeys = ks[i] }})
	const n = 3
	replays, accepted := 0, 0
	for i := range n {
		c := newH3Client(t)
		c.mustGet(t, srv[0].addr, fmt.Sprintf("/first/%d", i))
		path := fmt.Sprintf("/return/%d", i)
		r, rec, err := c.earlyGet(t, srv[1], path)
		if err != nil {
			t.Fatal(err)
		}
		if !r.resumed || r.used0RTT {
			t.Errorf("client %d: resumed %v, 0-RTT %v; want a resumption without 0-RTT", i, r.resumed, r.used0RTT)
		}
		a, _ := replayEverywhere(t, srv, rec.recorded())
		replays += len(srv)
		accepted += a
		for _, s := range srv {
			if _, early := s.counts(path); early != 0 {
				t.Errorf("client %d: %s handled %d requests as early data", i, s.name, early)
			}
		}
	}
	t.Logf("replayed flights accepted %d/%d", accepted, replays)
	if accepted != 0 {
		t.Errorf("replayed early data accepted %d times of %d", accepted, replays)
	}
	if ec := srv[1].earlyCounts(); ec.refused[EarlyRefusedReplayable] < n {
		t.Errorf("B refused %v, want %d for %q", ec.refused, n, EarlyRefusedReplayable)
	}
}
