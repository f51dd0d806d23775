// Routing of the public operations to a key's copies, and serving of
// requests from other members.

package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// targets returns the members holding key, in the order to ask them: this
// member first if it holds a copy (a local read is free), then the others
// in ring order, with members marked down moved to the end.
func (p *Peer) targets(key []byte) []string {
	owners := p.ring.Load().Owners(key, p.cfg.Replicas)
	out := make([]string, 0, len(owners))
	for _, m := range owners {
		if m == p.self {
			out = append(out, m)
		}
	}
	for _, m := range owners {
		if m != p.self && !p.health.isDown(m) {
			out = append(out, m)
		}
	}
	for _, m := range owners {
		if m != p.self && p.health.isDown(m) {
			out = append(out, m)
		}
	}
	return out
}

// call sends req to member, serving it locally when member is this one.
func (p *Peer) call(ctx context.Context, member string, req *transport.Request) (*transport.Response, error) {
	if member == p.self {
		return p.serve(ctx, req), nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
	}
	start := time.Now()
	resp, err := p.tr.Call(ctx, member, req)
	p.metrics.observeCall(member, resp, err, time.Since(start))
	if err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, transport.ErrClosed) {
			p.health.failed(member, err)
		}
		return nil, err
	}
	p.health.ok(member)
	return resp, nil
}

func (p *Peer) begin() error {
	if p.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Get returns the value stored under key. It asks the key's owner and, if
// the owner misses, fails or has not answered within Config.HedgeAfter,
// its replica; the first value found wins. It returns ErrNotFound when no
// copy that answered has the key, and an error when no copy answered. The
// returned slice belongs to the caller.
func (p *Peer) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := p.begin(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	start := time.Now()
	v, err := p.get(ctx, key)
	p.metrics.observeOp("get", err, time.Since(start))
	return v, err
}

type result struct {
	resp *transport.Response
	err  error
}

func (p *Peer) get(ctx context.Context, key []byte) ([]byte, error) {
	req := &transport.Request{Op: transport.OpGet, Key: key}
	targets := p.targets(key)
	missed := false // some copy answered that it does not have the key
	if targets[0] == p.self {
		if v, _, ok := p.store.Get(key); ok {
			return bytes.Clone(v), nil // the store's own bytes must not escape
		}
		targets = targets[1:]
		missed = true
	}
	switch len(targets) {
	case 0:
		return nil, ErrNotFound
	case 1: // nothing to hedge to: ask inline
		v, err := getResult(p.call(ctx, targets[0], req))
		if err != nil && missed {
			err = ErrNotFound
		}
		return v, err
	}
	// Calls that lose the race are not cancelled when Get returns: they run
	// to the caller's deadline, so a member that never answers is seen
	// timing out and marked down, and a slow one is seen answering.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.cfg.RequestTimeout)
	}
	callCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	var refs atomic.Int32 // outstanding calls, plus one for this function
	refs.Store(1)
	release := func() {
		if refs.Add(-1) == 0 {
			cancel()
		}
	}
	defer release()
	// The calls may outlive Get: they must not use the caller's key buffer.
	req.Key = bytes.Clone(key)
	results := make(chan result, len(targets))
	ask := func(m string) {
		defer release()
		resp, err := p.call(callCtx, m, req)
		results <- result{resp, err}
	}
	refs.Add(1)
	go ask(targets[0])
	next, pending := 1, 1
	hedge := time.NewTimer(p.cfg.HedgeAfter)
	defer hedge.Stop()
	var lastErr error
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			v, err := getResult(r.resp, r.err)
			if err == nil {
				return v, nil
			}
			if errors.Is(err, ErrNotFound) {
				missed = true
			} else {
				lastErr = err
			}
		case <-hedge.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// A miss, a failure or a slow copy: ask the next one.
		if next < len(targets) {
			refs.Add(1)
			go ask(targets[next])
			next++
			pending++
		}
	}
	if missed || lastErr == nil {
		// A miss on a copy that answered is a miss; the unreachable copy's
		// failure is recorded in its call metrics and health.
		return nil, ErrNotFound
	}
	return nil, lastErr
}

func getResult(resp *transport.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	switch resp.Status {
	case transport.StatusOK:
		return resp.Value, nil
	case transport.StatusNotFound:
		return nil, ErrNotFound
	}
	return nil, fmt.Errorf("peer: member answered %s: %s", resp.Status, resp.Message)
}

// Set stores value under key for ttl on every copy of key, in parallel. It
// succeeds if at least one copy stored it.
func (p *Peer) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if err := p.begin(); err != nil {
		return err
	}
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
	start := time.Now()
	err := p.all(ctx, &transport.Request{Op: transport.OpSet, Key: key, Value: value, TTL: ttl})
	p.metrics.observeOp("set", err, time.Since(start))
	return err
}

// Delete removes key from every copy. It succeeds if at least one copy
// answered.
func (p *Peer) Delete(ctx context.Context, key []byte) error {
	if err := p.begin(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	start := time.Now()
	err := p.all(ctx, &transport.Request{Op: transport.OpDelete, Key: key})
	p.metrics.observeOp("delete", err, time.Since(start))
	return err
}

// all sends req to every copy of its key in parallel and waits for those
// that are up. Members marked down get the request in the background, so a
// dead member does not hold each write for a whole deadline, and a member
// wrongly marked down still gets its copy.
func (p *Peer) all(ctx context.Context, req *transport.Request) error {
	targets := p.targets(req.Key)
	up := slices.DeleteFunc(slices.Clone(targets), p.health.isDown)
	if len(up) == 0 {
		up = targets
	} else if len(up) < len(targets) {
		p.background(req, slices.DeleteFunc(slices.Clone(targets), func(m string) bool { return !p.health.isDown(m) }))
	}
	errs := make(chan error, len(up))
	for _, m := range up[1:] {
		go func() { errs <- respErr(p.call(ctx, m, req)) }()
	}
	errs <- respErr(p.call(ctx, up[0], req))
	var firstErr error
	okCount := 0
	for range up {
		if err := <-errs; err != nil {
			if firstErr == nil {
				firstErr = err
			}
		} else {
			okCount++
		}
	}
	if okCount == 0 {
		return firstErr
	}
	return nil
}

// background sends req to members without waiting, bounded by
// RequestTimeout and Close.
func (p *Peer) background(req *transport.Request, members []string) {
	if len(members) == 0 {
		return
	}
	req = &transport.Request{Op: req.Op, Key: bytes.Clone(req.Key), Value: bytes.Clone(req.Value), TTL: req.TTL}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.bg, p.cfg.RequestTimeout)
		defer cancel()
		for _, m := range members {
			if err := respErr(p.call(ctx, m, req)); err != nil {
				p.log.Debug("background request failed", "peer", m, "op", req.Op, "err", err)
			}
		}
	}()
}

func respErr(resp *transport.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.Status != transport.StatusOK && resp.Status != transport.StatusNotFound {
		return fmt.Errorf("peer: member answered %s: %s", resp.Status, resp.Message)
	}
	return nil
}

// Take returns the value stored under key and removes every copy: of
// concurrent Takes of one key, on any members, at most one gets the value.
//
// Take removes the copies one after another in ring order, owner first
// (members marked down are skipped unless all are), moving on early when a
// copy has not answered within half the remaining deadline. It wins only if some copy
// returned the value and no copy answered that it had none. Since every
// Take starts at the owner, the owner decides races between healthy
// members: exactly one wins. A Take that skips the owner (it sees it down)
// can still only win if it also removes the replica's copy first, and then
// the owner's winner sees that copy gone and loses: at most one wins. Two
// winners would need one Take cut off from the replica while another is cut
// off from the owner. The price: a key whose replica lost its copy (it was
// down at the write, or evicted it) is a miss for Take. Copies that did not
// answer are sent a Delete in the background.
func (p *Peer) Take(ctx context.Context, key []byte) ([]byte, error) {
	if err := p.begin(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	start := time.Now()
	v, err := p.take(ctx, key)
	p.metrics.observeOp("take", err, time.Since(start))
	return v, err
}

func (p *Peer) take(ctx context.Context, key []byte) ([]byte, error) {
	copies := p.ring.Load().Owners(key, p.cfg.Replicas)
	ask := slices.DeleteFunc(slices.Clone(copies), func(m string) bool { return m != p.self && p.health.isDown(m) })
	if len(ask) == 0 {
		ask = copies
	}
	// Calls may outlive Take (it returns at the first miss): they must not
	// use the caller's key buffer.
	req := &transport.Request{Op: transport.OpTake, Key: bytes.Clone(key)}
	type answer struct {
		member string
		resp   *transport.Response
		err    error
	}
	answers := make(chan answer, len(ask))
	next, pending := 0, 0
	askNext := func() {
		if next == len(ask) {
			return
		}
		m := ask[next]
		next++
		pending++
		if m == p.self {
			answers <- answer{m, p.serve(ctx, req), nil}
			return
		}
		go func() {
			resp, err := p.call(ctx, m, req)
			answers <- answer{m, resp, err}
		}()
	}
	askNext()
	// Moving on to the replica before the owner answered lets two racing
	// Takes each remove one copy and both lose; so a Take waits longer than
	// a read before it hedges: half of what is left of its deadline.
	hedgeAfter := p.cfg.HedgeAfter
	if d, ok := ctx.Deadline(); ok {
		hedgeAfter = max(hedgeAfter, time.Until(d)/2)
	}
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	var value []byte
	var lastErr error
	answered := make([]string, 0, len(ask))
wait:
	for pending > 0 {
		select {
		case a := <-answers:
			pending--
			v, err := getResult(a.resp, a.err)
			switch {
			case err == nil:
				value = v
				answered = append(answered, a.member)
			case errors.Is(err, ErrNotFound):
				// Another Take got here first (or this copy never had it).
				return nil, ErrNotFound
			default:
				lastErr = err
			}
			askNext()
		case <-hedge.C:
			askNext()
		case <-ctx.Done():
			lastErr = ctx.Err()
			break wait
		}
	}
	if value == nil {
		return nil, lastErr
	}
	var rest []string // copies that may still hold the key
	for _, m := range copies {
		if !slices.Contains(answered, m) {
			rest = append(rest, m)
		}
	}
	p.background(&transport.Request{Op: transport.OpDelete, Key: key}, rest)
	return value, nil
}

// serve answers a request, from another member or from this one.
func (p *Peer) serve(ctx context.Context, req *transport.Request) *transport.Response {
	if err := ctx.Err(); err != nil {
		return &transport.Response{Status: transport.StatusError, Message: "deadline passed before serving"}
	}
	resp := p.serveStore(req)
	p.metrics.served.WithLabelValues(req.Op.String(), resp.Status.String()).Inc()
	return resp
}

func (p *Peer) serveStore(req *transport.Request) *transport.Response {
	switch req.Op {
	case transport.OpGet:
		if v, ttl, ok := p.store.Get(req.Key); ok {
			return &transport.Response{Value: v, TTL: ttl}
		}
		return &transport.Response{Status: transport.StatusNotFound}
	case transport.OpTake:
		if v, ttl, ok := p.store.Take(req.Key); ok {
			return &transport.Response{Value: v, TTL: ttl}
		}
		return &transport.Response{Status: transport.StatusNotFound}
	case transport.OpSet:
		if !p.store.Set(req.Key, req.Value, req.TTL) {
			return &transport.Response{Status: transport.StatusBadRequest, Message: "entry too large for this member's store"}
		}
		return &transport.Response{}
	case transport.OpDelete:
		p.store.Delete(req.Key)
		return &transport.Response{}
	case transport.OpPutMany:
		for _, e := range req.Entries {
			p.store.Set(e.Key, e.Value, e.TTL)
		}
		p.metrics.handoffReceived.Add(float64(len(req.Entries)))
		return &transport.Response{}
	case transport.OpPing:
		return &transport.Response{}
	}
	return &transport.Response{Status: transport.StatusBadRequest, Message: fmt.Sprintf("unknown operation %d", req.Op)}
}
