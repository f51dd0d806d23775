// The in-memory transport: members of one Network call each other's
// handlers directly, with copies of every byte slice so no memory is shared
// the way it could not be over a wire. For unit tests and simulations. It
// answers as QUIC does (the conformance tests hold both to one table): the
// same limits, a handler's panic or bad answer turned into StatusError, and
// a call that returns at its deadline whatever its handler does.

package transport

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Fault is how an in-memory member misbehaves, set with Network.SetFault.
type Fault int

// Faults an in-memory member can show.
const (
	// Healthy members answer every call.
	Healthy Fault = iota
	// Refusing members fail every call at once with ErrUnreachable, like a
	// closed port.
	Refusing
	// Silent members never answer: calls wait for the caller's deadline,
	// like a host that dropped off the network.
	Silent
)

// Network connects in-memory transports. The zero value is not usable;
// call NewNetwork.
type Network struct {
	mu      sync.RWMutex
	members map[string]*memMember
	latency time.Duration
}

type memMember struct {
	h     Handler
	fault Fault
	ctx   context.Context // handlers' context, canceled when the member closes
}

// NewNetwork returns an empty in-memory network.
func NewNetwork() *Network {
	return &Network{members: make(map[string]*memMember)}
}

// SetLatency makes every call wait d before it is served (one way; the
// response is not delayed further). Zero, the default, serves at once.
func (n *Network) SetLatency(d time.Duration) {
	n.mu.Lock()
	n.latency = d
	n.mu.Unlock()
}

// SetFault makes member misbehave as f until set back to Healthy.
func (n *Network) SetFault(member string, f Fault) {
	n.mu.Lock()
	if m := n.members[member]; m != nil {
		m.fault = f
	}
	n.mu.Unlock()
}

// Listen joins the network as member, serving incoming calls with h. It
// returns an error if member is already listening.
func (n *Network) Listen(member string, h Handler) (Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.members[member]; ok {
		return nil, fmt.Errorf("transport: %s is already listening on this network", member)
	}
	t := &memTransport{net: n, self: member, closed: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	n.members[member] = &memMember{h: h, ctx: t.ctx}
	return t, nil
}

type memTransport struct {
	net    *Network
	self   string
	ctx    context.Context // canceled by Close: ends this member's handlers
	cancel context.CancelFunc
	once   sync.Once
	closed chan struct{}
}

func (t *memTransport) Call(ctx context.Context, member string, req *Request) (*Response, error) {
	select {
	case <-t.closed:
		return nil, ErrClosed
	default:
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.net.mu.RLock()
	m := t.net.members[member]
	var h Handler
	var hctx context.Context
	fault := Refusing
	if m != nil {
		h, fault, hctx = m.h, m.fault, m.ctx
	}
	latency := t.net.latency
	t.net.mu.RUnlock()

	switch fault {
	case Refusing:
		return nil, fmt.Errorf("%w: %s", ErrUnreachable, member)
	case Silent:
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.closed:
			return nil, ErrClosed
		}
	}
	if latency > 0 {
		timer := time.NewTimer(latency)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-t.closed:
			timer.Stop()
			return nil, ErrClosed
		}
	}
	// The handler runs on its own goroutine under the caller's deadline
	// (not its cancellation, which a wire does not carry), so the call
	// returns at its deadline however long the handler takes.
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		hctx, cancel = context.WithDeadline(hctx, d)
		defer cancel()
	}
	done := make(chan *Response, 1)
	go func() { done <- serveGuarded(hctx, h, cloneRequest(req), nil) }()
	var resp *Response
	select {
	case resp = <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.closed:
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err // a late reply is discarded, as over a wire
	}
	out := *resp
	out.Value = clone(resp.Value)
	return &out, nil
}

func (t *memTransport) Close() error {
	t.once.Do(func() {
		close(t.closed)
		t.cancel()
		t.net.mu.Lock()
		delete(t.net.members, t.self)
		t.net.mu.Unlock()
	})
	return nil
}

func cloneRequest(req *Request) *Request {
	out := &Request{Op: req.Op, Key: clone(req.Key), Value: clone(req.Value), TTL: req.TTL}
	if req.Entries != nil {
		out.Entries = make([]Entry, len(req.Entries))
		for i, e := range req.Entries {
			out.Entries[i] = Entry{Key: clone(e.Key), Value: clone(e.Value), TTL: e.TTL}
		}
	}
	return out
}

// clone copies b; empty is nil, as a wire delivers it.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
