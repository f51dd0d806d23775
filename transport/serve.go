// What both implementations do around a Handler: a panic guard, and the
// checks that turn what a handler returns into an answer the wire can
// carry, so the in-memory network and QUIC answer alike.

package transport

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// panicReporter is told what a handler panicked with.
type panicReporter interface {
	handlerPanicked(req *Request, r any)
}

// serveGuarded runs h on req and checks its answer. A panicking handler
// answers StatusError; rep, if not nil, is told what it panicked with.
func serveGuarded(ctx context.Context, h Handler, req *Request, rep panicReporter) (resp *Response) {
	defer func() {
		if r := recover(); r != nil {
			if rep != nil {
				rep.handlerPanicked(req, r)
			}
			resp = &Response{Status: StatusError, Message: "transport: handler panicked"}
		}
	}()
	return checkResponse(h.ServeMember(ctx, req))
}

// checkResponse turns a handler's answer into one the wire can carry: no
// answer, an unknown status or a value over MaxValueSize become
// StatusError naming the cause; a TTL outside 0..MaxTTL is clamped and a
// message over MaxMessageSize cut.
func checkResponse(resp *Response) *Response {
	switch {
	case resp == nil:
		return &Response{Status: StatusError, Message: "transport: handler returned no response"}
	case resp.Status > StatusError:
		return &Response{Status: StatusError, Message: fmt.Sprintf("transport: handler returned unknown status %d", uint8(resp.Status))}
	case len(resp.Value) > MaxValueSize:
		return &Response{Status: StatusError, Message: fmt.Sprintf("transport: handler returned a value of %d bytes, limit %d", len(resp.Value), MaxValueSize)}
	case resp.TTL < 0 || resp.TTL > MaxTTL || len(resp.Message) > MaxMessageSize:
		r := *resp
		r.TTL = min(max(r.TTL, 0), MaxTTL)
		r.Message = truncMessage(r.Message)
		return &r
	}
	return resp
}

// deadlineCtx is a handler's context on the serving side: the transport's
// context (canceled when it closes) with the caller's deadline. Unlike
// context.WithDeadline it starts no timer unless the handler asks for Done:
// a store operation that only checks Err costs no timer per request.
type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	ctx    context.Context // made on the first Done
	cancel context.CancelFunc
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		c.ctx, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.ctx.Done()
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	ctx := c.ctx
	c.mu.Unlock()
	if ctx != nil {
		return ctx.Err()
	}
	if err := c.parent.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *deadlineCtx) Value(key any) any { return c.parent.Value(key) }

// release stops the timer Done started, if any.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	if c.cancel != nil {
		c.cancel()
	}
	c.mu.Unlock()
}
