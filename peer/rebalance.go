// Rebalancing: when membership changes, entries move to their new owner and
// replica so that the resumption rate holds; when a member leaves, it hands
// its entries to the members that take over its keys.

package peer

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	p.ring.Store(r)
	p.health.forget(r.Contains)
	if !r.Contains(p.self) {
		p.log.Warn("this member is not in the new member list; handing its entries off")
	}
	p.log.Info("membership changed", "members", r.Len())

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
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("rebalance incomplete; the next membership change retries", "err", err, "moved", moved)
			}
			return
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

// Leave hands every local entry to the members that hold its key once this
// member is gone, and returns when they have it or ctx ends. Call it before
// Close on a graceful shutdown (the binary does on SIGTERM); the other
// members keep routing to this one until they learn the new membership, so
// keep serving until then if the deployment allows.
func (p *Peer) Leave(ctx context.Context) error {
	if err := p.begin(); err != nil {
		return err
	}
	cur := p.ring.Load()
	rest := slices.DeleteFunc(slices.Clone(cur.Members()), func(m string) bool { return m == p.self })
	if len(rest) == 0 {
		return nil
	}
	target, err := ring.New(rest)
	if err != nil {
		return err
	}
	moved, err := p.moveEntries(ctx, cur, target)
	p.log.Info("handed entries off before leaving", "moved", moved, "err", err)
	return err
}

// moveEntries sends each local entry to the copies it has under `to` but
// not under `from`, and drops local entries this member no longer holds.
// Each entry is sent by one member only: the first of its old copies that
// is still a member (this one, when it is leaving).
func (p *Peer) moveEntries(ctx context.Context, from, to *ring.Ring) (int, error) {
	n := p.cfg.Replicas
	leaving := !to.Contains(p.self)
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
			errs = append(errs, fmt.Errorf("handing %d entries to %s: %w", len(b.entries), m, err))
		} else {
			moved += len(b.entries)
			p.metrics.handoffSent.Add(float64(len(b.entries)))
		}
		b.entries, b.bytes = nil, 0
	}
	p.store.Range(func(key, value []byte, ttl time.Duration) bool {
		if ctx.Err() != nil {
			return false
		}
		oldCopies, newCopies := from.Owners(key, n), to.Owners(key, n)
		sender := p.self
		if !leaving {
			sender = ""
			for _, m := range oldCopies {
				if to.Contains(m) {
					sender = m
					break
				}
			}
			if sender == "" {
				sender = p.self // every old copy is gone but this stray one
			}
		}
		if sender == p.self {
			for _, m := range newCopies {
				if m == p.self || (slices.Contains(oldCopies, m) && to.Contains(m)) {
					continue // has it already
				}
				b := out[m]
				if b == nil {
					b = &batch{}
					out[m] = b
				}
				b.entries = append(b.entries, transport.Entry{Key: key, Value: value, TTL: ttl})
				b.bytes += len(key) + len(value)
				if len(b.entries) == transport.MaxBatchEntries || b.bytes > transport.MaxBatchBytes-2*transport.MaxValueSize {
					flush(m, b)
				}
			}
		}
		if !slices.Contains(newCopies, p.self) {
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
		p.store.Delete(k)
	}
	return moved, nil
}

type batch struct {
	entries []transport.Entry
	bytes   int
}
