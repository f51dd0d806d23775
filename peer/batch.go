// Batched writes: SetBatch stores several entries with one request per
// member that holds any of them, for callers (tlsglue's write queue) that
// have several sessions to store at once.

package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// SetBatch stores values[i] under keys[i] for ttls[i], for every i, on
// every copy of each key, sending one request per member (split at the
// protocol's batch limits) instead of one per entry and copy. It returns
// one error per entry: nil when at least one copy stored it. As with Set,
// members marked down get their share in the background, unless an entry
// has no other copy.
func (p *Peer) SetBatch(ctx context.Context, keys, values [][]byte, ttls []time.Duration) []error {
	errs := make([]error, len(keys))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if len(values) != len(keys) || len(ttls) != len(keys) {
		return fail(fmt.Errorf("peer: SetBatch with %d keys, %d values and %d ttls", len(keys), len(values), len(ttls)))
	}
	if err := p.begin(); err != nil {
		return fail(err)
	}
	start := time.Now()
	up := map[string][]int{}   // member -> entries it gets now
	down := map[string][]int{} // members marked down -> entries they may get later
	for i, k := range keys {
		if errs[i] = checkEntry(k, values[i], ttls[i]); errs[i] != nil {
			continue
		}
		errs[i] = errNoCopy // until a copy stores it
		for _, m := range p.targets(k) {
			if m != p.self && p.health.isDown(m) {
				down[m] = append(down[m], i)
			} else {
				up[m] = append(up[m], i)
			}
		}
	}
	p.setMany(ctx, up, keys, values, ttls, errs)
	// Entries no live copy stored: try the members marked down, now.
	retry := map[string][]int{}
	for m, idx := range down {
		var later []int
		for _, i := range idx {
			if errs[i] != nil {
				retry[m] = append(retry[m], i)
			} else {
				later = append(later, i)
			}
		}
		for _, batch := range batches(later, keys, values, ttls) {
			p.background(&transport.Request{Op: transport.OpSetMany, Entries: batch.entries}, []string{m})
		}
	}
	p.setMany(ctx, retry, keys, values, ttls, errs)
	for _, err := range errs {
		p.metrics.observeOp("set", err, time.Since(start))
	}
	return errs
}

// setMany sends each member its entries, in parallel, and clears errs[i]
// for every entry a member stored; for entries no member stored, errs[i]
// becomes the first failure seen.
func (p *Peer) setMany(ctx context.Context, members map[string][]int, keys, values [][]byte, ttls []time.Duration, errs []error) {
	type done struct {
		index []int
		err   error
	}
	results := make(chan done)
	pending := 0
	for m, idx := range members {
		for _, b := range batches(idx, keys, values, ttls) {
			pending++
			go func() {
				req := &transport.Request{Op: transport.OpSetMany, Entries: b.entries}
				results <- done{b.index, respErr(p.call(ctx, m, req))}
			}()
		}
	}
	var firstErr error
	failed := map[int]bool{}
	for range pending {
		d := <-results
		for _, i := range d.index {
			if d.err == nil {
				errs[i] = nil
			} else {
				failed[i] = true
			}
		}
		if d.err != nil && firstErr == nil {
			firstErr = d.err
		}
	}
	for i := range failed {
		if errs[i] != nil {
			errs[i] = firstErr
		}
	}
}

// entryBatch is one request's worth of entries and their indexes.
type entryBatch struct {
	entries []transport.Entry
	index   []int
}

// batches splits the entries idx into requests within the protocol's
// limits on count and bytes.
func batches(idx []int, keys, values [][]byte, ttls []time.Duration) []entryBatch {
	var out []entryBatch
	size := 0
	for _, i := range idx {
		n := len(out)
		s := len(keys[i]) + len(values[i])
		if n == 0 || len(out[n-1].entries) == transport.MaxBatchEntries || size+s > transport.MaxBatchBytes {
			out = append(out, entryBatch{})
			size = 0
			n++
		}
		out[n-1].entries = append(out[n-1].entries, transport.Entry{Key: keys[i], Value: values[i], TTL: ttls[i]})
		out[n-1].index = append(out[n-1].index, i)
		size += s
	}
	return out
}

// errNoCopy marks an entry no copy has stored yet.
var errNoCopy = errors.New("peer: no copy of the entry could be stored")

func cloneEntries(es []transport.Entry) []transport.Entry {
	if es == nil {
		return nil
	}
	out := make([]transport.Entry, len(es))
	for i, e := range es {
		out[i] = transport.Entry{Key: append([]byte(nil), e.Key...), Value: append([]byte(nil), e.Value...), TTL: e.TTL}
	}
	return out
}

// checkEntry validates one key, value and ttl against the limits.
func checkEntry(key, value []byte, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	switch {
	case len(value) > MaxValueSize:
		return fmt.Errorf("peer: value of %d bytes exceeds the limit of %d", len(value), MaxValueSize)
	case ttl <= 0:
		return fmt.Errorf("peer: ttl %v must be positive", ttl)
	case ttl > MaxTTL:
		return fmt.Errorf("peer: ttl %v exceeds the limit of %v", ttl, MaxTTL)
	}
	return nil
}
