// State transfer: a member that starts, restarts or is added back to the
// ring pulls the entries it owns or replicates from the members that hold
// their other copies, so that a rolling restart of a whole fleet loses
// nothing as long as each member is back (Ready) before the next goes.
//
// The joining member sends every other member an OpSync naming itself; each
// walks its store and pushes the entries the joiner holds a copy of under
// its ring as OpPutMany batches, then answers. Pushed entries go through
// store.Add: what the joiner already has (a write that reached it since it
// started) or has deleted (a tombstone) wins. The joiner serves at once
// while the transfer runs; until it ends, a local miss is not taken as a
// miss: reads and Takes go on to the other copy.
//
// A member that does not answer is retried with backoff and jitter, as long
// as the ring is the same; one that cannot be reached (or is marked down)
// does not hold readiness: its copies are lost to everyone while it is away,
// and if it comes back it serves from its own store.

package peer

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/transport"
)

// startTransfer runs generation gen of the state transfer the decision
// core started (at New, or when this member was added back to the ring),
// in the background, replacing any transfer still running for an older
// ring.
func (p *Peer) startTransfer(gen uint64) {
	p.transferMu.Lock()
	if p.cancelTransfer != nil {
		p.cancelTransfer()
	}
	ctx, cancel := context.WithCancel(p.bg)
	p.cancelTransfer = cancel
	p.transferMu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer cancel()
		p.runTransfer(ctx, gen)
	}()
}

// runTransfer asks for the parts of each round the core lays out (a few at
// once), and waits between rounds as long as the core says, or until a
// member answers again, until all are in or ctx ends (Close, or a newer
// ring).
func (p *Peer) runTransfer(ctx context.Context, gen uint64) {
	const parallel = 4
	start := time.Now()
	for {
		parts := p.core.TransferRound(time.Now(), gen)
		// A fixed pool of workers, not a goroutine per part: a ring of
		// 1000 members has 16,000 parts.
		queue := make(chan core.Part)
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				for j := range queue {
					msg := ""
					if err := p.pullFrom(ctx, j.Member, j.Part); err != nil {
						msg = err.Error()
					}
					p.core.TransferPartDone(time.Now(), gen, j, msg)
				}
			})
		}
		for _, j := range parts {
			queue <- j
		}
		close(queue)
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		d := p.core.TransferRoundEnd(time.Now(), gen)
		if d.Done {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.Wait):
		case <-p.transferKick:
		}
	}
	p.metrics.transfers.Inc()
	p.log.Info("state transfer done", "took", time.Since(start).Round(time.Millisecond), "members", p.core.Ring().Len())
}

// pullFrom asks m for one part of this member's entries and waits until
// it has pushed them all.
func (p *Peer) pullFrom(ctx context.Context, m string, part int) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.TransferTimeout)
	defer cancel()
	req := &transport.Request{Op: transport.OpSync, Key: []byte(p.self), Value: []byte{byte(part), core.TransferParts}}
	resp, err := p.call(ctx, m, req)
	if err != nil {
		return err
	}
	switch resp.Status {
	case transport.StatusOK:
		return nil
	case transport.StatusBadRequest:
		// A member of an older version that knows no OpSync: nothing to
		// pull from it; do not hold readiness on it.
		p.log.Warn("member cannot transfer state (older version?); skipping it", "remote", m, "message", resp.Message)
		return nil
	}
	return fmt.Errorf("peer: %s answered %s: %s", m, resp.Status, resp.Message)
}

// transferDone reports whether the last started state transfer has every
// member's every part.
func (p *Peer) transferDone() bool { return p.core.Transfer().Done }

// kickTransfer makes a waiting state transfer retry now: a member it waits
// for answers again.
func (p *Peer) kickTransfer() {
	select {
	case p.transferKick <- struct{}{}:
	default:
	}
}

// serveSync pushes every local entry of the asked part that req's caller
// holds a copy of under this member's ring to the caller, in OpPutMany
// batches, each bounded by RequestTimeout, all under ctx. req.Value is
// [part, parts]: the entries whose key hashes to part modulo parts; empty
// means all.
func (p *Peer) serveSync(ctx context.Context, req *transport.Request) *transport.Response {
	to := string(req.Key)
	r := p.core.Ring()
	part, parts := 0, 1
	if len(req.Value) != 0 {
		if len(req.Value) != 2 || req.Value[1] == 0 || req.Value[0] >= req.Value[1] {
			return &transport.Response{Status: transport.StatusBadRequest, Message: fmt.Sprintf("sync part %x: want [part, parts] with part < parts", req.Value)}
		}
		part, parts = int(req.Value[0]), int(req.Value[1])
	}
	switch {
	case to == p.self:
		return &transport.Response{Status: transport.StatusBadRequest, Message: "sync asked for this member itself"}
	case !r.Contains(to):
		// Not yet in this member's ring (its member list is older): the
		// caller retries.
		return &transport.Response{Status: transport.StatusError, Message: fmt.Sprintf("%s is not in this member's ring (yet)", to)}
	}
	var b batch
	var sent int
	var err error
	flush := func() {
		if len(b.entries) == 0 || err != nil {
			return
		}
		req := &transport.Request{Op: transport.OpPutMany, Entries: b.entries}
		for try := 0; try < 2; try++ {
			// A second try at once: the caller has just restarted, and the
			// first may have gone out on a connection to its old process.
			bctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
			err = respErr(p.call(bctx, to, req))
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
		}
		if err == nil {
			sent += len(b.entries)
		}
		b.entries, b.bytes = nil, 0
	}
	p.store.Range(func(key, value []byte, ttl time.Duration) bool {
		if (parts == 1 || partOf(key, parts) == part) && slices.Contains(r.Owners(key, p.cfg.Replicas), to) {
			if b.add(transport.Entry{Key: key, Value: value, TTL: ttl}) {
				flush()
			}
		}
		return err == nil && ctx.Err() == nil
	})
	flush()
	if err == nil {
		err = ctx.Err()
	}
	p.metrics.transferSent.Add(float64(sent))
	if err != nil {
		return &transport.Response{Status: transport.StatusError, Message: fmt.Sprintf("state transfer to %s stopped after %d entries: %v", to, sent, err)}
	}
	p.log.Debug("state transfer served", "to", to, "entries", sent)
	return &transport.Response{}
}

// partOf is the transfer part of key (core.PartOf).
func partOf(key []byte, parts int) int { return core.PartOf(key, parts) }

// Readiness says whether a member is ready to serve its share of the ring,
// and if not, why.
type Readiness struct {
	// Ready is true when the state transfer is done and the member
	// reaches at least one other member (or is the only one).
	Ready bool
	// Transferring is true while entries this member holds a copy of are
	// still arriving from other members.
	Transferring bool
	// TransferPending lists the members whose part of the state transfer
	// has not arrived yet, with the last error, if any.
	TransferPending map[string]string
	// Unreachable lists the members marked down, with the error that
	// marked them (a refused certificate shows here).
	Unreachable map[string]string
	// Members is the number of members in this member's ring.
	Members int
}

// String says in one line what an operator needs: "ready", or what keeps
// the member from being ready.
func (r Readiness) String() string {
	var why []string
	if r.Transferring {
		why = append(why, fmt.Sprintf("state transfer in progress (waiting for %s)", joinKeys(r.TransferPending)))
	}
	if r.Members > 1 && len(r.Unreachable) >= r.Members-1 {
		why = append(why, "no other member reachable")
	}
	var b strings.Builder
	if r.Ready {
		b.WriteString("ready")
	} else {
		b.WriteString("not ready: " + strings.Join(why, "; "))
	}
	for _, m := range sortedKeys(r.Unreachable) {
		fmt.Fprintf(&b, "\nunreachable %s: %s", m, r.Unreachable[m])
	}
	return b.String()
}

// Readiness reports whether this member is ready: its state transfer is
// done, and it reaches the ring. It is not "every member is up": with one
// member of a large ring down, every other member is still ready, so an
// orchestrator does not drain a whole fleet for one failure.
func (p *Peer) Readiness() Readiness {
	cr := p.core.Readiness()
	rd := Readiness{Members: cr.Members, Transferring: cr.Transferring, Unreachable: make(map[string]string, len(cr.Down))}
	for m, d := range cr.Down {
		rd.Unreachable[m] = d.Err
	}
	if rd.Transferring {
		rd.TransferPending = make(map[string]string, len(cr.Pending))
		for m, msg := range cr.Pending {
			if msg == "" {
				msg = "not answered yet"
			}
			rd.TransferPending[m] = msg
		}
	}
	rd.Ready = cr.Ready && !p.closed.Load()
	return rd
}

// WaitReady blocks until Readiness says ready or ctx ends.
func (p *Peer) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		rd := p.Readiness()
		if rd.Ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("peer: %s: %w", rd, ctx.Err())
		case <-t.C:
		}
	}
}

func joinKeys(m map[string]string) string { return strings.Join(sortedKeys(m), ", ") }

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
