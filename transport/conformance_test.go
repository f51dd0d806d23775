// The conformance suite: one table of cases, run against the in-memory
// Network and against QUIC on loopback, so that unit tests on the one mean
// something for the other. Panics, answers a handler gets wrong, every
// size limit, deadlines, unknown operations and pings.

package transport

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// confHandler serves with a mapStore unless a case swaps in its own
// handler function.
type confHandler struct {
	store *mapStore
	over  atomic.Pointer[HandlerFunc]
	calls atomic.Int64
}

func (h *confHandler) ServeMember(ctx context.Context, req *Request) *Response {
	h.calls.Add(1)
	if f := h.over.Load(); f != nil {
		return (*f)(ctx, req)
	}
	return h.store.ServeMember(ctx, req)
}

func (h *confHandler) set(f HandlerFunc) { h.over.Store(&f) }

// confEnv is a caller and a serving member of one implementation.
type confEnv struct {
	h      *confHandler
	call   func(ctx context.Context, req *Request) (*Response, error)
	caller Transport
}

var implementations = []struct {
	name  string
	setup func(t *testing.T, h Handler) (caller Transport, member string)
}{
	{"mem", func(t *testing.T, h Handler) (Transport, string) {
		n := NewNetwork()
		srv, err := n.Listen("member", h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cli, err := n.Listen("caller", newMapStore())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli, "member"
	}},
	{"quic", func(t *testing.T, h Handler) (Transport, string) {
		ca := transporttest.NewCA(t)
		srv, err := NewQUIC(QUICConfig{Addr: "127.0.0.1:0", TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: newTextLogger(&logBuf{})}, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		cli := startMember(t, ca, nil)
		return cli.QUIC, srv.Addr()
	}},
}

// confCase is one behaviour every implementation must show.
type confCase struct {
	name string
	run  func(t *testing.T, e *confEnv)
}

func TestConformance(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range conformanceCases {
				t.Run(c.name, func(t *testing.T) {
					h := &confHandler{store: newMapStore()}
					caller, member := impl.setup(t, h)
					e := &confEnv{h: h, caller: caller, call: func(ctx context.Context, req *Request) (*Response, error) {
						return caller.Call(ctx, member, req)
					}}
					c.run(t, e)
				})
			}
		})
	}
}

// mustCall makes a call that must get an answer within 5s.
func (e *confEnv) mustCall(t *testing.T, req *Request) *Response {
	t.Helper()
	r, err := e.call(ctxTimeout(t, 5*time.Second), req)
	if err != nil {
		t.Fatalf("%v: %v", req.Op, err)
	}
	return r
}

func entries(n, valueSize int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Key: []byte{byte(i >> 8), byte(i), 'k'}, Value: make([]byte, valueSize), TTL: time.Minute}
	}
	return es
}

// tooLarge lists requests that break a limit, each with a word its error
// must contain.
var tooLarge = []struct {
	name string
	req  Request
	want string
}{
	{"empty key", Request{Op: OpGet}, "empty key"},
	{"key over limit", Request{Op: OpGet, Key: make([]byte, MaxKeySize+1)}, "limit 255"},
	{"value over limit", Request{Op: OpSet, Key: []byte("k"), Value: make([]byte, MaxValueSize+1), TTL: time.Minute}, "limit 65536"},
	{"ttl zero", Request{Op: OpSet, Key: []byte("k"), Value: []byte("v")}, "must be positive"},
	{"ttl over limit", Request{Op: OpSet, Key: []byte("k"), Value: []byte("v"), TTL: MaxTTL + 1}, "ttl"},
	{"batch empty", Request{Op: OpPutMany}, "no entries"},
	{"batch entries over limit", Request{Op: OpPutMany, Entries: entries(MaxBatchEntries+1, 0)}, "limit 512"},
	{"batch bytes over limit", Request{Op: OpPutMany, Entries: entries(16, MaxValueSize)}, "limit 1048576"}, // 16 x (3 + 65536) bytes
	{"batch entry key empty", Request{Op: OpPutMany, Entries: []Entry{{Value: []byte("v"), TTL: time.Minute}}}, "empty"},
	{"batch entry value over limit", Request{Op: OpPutMany, Entries: []Entry{{Key: []byte("k"), Value: make([]byte, MaxValueSize+1), TTL: time.Minute}}}, "limit 65536"},
	{"unknown op", Request{Op: 42, Key: []byte("k")}, "unknown operation 42"},
}

var conformanceCases = []confCase{
	{"ping", func(t *testing.T, e *confEnv) {
		if r := e.mustCall(t, &Request{Op: OpPing}); r.Status != StatusOK {
			t.Fatalf("ping: %+v", r)
		}
	}},
	{"operations", func(t *testing.T, e *confEnv) {
		if r := e.mustCall(t, &Request{Op: OpSet, Key: []byte("a"), Value: []byte("1"), TTL: time.Minute}); r.Status != StatusOK {
			t.Fatalf("set: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("a")}); r.Status != StatusOK || string(r.Value) != "1" || r.TTL != time.Minute {
			t.Fatalf("get: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpTake, Key: []byte("a")}); r.Status != StatusOK || string(r.Value) != "1" {
			t.Fatalf("take: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpTake, Key: []byte("a")}); r.Status != StatusNotFound || r.Value != nil {
			t.Fatalf("second take: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpPutMany, Entries: entries(3, 1)}); r.Status != StatusOK {
			t.Fatalf("put_many: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpDelete, Key: entries(1, 0)[0].Key}); r.Status != StatusOK {
			t.Fatalf("delete: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: entries(1, 0)[0].Key}); r.Status != StatusNotFound {
			t.Fatalf("get after delete: %+v", r)
		}
	}},
	{"limits reached are accepted", func(t *testing.T, e *confEnv) {
		key := bytes.Repeat([]byte{'k'}, MaxKeySize)
		val := bytes.Repeat([]byte{'v'}, MaxValueSize)
		if r := e.mustCall(t, &Request{Op: OpSet, Key: key, Value: val, TTL: MaxTTL}); r.Status != StatusOK {
			t.Fatalf("set at the limits: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: key}); !bytes.Equal(r.Value, val) {
			t.Fatalf("get at the limits: %d bytes", len(r.Value))
		}
		if r := e.mustCall(t, &Request{Op: OpPutMany, Entries: entries(MaxBatchEntries, 0)}); r.Status != StatusOK {
			t.Fatalf("put_many of %d entries: %+v", MaxBatchEntries, r)
		}
		es := entries(16, MaxValueSize-3) // 16 x (3 + 65533) bytes = MaxBatchBytes
		if r := e.mustCall(t, &Request{Op: OpPutMany, Entries: es}); r.Status != StatusOK {
			t.Fatalf("put_many of %d bytes: %+v", MaxBatchBytes, r)
		}
	}},
	{"limits broken are refused before sending", func(t *testing.T, e *confEnv) {
		for _, c := range tooLarge {
			_, err := e.call(ctxTimeout(t, 5*time.Second), &c.req)
			if err == nil || !strings.HasPrefix(err.Error(), "transport: ") || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrUnreachable) {
				t.Errorf("%s: %v, want a transport error mentioning %q", c.name, err, c.want)
			}
		}
		if n := e.h.calls.Load(); n != 0 {
			t.Fatalf("handler saw %d requests that break a limit", n)
		}
	}},
	{"handler panics", func(t *testing.T, e *confEnv) {
		e.h.set(func(ctx context.Context, req *Request) *Response { panic("boom") })
		r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("k")})
		if r.Status != StatusError || !strings.Contains(r.Message, "panicked") {
			t.Fatalf("panicking handler: %+v", r)
		}
		e.h.over.Store(nil)
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("k")}); r.Status != StatusNotFound {
			t.Fatalf("after a panic: %+v", r)
		}
	}},
	{"handler returns nil", func(t *testing.T, e *confEnv) {
		e.h.set(func(ctx context.Context, req *Request) *Response { return nil })
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("k")}); r.Status != StatusError || !strings.Contains(r.Message, "no response") {
			t.Fatalf("nil answer: %+v", r)
		}
	}},
	{"handler answers beyond the limits", func(t *testing.T, e *confEnv) {
		e.h.set(func(ctx context.Context, req *Request) *Response {
			switch string(req.Key) {
			case "big":
				return &Response{Value: make([]byte, MaxValueSize+1), TTL: time.Minute}
			case "status":
				return &Response{Status: 9}
			case "ttl":
				return &Response{Value: []byte("v"), TTL: MaxTTL + time.Hour}
			case "negative ttl":
				return &Response{Value: []byte("v"), TTL: -time.Hour}
			default:
				return &Response{Status: StatusError, Message: strings.Repeat("m", 2*MaxMessageSize)}
			}
		})
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("big")}); r.Status != StatusError || !strings.Contains(r.Message, "limit 65536") || r.Value != nil {
			t.Errorf("value over the limit: %v %q, %d bytes", r.Status, r.Message, len(r.Value))
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("status")}); r.Status != StatusError || !strings.Contains(r.Message, "unknown status 9") {
			t.Errorf("unknown status: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("ttl")}); r.Status != StatusOK || r.TTL != MaxTTL {
			t.Errorf("ttl over the limit: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("negative ttl")}); r.Status != StatusOK || r.TTL != 0 {
			t.Errorf("negative ttl: %+v", r)
		}
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("message")}); r.Status != StatusError || len(r.Message) != MaxMessageSize {
			t.Errorf("long message: %v, %d bytes", r.Status, len(r.Message))
		}
	}},
	{"slow handler: the call returns at its deadline", func(t *testing.T, e *confEnv) {
		release := make(chan struct{})
		defer close(release)
		handlerDeadline := make(chan time.Time, 1)
		e.h.set(func(ctx context.Context, req *Request) *Response {
			if req.Op == OpPing {
				return &Response{}
			}
			dl, _ := ctx.Deadline()
			handlerDeadline <- dl
			select { // ignores its deadline
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return &Response{}
		})
		e.mustCall(t, &Request{Op: OpPing}) // connected: the deadline is the call's alone
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		dl, _ := ctx.Deadline()
		start := time.Now()
		_, err := e.call(ctx, &Request{Op: OpGet, Key: []byte("k")})
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to a slow handler: %v, want deadline exceeded", err)
		}
		// The handler blocks for 10s: a call that waited for it would
		// take that long. 2s is slack for a loaded machine.
		if took > 2*time.Second {
			t.Fatalf("call returned after %v, its deadline was 50ms", took)
		}
		select {
		case hd := <-handlerDeadline:
			// The member rebuilds the deadline from the time left when the
			// frame was written, so it is later by the frame's transit:
			// 250ms of slack for a loaded machine; a deadline not passed on
			// would be zero or the 10s the handler blocks.
			if hd.IsZero() || hd.After(dl.Add(250*time.Millisecond)) {
				t.Fatalf("handler's deadline %v, caller's %v", hd, dl)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler never called")
		}
	}},
	{"expired context is not sent", func(t *testing.T, e *confEnv) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.call(ctx, &Request{Op: OpGet, Key: []byte("k")}); !errors.Is(err, context.Canceled) {
			t.Fatalf("call with a canceled context: %v", err)
		}
		if n := e.h.calls.Load(); n != 0 {
			t.Fatalf("handler called %d times", n)
		}
	}},
	{"caller owns the answer", func(t *testing.T, e *confEnv) {
		val := []byte("stored")
		e.h.set(func(ctx context.Context, req *Request) *Response { return &Response{Value: val, TTL: time.Minute} })
		r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("k")})
		r.Value[0] = 'X'
		if string(val) != "stored" {
			t.Fatal("the caller's answer aliases the member's memory")
		}
		req := &Request{Op: OpSet, Key: []byte("k2"), Value: []byte("mine"), TTL: time.Minute}
		e.h.over.Store(nil)
		e.mustCall(t, req)
		req.Value[0] = 'X'
		if r := e.mustCall(t, &Request{Op: OpGet, Key: []byte("k2")}); string(r.Value) != "mine" {
			t.Fatalf("the member kept the caller's memory: %q", r.Value)
		}
	}},
	{"closed caller", func(t *testing.T, e *confEnv) {
		e.mustCall(t, &Request{Op: OpPing})
		e.caller.Close()
		if _, err := e.call(ctxTimeout(t, 5*time.Second), &Request{Op: OpPing}); !errors.Is(err, ErrClosed) {
			t.Fatalf("call after Close: %v, want ErrClosed", err)
		}
	}},
}

// TestServeSideLimits: a QUIC member refuses, with StatusBadRequest naming
// the cause, every request that breaks a limit even from a caller that
// skips the checks before sending (hand-made frames). The in-memory
// network has no such caller: its Call is the only way in and checks
// first, as the table above shows.
func TestServeSideLimits(t *testing.T) {
	ca := transporttest.NewCA(t)
	m := startMember(t, ca, nil)
	_, str := rawStream(t, ca, m)
	for i, c := range tooLarge {
		if len(c.req.Key) > MaxKeySize {
			continue // a key length is one byte on the wire: it cannot be sent
		}
		id := uint64(100 + i)
		if _, err := str.Write(appendRequest(nil, id, 0, &c.req)); err != nil {
			t.Fatal(err)
		}
		var hdr [frameLenSize]byte
		body, err := readFrame(str, &hdr)
		if err != nil {
			t.Fatal(err)
		}
		f, err := decodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		if f.id != id || f.resp.Status != StatusBadRequest || !strings.Contains(f.resp.Message, c.want) {
			t.Errorf("%s: id %d %v %q, want bad request mentioning %q", c.name, f.id, f.resp.Status, f.resp.Message, c.want)
		}
	}
	if n := m.store.calls.Load(); n != 0 {
		t.Fatalf("handler saw %d requests that break a limit", n)
	}
}

// TestStuckHandlerHoldsUpNoOther: QUIC serves a stream's requests inline,
// on the goroutine that reads it; a handler that does not return hands the
// reading to another goroutine, so the requests behind it are answered.
func TestStuckHandlerHoldsUpNoOther(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b.store.setBlock(func(ctx context.Context, req *Request) {
		if string(req.Key) == "stuck" {
			entered <- struct{}{}
			<-release
		}
	})
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), &Request{Op: OpPing}); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	go func() {
		_, err := a.Call(ctxTimeout(t, 10*time.Second), b.Addr(), &Request{Op: OpGet, Key: []byte("stuck")})
		stuck <- err
	}()
	<-entered
	for i := range 20 {
		r, err := a.Call(ctxTimeout(t, 2*time.Second), b.Addr(), &Request{Op: OpGet, Key: []byte("other")})
		if err != nil || r.Status != StatusNotFound {
			t.Fatalf("call %d behind a stuck handler: %v %+v", i, err, r)
		}
	}
	close(release)
	if err := <-stuck; err != nil {
		t.Fatalf("the stuck call, released: %v", err)
	}
}
