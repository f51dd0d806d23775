// Delayed writes (hinted hand-off): a Set or Delete that cannot reach one
// of its key's copies is kept here and delivered when that member answers
// again, so a copy that was down, paused or cut off catches up on the
// writes and deletes it missed instead of staying single (or stale) until
// the next failure.
//
// Hints are bounded: Config.HintBytes over all members (keys, values and
// hintOverhead each); a write that does not fit is dropped and counted. A
// hint for a Set expires with the value's TTL; one for a Delete after
// Config.TombstoneTTL, as the store's tombstones do. Hints live in memory
// only: a member that restarts loses the hints it held, and the member they
// were for, if it restarted, pulls its entries with a state transfer
// instead (transfer.go).

package peer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// hintOverhead is what one hint is charged beyond its key and value: the
// map slot and the hint itself, rounded up.
const hintOverhead = 96

// hint is one delayed write for one member.
type hint struct {
	del     bool // a Delete (or a Take's removal); else a Set of value
	value   []byte
	expires time.Time
}

func (h hint) cost(key string) int64 { return int64(len(key)+len(h.value)) + hintOverhead }

type hints struct {
	p   *Peer
	max int64

	mu         sync.Mutex
	bytes      int64
	byMember   map[string]map[string]hint // member -> key -> newest write for it
	delivering map[string]bool            // members with a delivery running
}

func newHints(p *Peer, max int64) *hints {
	return &hints{p: p, max: max, byMember: map[string]map[string]hint{}, delivering: map[string]bool{}}
}

// add keeps req (OpSet or OpDelete) for member. A newer write of a key
// replaces the older one: only the last write of a key matters.
func (h *hints) add(member string, req *transport.Request) {
	now := h.p.cfg.Now()
	var ht hint
	switch req.Op {
	case transport.OpSet:
		ht = hint{value: req.Value, expires: now.Add(req.TTL)}
	case transport.OpDelete:
		ht = hint{del: true, expires: now.Add(h.p.cfg.TombstoneTTL)}
	default:
		return
	}
	key := string(req.Key)
	c := ht.cost(key)
	h.mu.Lock()
	m := h.byMember[member]
	if m == nil {
		m = map[string]hint{}
		h.byMember[member] = m
	}
	old, had := m[key]
	if had {
		h.bytes -= old.cost(key)
	}
	if h.bytes+c > h.max {
		if had {
			delete(m, key)
		}
		h.mu.Unlock()
		h.p.metrics.hints.WithLabelValues("dropped").Inc()
		return
	}
	if ht.value != nil {
		ht.value = append([]byte(nil), ht.value...)
	}
	m[key] = ht
	h.bytes += c
	h.mu.Unlock()
	h.p.metrics.hints.WithLabelValues("queued").Inc()
}

// pending returns the members that have hints and no delivery running.
func (h *hints) pending() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for m, hs := range h.byMember {
		if len(hs) > 0 && !h.delivering[m] {
			out = append(out, m)
		}
	}
	return out
}

// stats returns the number of hints and their bytes.
func (h *hints) stats() (n int, bytes int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, hs := range h.byMember {
		n += len(hs)
	}
	return n, h.bytes
}

// forget drops the hints of members no longer in the ring.
func (h *hints) forget(keep func(string) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for m, hs := range h.byMember {
		if keep(m) {
			continue
		}
		for k, ht := range hs {
			h.bytes -= ht.cost(k)
		}
		delete(h.byMember, m)
	}
}

// kick starts delivering member's hints in the background unless a
// delivery to it is running or it has none.
func (h *hints) kick(member string) {
	h.mu.Lock()
	if h.delivering[member] || len(h.byMember[member]) == 0 || h.p.closed.Load() {
		h.mu.Unlock()
		return
	}
	h.delivering[member] = true
	h.mu.Unlock()
	h.p.wg.Add(1)
	go func() {
		defer h.p.wg.Done()
		ctx, cancel := context.WithTimeout(h.p.bg, h.p.cfg.RequestTimeout*4)
		defer cancel()
		if err := h.deliver(ctx, member); err != nil {
			h.p.log.Debug("delayed writes not delivered yet; retrying when the member answers", "peer", member, "err", err)
		}
		h.mu.Lock()
		delete(h.delivering, member)
		h.mu.Unlock()
	}()
}

// reroute applies a kept write to copies, the key's current copies: at
// once on this member, as a kept write for the others (delivered on the
// probe loop's next round).
func (h *hints) reroute(key string, ht hint, copies []string, now time.Time) {
	ttl := ht.expires.Sub(now)
	if ttl <= 0 {
		return
	}
	req := &transport.Request{Op: transport.OpSet, Key: []byte(key), Value: ht.value, TTL: ttl}
	if ht.del {
		req = &transport.Request{Op: transport.OpDelete, Key: []byte(key)}
	}
	for _, c := range copies {
		switch {
		case c != h.p.self:
			h.add(c, req)
		case ht.del:
			h.p.store.Delete(req.Key)
		default:
			h.p.store.Add(req.Key, req.Value, ttl)
		}
	}
}

// deliver sends member its hints: Sets in batches of OpPutMany (which the
// member stores only where it has neither the key nor a tombstone for it),
// Deletes one by one. Hints that fail to go out are kept unless a newer
// write of the key arrived meanwhile.
func (h *hints) deliver(ctx context.Context, member string) error {
	h.mu.Lock()
	all := h.byMember[member]
	delete(h.byMember, member)
	for k, ht := range all {
		h.bytes -= ht.cost(k)
	}
	h.mu.Unlock()
	if len(all) == 0 {
		return nil
	}
	now := h.p.cfg.Now()
	// The ring may have changed since these writes were kept: a key this
	// member no longer holds goes to the copies it has now instead.
	r := h.p.ring.Load()
	for k, ht := range all {
		copies := r.Owners([]byte(k), h.p.cfg.Replicas)
		if slices.Contains(copies, member) {
			continue
		}
		delete(all, k)
		h.reroute(k, ht, copies, now)
	}
	failed := map[string]hint{}
	var firstErr error
	fail := func(keys []string, err error) {
		if firstErr == nil {
			firstErr = err
		}
		for _, k := range keys {
			failed[k] = all[k]
		}
	}
	var b batch
	var batchKeys []string
	flush := func() {
		if len(b.entries) == 0 {
			return
		}
		err := respErr(h.p.call(ctx, member, &transport.Request{Op: transport.OpPutMany, Entries: b.entries}))
		if err != nil {
			fail(batchKeys, err)
		} else {
			h.p.metrics.hints.WithLabelValues("delivered").Add(float64(len(b.entries)))
		}
		b.entries, b.bytes, batchKeys = nil, 0, nil
	}
	expired := 0
	for k, ht := range all {
		ttl := ht.expires.Sub(now)
		switch {
		case ttl <= 0:
			expired++
		case firstErr != nil:
			failed[k] = ht // the member stopped answering: keep the rest for later
		case ht.del:
			err := respErr(h.p.call(ctx, member, &transport.Request{Op: transport.OpDelete, Key: []byte(k)}))
			if err != nil {
				fail([]string{k}, err)
			} else {
				h.p.metrics.hints.WithLabelValues("delivered").Inc()
			}
		default:
			batchKeys = append(batchKeys, k)
			if b.add(transport.Entry{Key: []byte(k), Value: ht.value, TTL: ttl}) {
				flush()
			}
		}
	}
	flush()
	h.p.metrics.hints.WithLabelValues("expired").Add(float64(expired))
	if len(failed) == 0 {
		return nil
	}
	// Put back what did not go out, unless a newer write replaced it.
	h.mu.Lock()
	m := h.byMember[member]
	if m == nil {
		m = map[string]hint{}
		h.byMember[member] = m
	}
	for k, ht := range failed {
		if _, newer := m[k]; newer {
			continue
		}
		m[k] = ht
		h.bytes += ht.cost(k)
	}
	h.mu.Unlock()
	return fmt.Errorf("%d of %d delayed writes for %s not delivered: %w", len(failed), len(all), member, firstErr)
}
