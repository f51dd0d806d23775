// Routing of the public operations to a key's copies, and serving of
// requests from other members.

package peer

import (
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
		if ctx.Err() == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transport.ErrUnreachable) {
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
// copy that answered has the key, and an error when no copy answered.
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
			return v, nil
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

// all sends req to every copy of its key in parallel and waits for all.
// Writes skip members marked down (unless every copy is), so a dead member
// does not hold each write for a whole deadline; the probe brings it back.
func (p *Peer) all(ctx context.Context, req *transport.Request) error {
	targets := p.targets(req.Key)
	if req.Op == transport.OpSet {
		up := slices.DeleteFunc(slices.Clone(targets), p.health.isDown)
		if len(up) > 0 {
			targets = up
		}
	}
	errs := make(chan error, len(targets))
	for _, m := range targets[1:] {
		go func() { errs <- respErr(p.call(ctx, m, req)) }()
	}
	errs <- respErr(p.call(ctx, targets[0], req))
	var firstErr error
	okCount := 0
	for range targets {
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

func respErr(resp *transport.Response, err error) error {
	if err != nil {
		return err
	}
	if resp.Status != transport.StatusOK && resp.Status != transport.StatusNotFound {
		return fmt.Errorf("peer: member answered %s: %s", resp.Status, resp.Message)
	}
	return nil
}

// Take returns the value stored under key and removes every copy: of two
// concurrent Takes of one key, on any members, at most one gets the value.
//
// The first copy in ring order that answers decides: a miss there is a
// miss, even if another copy still holds the key (it may be a stale copy of
// an entry already taken). Only when that copy cannot be reached is the next
// one asked. After a successful Take the other copies are deleted in the
// background.
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
	owners := p.ring.Load().Owners(key, p.cfg.Replicas)
	// Ring order, not local-first: every member must ask the same copy
	// first, or two servers could each take a different copy.
	order := make([]string, 0, len(owners))
	for _, m := range owners {
		if m == p.self || !p.health.isDown(m) {
			order = append(order, m)
		}
	}
	for _, m := range owners {
		if m != p.self && p.health.isDown(m) {
			order = append(order, m)
		}
	}
	req := &transport.Request{Op: transport.OpTake, Key: key}
	var lastErr error
	for i, m := range order {
		resp, err := p.call(ctx, m, req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return nil, err
			}
			continue
		}
		v, err := getResult(resp, nil)
		if err == nil {
			p.deleteCopies(key, order[:i], order[i+1:])
		}
		return v, err
	}
	return nil, lastErr
}

// deleteCopies removes key from the members other than the winner, in the
// background, so a Take returns as soon as it has the value.
func (p *Peer) deleteCopies(key []byte, before, after []string) {
	others := append(append([]string(nil), before...), after...)
	if len(others) == 0 {
		return
	}
	key = append([]byte(nil), key...)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.bg, p.cfg.RequestTimeout)
		defer cancel()
		req := &transport.Request{Op: transport.OpDelete, Key: key}
		for _, m := range others {
			if err := respErr(p.call(ctx, m, req)); err != nil {
				p.log.Debug("deleting a taken entry's other copy failed", "peer", m, "err", err)
			}
		}
	}()
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
