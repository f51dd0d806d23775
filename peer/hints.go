// Delayed writes (hinted hand-off), the I/O half: a Set or Delete that
// cannot reach one of its key's copies is kept by the decision core
// (peer/core: bounded by Config.HintBytes, rerouted when the ring changes)
// and delivered from here when that member answers again, so a copy that
// was down, paused or cut off catches up on the writes and deletes it
// missed instead of staying single (or stale) until the next failure.
//
// A hint for a Set expires with the value's TTL; one for a Delete after
// Config.TombstoneTTL, as the store's tombstones do. Hints live in memory
// only: a member that restarts loses the hints it held, and the member they
// were for, if it restarted, pulls its entries with a state transfer
// instead (transfer.go).

package peer

import (
	"context"
	"fmt"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/transport"
)

type hints struct {
	p *Peer
}

func newHints(p *Peer) *hints { return &hints{p: p} }

// add keeps req (OpSet or OpDelete) for member.
func (h *hints) add(member string, req *transport.Request) {
	now := h.p.cfg.Now()
	var ht core.Hint
	switch req.Op {
	case transport.OpSet:
		ht = h.p.core.SetHintAt(now, req.Value, req.TTL)
	case transport.OpDelete:
		ht = h.p.core.DeleteHintAt(now)
	default:
		return
	}
	if h.p.core.HintAdd(now, member, req.Key, ht) {
		h.p.metrics.hints.WithLabelValues("queued").Inc()
	} else {
		h.p.metrics.hints.WithLabelValues("dropped").Inc()
	}
}

// pending returns the members that have hints and no delivery running.
func (h *hints) pending() []string { return h.p.core.HintsPending() }

// stats returns the number of hints and their bytes.
func (h *hints) stats() (n int, bytes int64) { return h.p.core.HintStats() }

// kick starts delivering member's hints in the background unless a
// delivery to it is running or it has none.
func (h *hints) kick(member string) {
	if h.p.closed.Load() || !h.p.core.HintsClaim(h.p.cfg.Now(), member) {
		return
	}
	h.p.wg.Add(1)
	go func() {
		defer h.p.wg.Done()
		ctx, cancel := context.WithTimeout(h.p.bg, h.p.cfg.RequestTimeout*4)
		defer cancel()
		if err := h.deliver(ctx, member); err != nil {
			h.p.log.Debug("delayed writes not delivered yet; retrying when the member answers", "remote", member, "err", err)
		}
		h.p.core.HintsDone(h.p.cfg.Now(), member)
	}()
}

// deliver sends member its hints as the core lays them out: Sets in
// batches of OpPutMany (which the member stores only where it has neither
// the key nor a tombstone for it), Deletes one by one; writes rerouted to
// this member are applied to its store. Hints that fail to go out go back
// to the core, which keeps them unless a newer write of the key arrived
// meanwhile.
func (h *hints) deliver(ctx context.Context, member string) error {
	now := h.p.cfg.Now()
	d := h.p.core.HintsTake(now, member)
	for _, e := range d.Local {
		if e.Hint.Del {
			h.p.store.Delete([]byte(e.Key))
		} else {
			h.p.store.Add([]byte(e.Key), e.Hint.Value, e.Hint.Expires.Sub(now))
		}
	}
	var failed []core.HintEntry
	var firstErr error
	for _, e := range d.Deletes {
		if firstErr != nil {
			failed = append(failed, e) // the member stopped answering: keep the rest for later
			continue
		}
		if err := respErr(h.p.call(ctx, member, &transport.Request{Op: transport.OpDelete, Key: []byte(e.Key)})); err != nil {
			firstErr = err
			failed = append(failed, e)
		} else {
			h.p.metrics.hints.WithLabelValues("delivered").Inc()
		}
	}
	var b batch
	var batchSets []core.SetHint
	flush := func() {
		if len(b.entries) == 0 {
			return
		}
		if firstErr != nil {
			for _, s := range batchSets {
				failed = append(failed, s.Entry())
			}
		} else if err := respErr(h.p.call(ctx, member, &transport.Request{Op: transport.OpPutMany, Entries: b.entries})); err != nil {
			firstErr = err
			for _, s := range batchSets {
				failed = append(failed, s.Entry())
			}
		} else {
			h.p.metrics.hints.WithLabelValues("delivered").Add(float64(len(b.entries)))
		}
		b.entries, b.bytes, batchSets = nil, 0, nil
	}
	for _, s := range d.Sets {
		batchSets = append(batchSets, s)
		if b.add(transport.Entry{Key: []byte(s.Key), Value: s.Value, TTL: s.TTL}) {
			flush()
		}
	}
	flush()
	h.p.metrics.hints.WithLabelValues("expired").Add(float64(d.Expired))
	if len(failed) == 0 {
		return nil
	}
	h.p.core.HintsReturn(h.p.cfg.Now(), member, failed)
	return fmt.Errorf("%d of %d delayed writes for %s not delivered: %w", len(failed), len(d.Sets)+len(d.Deletes), member, firstErr)
}
