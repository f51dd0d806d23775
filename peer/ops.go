// Routing of the public operations to a key's copies, and serving of
// requests from other members.

package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/transport"
)

// targets returns the members holding key, in the order the decision core
// says to ask them (core.RouteRead: this member first if it holds a copy,
// then the others in ring order, members marked down last); up is how many
// of them are not marked down.
func (p *Peer) targets(key []byte) (order []string, up int) {
	return p.core.Route(core.RouteWrite, key)
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
	targets, _ := p.core.Route(core.RouteRead, key)
	missed := false // this member's own copy answered a miss that counts
	if targets[0] == p.self {
		if v, _, ok := p.store.Get(key); ok {
			return bytes.Clone(v), nil // the store's own bytes must not escape
		}
		targets = targets[1:]
		// While entries are still arriving by state transfer, a local miss
		// says nothing.
		missed = p.core.LocalMissCounts()
	}
	rd := core.NewRead(targets, missed)
	switch len(targets) {
	case 0:
		return nil, ErrNotFound
	case 1: // nothing to hedge to: ask inline
		m, _ := rd.Ask()
		v, err := getResult(p.call(ctx, m, req))
		if err == nil {
			return v, nil
		}
		if rd.Answer(resultOf(err)) == core.OutMiss {
			err = ErrNotFound
		}
		return nil, err
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
	ask := func() {
		m, ok := rd.Ask()
		if !ok {
			return
		}
		refs.Add(1)
		go func() {
			defer release()
			resp, err := p.call(callCtx, m, req)
			results <- result{resp, err}
		}()
	}
	ask()
	hedge := time.NewTimer(p.core.Hedge(core.RouteRead, 0))
	defer hedge.Stop()
	var lastErr error
	for {
		select {
		case r := <-results:
			v, err := getResult(r.resp, r.err)
			if err == nil {
				return v, nil
			}
			if !errors.Is(err, ErrNotFound) {
				lastErr = err
			}
			switch rd.Answer(resultOf(err)) {
			case core.OutMiss:
				// A miss on a copy that answered is a miss; the unreachable
				// copy's failure is recorded in its call metrics and health.
				return nil, ErrNotFound
			case core.OutFailed:
				return nil, lastErr
			}
			ask() // a miss or a failure: ask the next copy
		case <-hedge.C:
			ask() // a slow copy: ask the next one too
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// resultOf classifies a copy's answer to a read or take for the core.
func resultOf(err error) core.Result {
	switch {
	case err == nil:
		return core.Found
	case errors.Is(err, ErrNotFound):
		return core.NotFound
	}
	return core.Failed
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

// all sends req to every copy of its key, the local one first and inline,
// the others in parallel, and waits for the copies that are up until they
// answer or ctx ends; it fails only if no copy took it. A copy that is
// marked down, or whose call fails, gets the write later: it is kept as a
// delayed write (hints.go) and delivered when that member answers again,
// so a dead member does not hold each write for a whole deadline.
func (p *Peer) all(ctx context.Context, req *transport.Request) error {
	targets, up := p.targets(req.Key)
	if up == 0 {
		up = len(targets) // every copy marked down: try them anyway
	}
	for _, m := range targets[up:] {
		p.hints.add(m, req)
	}
	if up == 1 {
		err := respErr(p.call(ctx, targets[0], req))
		if err != nil && targets[0] != p.self && retriable(err) {
			p.hints.add(targets[0], req)
		}
		return err
	}
	// The calls may outlive all: they get their own copy of the request and
	// a context that keeps the caller's deadline but not its cancellation.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.cfg.RequestTimeout)
	}
	callCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	var refs atomic.Int32 // outstanding calls, plus one for this function
	refs.Store(int32(up) + 1)
	release := func() {
		if refs.Add(-1) == 0 {
			cancel()
		}
	}
	defer release()
	req = &transport.Request{Op: req.Op, Key: bytes.Clone(req.Key), Value: bytes.Clone(req.Value), TTL: req.TTL}
	errs := make(chan error, up)
	remote := targets[:up]
	if remote[0] == p.self {
		// The local copy first, inline: it costs no round trip, and a
		// member that wrote a key then holds it when Set returns (its own
		// next read of it is local).
		errs <- respErr(p.serve(callCtx, req), nil)
		release()
		remote = remote[1:]
	}
	p.wg.Add(len(remote))
	for _, m := range remote {
		go func() {
			defer p.wg.Done()
			defer release()
			err := respErr(p.call(callCtx, m, req))
			if err != nil && m != p.self && retriable(err) {
				p.hints.add(m, req)
			}
			errs <- err
		}()
	}
	var firstErr error
	okCount := 0
wait:
	for range up {
		select {
		case err := <-errs:
			if err == nil {
				okCount++
			} else if firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			if okCount == 0 {
				return ctx.Err()
			}
			break wait // the rest go on to the deadline, kept if they fail
		}
	}
	if okCount == 0 {
		return firstErr
	}
	return nil
}

// retriable reports whether a failed write may succeed later: anything but
// a member refusing the request itself.
func retriable(err error) bool {
	var bad badRequest
	return !errors.As(err, &bad)
}

// badRequest is a member's StatusBadRequest answer: the request broke a
// limit, and sending it again will not help.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return "peer: member refused the request: " + e.msg }

// sendLater sends req to members in the background, bounded by
// RequestTimeout and Close; a member that does not take it gets it as a
// delayed write.
func (p *Peer) sendLater(req *transport.Request, members []string) {
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
				p.log.Debug("background request failed; kept as a delayed write", "remote", m, "op", req.Op, "err", err)
				if retriable(err) {
					p.hints.add(m, req)
				}
			}
		}
	}()
}

func respErr(resp *transport.Response, err error) error {
	if err != nil {
		return err
	}
	switch resp.Status {
	case transport.StatusOK, transport.StatusNotFound:
		return nil
	case transport.StatusBadRequest:
		return badRequest{resp.Message}
	}
	return fmt.Errorf("peer: member answered %s: %s", resp.Status, resp.Message)
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
	order, up := p.core.Route(core.RouteTake, key)
	tk := core.NewTake(order, up)
	// Calls may outlive Take (it returns at the first miss): they must not
	// use the caller's key buffer.
	req := &transport.Request{Op: transport.OpTake, Key: bytes.Clone(key)}
	type answer struct {
		index int
		resp  *transport.Response
		err   error
	}
	answers := make(chan answer, len(order))
	askNext := func() {
		m, i, ok := tk.Ask()
		if !ok {
			return
		}
		if m == p.self {
			answers <- answer{i, p.serve(ctx, req), nil}
			return
		}
		go func() {
			resp, err := p.call(ctx, m, req)
			answers <- answer{i, resp, err}
		}()
	}
	askNext()
	var left time.Duration
	if d, ok := ctx.Deadline(); ok {
		left = max(time.Until(d), 1)
	}
	hedge := time.NewTimer(p.core.Hedge(core.RouteTake, left))
	defer hedge.Stop()
	var value []byte
	var lastErr error
	out := core.Pending
wait:
	for out == core.Pending {
		select {
		case a := <-answers:
			v, err := getResult(a.resp, a.err)
			switch {
			case err == nil:
				value = v
			case !errors.Is(err, ErrNotFound):
				lastErr = err
			}
			if out = tk.Answer(a.index, resultOf(err)); out == core.Pending {
				askNext()
			}
		case <-hedge.C:
			askNext()
		case <-ctx.Done():
			lastErr = ctx.Err()
			out = tk.Final()
			break wait
		}
	}
	switch out {
	case core.OutMiss:
		return nil, ErrNotFound
	case core.OutFailed:
		return nil, lastErr
	}
	p.sendLater(&transport.Request{Op: transport.OpDelete, Key: key}, tk.Rest(nil))
	return value, nil
}

// serve answers a request, from another member or from this one.
func (p *Peer) serve(ctx context.Context, req *transport.Request) *transport.Response {
	if err := ctx.Err(); err != nil {
		return &transport.Response{Status: transport.StatusError, Message: "deadline passed before serving"}
	}
	resp := p.serveStore(ctx, req)
	p.metrics.served.WithLabelValues(req.Op.String(), resp.Status.String()).Inc()
	return resp
}

func (p *Peer) serveStore(ctx context.Context, req *transport.Request) *transport.Response {
	switch req.Op {
	case transport.OpGet:
		if v, ttl, ok := p.store.Get(req.Key); ok {
			return &transport.Response{Value: v, TTL: ttl}
		}
		return p.miss(req.Key)
	case transport.OpTake:
		if v, ttl, ok := p.store.Take(req.Key); ok {
			return &transport.Response{Value: v, TTL: ttl}
		}
		return p.miss(req.Key)
	case transport.OpSet:
		if !p.store.Set(req.Key, req.Value, req.TTL) {
			return &transport.Response{Status: transport.StatusBadRequest, Message: "entry too large for this member's store"}
		}
		return &transport.Response{}
	case transport.OpDelete:
		p.store.Delete(req.Key)
		return &transport.Response{}
	case transport.OpPutMany:
		// Copies from other members (hand-off, state transfer, delayed
		// writes): a key this member has, or has deleted, keeps its state.
		added := 0
		for _, e := range req.Entries {
			if p.store.Add(e.Key, e.Value, e.TTL) {
				added++
			}
		}
		p.metrics.handoffReceived.Add(float64(added))
		return &transport.Response{}
	case transport.OpSync:
		return p.serveSync(ctx, req)
	case transport.OpPing:
		return &transport.Response{}
	}
	return &transport.Response{Status: transport.StatusBadRequest, Message: fmt.Sprintf("unknown operation %d", req.Op)}
}

// miss answers a Get or Take of a key this member does not hold: not
// found, unless its state transfer is still running and the key is not
// known deleted (a tombstone), when the key may yet arrive and the caller
// should ask the other copy. A Take relies on a tombstone's answer being
// not found: that is what lets only one of two racing Takes win.
func (p *Peer) miss(key []byte) *transport.Response {
	if p.core.Miss(time.Now(), key, p.store.Deleted(key)) == core.MissTransferring {
		return &transport.Response{Status: transport.StatusError, Message: "this member is receiving its entries (state transfer); ask the other copy"}
	}
	return &transport.Response{Status: transport.StatusNotFound}
}
