// Rebalancing: when membership changes, entries move to their new owner and
// replica so that the resumption rate holds. Each entry is pushed by one of
// its old copies; a rebalance that fails retries with backoff and jitter
// until it succeeds or a newer membership change replaces it. A member
// that joins (or comes back) also pulls its entries itself (transfer.go).

package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/transport"
)

// SetMembers replaces the member list. The new ring takes effect at once;
// entries then move to their new copies in the background. An invalid list
// (empty, a duplicate) is logged and ignored. If this member is not in the
// list, it hands all its entries off, as in Leave.
func (p *Peer) SetMembers(members []string) {
	if p.closed.Load() {
		return
	}
	r, err := ring.New(members)
	if err != nil {
		p.log.Error("ignoring membership change", "err", err)
		return
	}
	d := p.core.SetRing(time.Now(), r)
	p.Reauthorize() // members that left lose their connections
	if !r.Contains(p.self) {
		p.log.Warn("this member is not in the new member list; handing its entries off")
	}
	p.log.Info("membership changed", "members", r.Len())
	if d.StartTransfer {
		// Added back: pull what this member holds under the new ring.
		p.startTransfer(d.Gen)
	}

	p.rebalanceMu.Lock()
	defer p.rebalanceMu.Unlock()
	if p.cancelReb != nil {
		p.cancelReb()
	}
	ctx, cancel := context.WithCancel(p.bg)
	p.cancelReb = cancel
	prev := p.rebalanceDone
	done := make(chan struct{})
	p.rebalanceDone = done
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev
		}
		p.rebalanceMu.Lock()
		from := p.settled
		p.rebalanceMu.Unlock()
		start := time.Now()
		moved, err := p.moveEntries(ctx, from, r)
		for backoff := time.Duration(0); err != nil; {
			if ctx.Err() != nil {
				return // a newer membership change, or Close
			}
			var d time.Duration
			d, backoff = p.core.RebalanceBackoff(time.Now(), backoff) // jittered: members do not retry in step
			p.log.Warn("rebalance incomplete; retrying", "err", err, "moved", moved, "in", d.Round(time.Millisecond))
			p.metrics.rebalanceRetries.Inc()
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			var n int
			n, err = p.moveEntries(ctx, from, r)
			moved += n
		}
		p.rebalanceMu.Lock()
		p.settled = r
		p.rebalanceMu.Unlock()
		p.metrics.rebalances.Inc()
		p.log.Info("rebalance done", "moved", moved, "took", time.Since(start).Round(time.Millisecond))
	}()
}

// WaitRebalance blocks until the rebalance started by the last SetMembers
// has finished or ctx ends.
func (p *Peer) WaitRebalance(ctx context.Context) error {
	p.rebalanceMu.Lock()
	done := p.rebalanceDone
	p.rebalanceMu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leave prepares a graceful stop, within ctx: it stops following
// Config.Membership, lets a running rebalance finish and delivers the
// delayed writes this member holds for members that answer again. It copies no entries: every entry has another copy, reads
// fall over to it at once when this member's connections close, and when
// this member comes back (a restart at the same address, as in a rolling
// restart) it pulls its entries back by state transfer; wait for it to be
// ready (Readiness) before stopping the next member. To remove a member
// for good, take it out of the member list (SetMembers): that moves its
// entries to their new copies.
func (p *Peer) Leave(ctx context.Context) error {
	if err := p.begin(); err != nil {
		return err
	}
	p.stopFollowing() // Config.Membership changes the ring no more
	err := p.WaitRebalance(ctx)
	for _, m := range p.hints.pending() {
		if p.health.isDown(m) {
			continue
		}
		if derr := p.hints.deliver(ctx, m); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	if n, _ := p.hints.stats(); n > 0 {
		p.log.Warn("leaving with delayed writes undelivered (their members are down)", "writes", n)
	}
	return err
}

// moveEntries sends each local entry where the core's move plan
// (core.Plan) says, and drops local entries this member no longer holds
// once every move succeeded.
func (p *Peer) moveEntries(ctx context.Context, from, to *ring.Ring) (int, error) {
	out := map[string]*batch{}
	var drop [][]byte
	var errs []error
	moved := 0
	flush := func(m string, b *batch) {
		if len(b.entries) == 0 {
			return
		}
		err := respErr(p.call(ctx, m, &transport.Request{Op: transport.OpPutMany, Entries: b.entries}))
		if err != nil {
			errs = append(errs, fmt.Errorf("peer: handing %d entries to %s: %w", len(b.entries), m, err))
		} else {
			moved += len(b.entries)
			p.metrics.handoffSent.Add(float64(len(b.entries)))
		}
		b.entries, b.bytes = nil, 0
	}
	var sendBuf [8]string
	p.store.Range(func(key, value []byte, ttl time.Duration) bool {
		if ctx.Err() != nil {
			return false
		}
		send, dropIt := p.core.Plan(from, to, key, sendBuf[:0])
		for _, m := range send {
			b := out[m]
			if b == nil {
				b = &batch{}
				out[m] = b
			}
			if b.add(transport.Entry{Key: key, Value: value, TTL: ttl}) {
				flush(m, b)
			}
		}
		if dropIt {
			drop = append(drop, key)
		}
		return true
	})
	for m, b := range out {
		flush(m, b)
	}
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return moved, err // keep local copies: they may be the only ones
	}
	for _, k := range drop {
		p.store.Drop(k)
	}
	return moved, nil
}

// batch collects entries for one OpPutMany request.
type batch struct {
	entries []transport.Entry
	bytes   int
}

// add appends e and reports whether the batch is full: one more entry of
// the largest size might not fit, so it must be sent now.
func (b *batch) add(e transport.Entry) bool {
	b.entries = append(b.entries, e)
	b.bytes += len(e.Key) + len(e.Value)
	return len(b.entries) == transport.MaxBatchEntries || b.bytes > transport.MaxBatchBytes-transport.MaxKeySize-transport.MaxValueSize
}
