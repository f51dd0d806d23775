// Tests of the QUIC transport over real QUIC on loopback.

package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/quic-go/quic-go"

	"github.com/tlsring/tlsring/transport/transporttest"
)

func TestThreeMembersReadEachOthersWrites(t *testing.T) {
	ca := transporttest.NewCA(t)
	ms := []*member{startMember(t, ca, nil), startMember(t, ca, nil), startMember(t, ca, nil)}
	ctx := ctxTimeout(t, 10*time.Second)
	for i, m := range ms {
		for j, o := range ms {
			key := []byte(fmt.Sprintf("from-%d-on-%d", i, j))
			resp, err := m.Call(ctx, o.Addr(), &Request{Op: OpSet, Key: key, Value: []byte(m.Addr()), TTL: time.Minute})
			if err != nil || resp.Status != StatusOK {
				t.Fatalf("set %s: %v %+v", key, err, resp)
			}
		}
	}
	for i, m := range ms {
		for j, o := range ms {
			for k := range ms {
				key := []byte(fmt.Sprintf("from-%d-on-%d", k, j))
				resp, err := m.Call(ctx, o.Addr(), &Request{Op: OpGet, Key: key})
				if err != nil || resp.Status != StatusOK || string(resp.Value) != ms[k].Addr() || resp.TTL != time.Minute {
					t.Fatalf("member %d get %s from %d: %v %+v", i, key, j, err, resp)
				}
			}
		}
	}
}

func TestOperations(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	call := func(req *Request) *Response {
		t.Helper()
		resp, err := a.Call(ctx, b.Addr(), req)
		if err != nil {
			t.Fatalf("%v: %v", req.Op, err)
		}
		return resp
	}
	entries := []Entry{{Key: []byte("e1"), Value: []byte("v1"), TTL: time.Second}, {Key: []byte("e2"), Value: nil, TTL: time.Hour}}
	if r := call(&Request{Op: OpPutMany, Entries: entries}); r.Status != StatusOK {
		t.Fatalf("put_many: %+v", r)
	}
	if r := call(&Request{Op: OpTake, Key: []byte("e1")}); r.Status != StatusOK || string(r.Value) != "v1" {
		t.Fatalf("take: %+v", r)
	}
	if r := call(&Request{Op: OpGet, Key: []byte("e1")}); r.Status != StatusNotFound || r.Value != nil {
		t.Fatalf("get after take: %+v", r)
	}
	if r := call(&Request{Op: OpDelete, Key: []byte("e2")}); r.Status != StatusOK {
		t.Fatalf("delete: %+v", r)
	}
	if r := call(&Request{Op: OpGet, Key: []byte("e2")}); r.Status != StatusNotFound {
		t.Fatalf("get after delete: %+v", r)
	}
	if r := call(&Request{Op: OpPing}); r.Status != StatusOK {
		t.Fatalf("ping: %+v", r)
	}
	big := bytes.Repeat([]byte{7}, MaxValueSize)
	if r := call(&Request{Op: OpSet, Key: []byte("big"), Value: big, TTL: time.Minute}); r.Status != StatusOK {
		t.Fatalf("set max value: %+v", r)
	}
	if r := call(&Request{Op: OpGet, Key: []byte("big")}); !bytes.Equal(r.Value, big) {
		t.Fatalf("get max value: %d bytes", len(r.Value))
	}
	// Oversize requests are refused before they are sent.
	_, err := a.Call(ctx, b.Addr(), &Request{Op: OpSet, Key: []byte("k"), Value: make([]byte, MaxValueSize+1), TTL: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize value: %v", err)
	}
	_, err = a.Call(ctx, b.Addr(), &Request{Op: OpGet, Key: make([]byte, MaxKeySize+1)})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize key: %v", err)
	}
	// A handler that panics or returns nothing answers StatusError.
	b.store.setBlock(func(ctx context.Context, req *Request) {
		if string(req.Key) == "panic" {
			panic("boom")
		}
	})
	if r := call(&Request{Op: OpGet, Key: []byte("panic")}); r.Status != StatusError {
		t.Fatalf("panicking handler: %+v", r)
	}
	if r := call(&Request{Op: OpGet, Key: []byte("e1")}); r.Status != StatusNotFound {
		t.Fatalf("after panic: %+v", r)
	}
}

// foreignCert builds a TLS config that trusts ca (so it would accept the
// cluster's members) but presents a certificate of another CA.
func foreignTLS(t *testing.T, ca *transporttest.CA) *tls.Config {
	other := transporttest.NewCA(t)
	return ca.TLSFor(other.MemberCert(t, "127.0.0.1"))
}

func TestForeignClientIsRefused(t *testing.T) {
	ca := transporttest.NewCA(t)
	good := startMember(t, ca, nil)
	bad := startMember(t, ca, func(c *QUICConfig) { c.TLS = foreignTLS(t, ca) })
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := bad.Call(ctx, good.Addr(), &Request{Op: OpSet, Key: []byte("k"), Value: []byte("v"), TTL: time.Minute})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call with a foreign certificate: %v, want ErrUnreachable", err)
	}
	waitFor(t, 2*time.Second, "refusal logged", func() bool {
		return strings.Contains(good.logs.String(), "refused member connection")
	})
	if n := good.store.calls.Load(); n != 0 {
		t.Fatalf("handler called %d times for a refused member", n)
	}
	if !strings.Contains(good.logs.String(), "certificate signed by unknown authority") {
		t.Fatalf("refusal log lacks the reason:\n%s", good.logs)
	}
}

func TestClientWithoutCertificateIsRefused(t *testing.T) {
	ca := transporttest.NewCA(t)
	good := startMember(t, ca, nil)
	ctx := ctxTimeout(t, 5*time.Second)
	conn, err := quic.DialAddr(ctx, good.Addr(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", NextProtos: []string{ALPN}}, nil)
	if err == nil {
		defer conn.CloseWithError(0, "")
		str, err := conn.OpenStreamSync(ctx)
		if err == nil {
			str.Write(appendRequest(nil, 1, 0, &Request{Op: OpSet, Key: []byte("k"), Value: []byte("v"), TTL: time.Minute}))
			_, err = str.Read(make([]byte, 1))
		}
		if err == nil {
			t.Fatal("a client without a certificate read a response")
		}
	}
	waitFor(t, 2*time.Second, "refusal logged", func() bool {
		return strings.Contains(good.logs.String(), "no client certificate")
	})
	if n := good.store.calls.Load(); n != 0 {
		t.Fatalf("handler called %d times for a client without certificate", n)
	}
}

func TestForeignServerIsRefused(t *testing.T) {
	ca := transporttest.NewCA(t)
	good := startMember(t, ca, nil)
	bad := startMember(t, ca, func(c *QUICConfig) { c.TLS = foreignTLS(t, ca) })
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := good.Call(ctx, bad.Addr(), &Request{Op: OpGet, Key: []byte("k")})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("call to a member with a foreign certificate: %v, want ErrUnreachable about its certificate", err)
	}
	if n := bad.store.calls.Load(); n != 0 {
		t.Fatalf("foreign member's handler called %d times", n)
	}
}

// TestServerNameIsVerified: a member whose certificate names another host
// is refused even though the cluster CA signed it.
func TestServerNameIsVerified(t *testing.T) {
	ca := transporttest.NewCA(t)
	good := startMember(t, ca, nil)
	wrong := startMember(t, ca, func(c *QUICConfig) { c.TLS = ca.MemberTLS(t, "10.9.9.9", "elsewhere.example") })
	_, err := good.Call(ctxTimeout(t, 5*time.Second), wrong.Addr(), &Request{Op: OpPing})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("call to a member whose certificate names another host: %v", err)
	}
}

// TestDeadlineAbandonsRequest: a call whose member does not answer returns
// at its own deadline, the member's handler sees the deadline too, and the
// abandoned call leaves nothing behind. The handler never answers before
// the deadline, so a call can only return through its own deadline. What
// is measured is the transport's delay, not the scheduler's: each call is
// compared with a bare wait for the same deadline on another goroutine in
// the same moment, and may lag it by 5ms at the median and 50ms at worst
// (the slack of tlsglue's deadline tests, for -race on shared cores).
func TestDeadlineAbandonsRequest(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	released := make(chan struct{})
	b.store.setBlock(func(ctx context.Context, req *Request) {
		if string(req.Key) == "slow" {
			<-ctx.Done()
			released <- struct{}{}
		}
	})
	// Warm the connection up so the deadline measures the call alone.
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), &Request{Op: OpPing}); err != nil {
		t.Fatal(err)
	}
	const deadline = 30 * time.Millisecond
	const rounds = 7
	var calls, bare []time.Duration
	for range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		dl, _ := ctx.Deadline()
		bareCtx, bareCancel := context.WithDeadline(context.Background(), dl)
		bareDone := make(chan time.Duration, 1)
		go func() { <-bareCtx.Done(); bareDone <- time.Since(dl) }()
		_, err := a.Call(ctx, b.Addr(), &Request{Op: OpGet, Key: []byte("slow")})
		calls = append(calls, time.Since(dl))
		bare = append(bare, <-bareDone)
		cancel()
		bareCancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call past its deadline: %v", err)
		}
		select { // the member's handler saw the deadline too
		case <-released:
		case <-time.After(5 * time.Second):
			t.Fatal("handler never saw its deadline pass")
		}
	}
	slices.Sort(calls)
	slices.Sort(bare)
	t.Logf("calls returned after the deadline by %v; bare waits by %v", calls, bare)
	if calls[0] < 0 {
		t.Errorf("a call returned %v before its deadline", -calls[0])
	}
	if med, base := calls[rounds/2], bare[rounds/2]; med > base+5*time.Millisecond {
		t.Errorf("median call returned %v after the deadline, bare wait %v: want at most 5ms more", med, base)
	}
	if worst, base := calls[rounds-1], bare[rounds-1]; worst > base+50*time.Millisecond {
		t.Errorf("worst call returned %v after the deadline, bare wait %v: want at most 50ms more", worst, base)
	}
	// Nothing left behind: no pending call, and the connection still works.
	cc := liveConn(t, a, b.Addr())
	waitFor(t, 2*time.Second, "late replies to arrive", func() bool { return pendingCalls(cc) == 0 })
	if r, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), &Request{Op: OpGet, Key: []byte("x")}); err != nil || r.Status != StatusNotFound {
		t.Fatalf("call after timeouts: %v %+v", err, r)
	}
	if liveConn(t, a, b.Addr()) != cc {
		t.Fatal("connection was replaced after timeouts")
	}
}

func liveConn(t *testing.T, m *member, addr string) *clientConn {
	t.Helper()
	m.mu.Lock()
	p := m.remotes[addr]
	m.mu.Unlock()
	if p == nil {
		t.Fatalf("no link to %s", addr)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.isDead.Load() {
		t.Fatalf("no live connection to %s", addr)
	}
	return p.cur
}

func pendingCalls(cc *clientConn) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.pending)
}

func TestManyRequestsSomeTimingOut(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	b.store.setBlock(func(ctx context.Context, req *Request) {
		if bytes.HasPrefix(req.Key, []byte("slow")) {
			<-ctx.Done()
		}
	})
	n := 10000
	if testing.Short() {
		n = 2000
	}
	const workers = 32
	var failures atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				key := []byte(fmt.Sprintf("k%d", i))
				if i%100 == 0 {
					key = []byte(fmt.Sprintf("slow%d", i))
				}
				d := 5 * time.Second
				if i%100 == 0 {
					d = 10 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), d)
				var err error
				if i%2 == 0 {
					_, err = a.Call(ctx, b.Addr(), &Request{Op: OpSet, Key: key, Value: key, TTL: time.Minute})
				} else {
					_, err = a.Call(ctx, b.Addr(), &Request{Op: OpGet, Key: key})
				}
				cancel()
				if (i%100 == 0) != errors.Is(err, context.DeadlineExceeded) || (i%100 != 0 && err != nil) {
					failures.Add(1)
					t.Errorf("request %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}
	cc := liveConn(t, a, b.Addr())
	waitFor(t, 2*time.Second, "pending calls to drain", func() bool { return pendingCalls(cc) == 0 })
	r, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), &Request{Op: OpGet, Key: []byte("k2")})
	if err != nil || string(r.Value) != "k2" {
		t.Fatalf("after the run: %v %+v", err, r)
	}
	if liveConn(t, a, b.Addr()) != cc {
		t.Fatal("connection was replaced during the run")
	}
}

func TestDeadAddressFailsFast(t *testing.T) {
	ca := transporttest.NewCA(t)
	a := startMember(t, ca, func(c *QUICConfig) { c.DialTimeout = 100 * time.Millisecond; c.MinBackoff = time.Hour })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	start := time.Now()
	_, err = a.Call(ctxTimeout(t, 5*time.Second), dead, &Request{Op: OpPing})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("first call to a dead address: %v", err)
	}
	t.Logf("first call failed after %v", time.Since(start))
	for i := range 10 {
		start = time.Now()
		_, err = a.Call(ctxTimeout(t, 5*time.Second), dead, &Request{Op: OpPing})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("call %d to a dead address: %v", i, err)
		}
		if d := time.Since(start); d > 5*time.Millisecond {
			t.Fatalf("call %d to a dead address took %v, want fast failure", i, d)
		}
	}
	// A call with a short deadline during the first dial returns at its
	// deadline, not the dial's.
	b := startMember(t, ca, func(c *QUICConfig) { c.DialTimeout = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = b.Call(ctx, dead, &Request{Op: OpPing})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("short call during a dial: %v after %v", err, time.Since(start))
	}
}

func TestCloseFailsCallsInFlight(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	entered := make(chan struct{}, 1)
	b.store.setBlock(func(ctx context.Context, req *Request) {
		entered <- struct{}{}
		<-ctx.Done()
	})
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), b.Addr(), &Request{Op: OpGet, Key: []byte("k")})
		errc <- err
	}()
	<-entered
	a.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("call in flight at Close: %v, want ErrClosed", err)
	}
	if _, err := a.Call(context.Background(), b.Addr(), &Request{Op: OpPing}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

// rawStream dials m as a well-certified member would, without the
// transport's client, to send hand-made frames.
func rawStream(t *testing.T, ca *transporttest.CA, m *member) (*quic.Conn, *quic.Stream) {
	t.Helper()
	tc := ca.MemberTLS(t, "127.0.0.1")
	tc.NextProtos, tc.ServerName = []string{ALPN}, "127.0.0.1"
	ctx := ctxTimeout(t, 5*time.Second)
	conn, err := quic.DialAddr(ctx, m.Addr(), tc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	str.SetDeadline(time.Now().Add(5 * time.Second))
	return conn, str
}

func TestBadFramesGetClearErrors(t *testing.T) {
	ca := transporttest.NewCA(t)
	m := startMember(t, ca, nil)
	_, str := rawStream(t, ca, m)
	br := bufio.NewReader(str)
	var hdr [frameLenSize]byte
	send := func(frame []byte) responseFrame {
		t.Helper()
		if _, err := str.Write(frame); err != nil {
			t.Fatal(err)
		}
		body, err := readFrame(br, &hdr)
		if err != nil {
			t.Fatal(err)
		}
		f, err := decodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := appendRequest(nil, 7, 0, &Request{Op: OpGet, Key: []byte("k")})
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"unknown version", func() []byte { b := bytes.Clone(good); b[4] = 9; return b }(), "unsupported wire version 9"},
		{"unknown op", func() []byte { b := bytes.Clone(good); b[13] = 42; return b }(), "unknown operation 42"},
		{"truncated body", func() []byte {
			b := bytes.Clone(good[:len(good)-3])
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}(), "frame ends inside"},
		{"trailing bytes", func() []byte {
			b := append(bytes.Clone(good), 1, 2)
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return b
		}(), "after the end"},
		{"empty key", appendRequest(nil, 7, 0, &Request{Op: OpGet}), "empty key"},
		{"set without ttl", appendRequest(nil, 7, 0, &Request{Op: OpSet, Key: []byte("k")}), "ttl"},
		{"oversize value length", func() []byte {
			b := appendRequest(nil, 7, 0, &Request{Op: OpSet, Key: []byte("k"), TTL: time.Second})
			binary.BigEndian.PutUint32(b[4+requestHeaderSize+8+1+1:], MaxValueSize+1)
			return b
		}(), "limit"},
		{"too many entries", func() []byte {
			b := appendRequest(nil, 7, 0, &Request{Op: OpPutMany})
			binary.BigEndian.PutUint16(b[len(b)-2:], MaxBatchEntries+1)
			return b
		}(), "entries"},
	}
	for _, c := range cases {
		f := send(c.frame)
		if f.id != 7 || f.resp.Status != StatusBadRequest || !strings.Contains(f.resp.Message, c.want) {
			t.Errorf("%s: got id %d %v %q, want bad request mentioning %q", c.name, f.id, f.resp.Status, f.resp.Message, c.want)
		}
	}
	if n := m.store.calls.Load(); n != 0 {
		t.Fatalf("handler saw %d malformed requests", n)
	}
	// The stream is still usable.
	if f := send(good); f.resp.Status != StatusNotFound {
		t.Fatalf("good frame after bad ones: %+v", f)
	}
	// A length prefix out of bounds breaks the framing: the member closes
	// the connection with a protocol error and logs why.
	if _, err := str.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	_, err := br.ReadByte()
	var appErr *quic.ApplicationError
	if !errors.As(err, &appErr) || appErr.ErrorCode != codeProtocolError {
		t.Fatalf("after an oversize frame: %v, want application error %d", err, codeProtocolError)
	}
	waitFor(t, 2*time.Second, "malformed frame logged", func() bool {
		return strings.Contains(m.logs.String(), "malformed frame from member")
	})
	// The member serves others as before.
	other := startMember(t, ca, nil)
	if _, err := other.Call(ctxTimeout(t, 5*time.Second), m.Addr(), &Request{Op: OpPing}); err != nil {
		t.Fatal(err)
	}
}

func TestListenQUICErrors(t *testing.T) {
	ca := transporttest.NewCA(t)
	h := newMapStore()
	if tr, err := ListenQUIC(QUICConfig{Addr: "127.0.0.1:0"}, h); err == nil || tr != nil {
		t.Fatalf("no TLS: %v, %v", tr, err)
	}
	noCA := ca.MemberTLS(t)
	noCA.ClientCAs = nil
	if _, err := ListenQUIC(QUICConfig{Addr: "127.0.0.1:0", TLS: noCA}, h); err == nil {
		t.Fatal("TLS without ClientCAs accepted")
	}
	if _, err := ListenQUIC(QUICConfig{Addr: "127.0.0.1:0", TLS: ca.MemberTLS(t), StallTimeout: -time.Second}, h); err == nil ||
		err.Error() != "transport: QUICConfig.StallTimeout is negative; use 0 for the default" {
		t.Fatalf("negative StallTimeout: %v", err)
	}
	m := startMember(t, ca, nil)
	if _, err := ListenQUIC(QUICConfig{Addr: m.Addr(), TLS: ca.MemberTLS(t)}, h); err == nil {
		t.Fatal("second listener on a busy address")
	}
	tr, err := ListenQUIC(QUICConfig{Addr: "127.0.0.1:0", TLS: ca.MemberTLS(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if q, ok := tr.(*QUIC); !ok || strings.HasSuffix(q.Addr(), ":0") {
		t.Fatalf("ListenQUIC returned %T with address %v", tr, tr)
	}
	tr.Close()
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	ca := transporttest.NewCA(t)
	reg := prometheus.NewRegistry()
	metrics := NewMetrics(nil)
	reg.MustRegister(metrics)
	a := startMember(t, ca, func(c *QUICConfig) { c.Metrics = metrics })
	b := startMember(t, ca, func(c *QUICConfig) { c.Metrics = metrics }) // shared, no collision
	ctx := ctxTimeout(t, 5*time.Second)
	for range 3 {
		if _, err := a.Call(ctx, b.Addr(), &Request{Op: OpGet, Key: []byte("missing")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counterValue(metrics.calls[OpGet][resNotFound]); got != 3 {
		t.Fatalf("calls{get,not_found} = %v, want 3", got)
	}
	if got := counterValue(metrics.servedC[OpGet][StatusNotFound]); got != 3 {
		t.Fatalf("served{get,not_found} = %v, want 3", got)
	}
	if _, err := a.Call(ctx, b.Addr(), &Request{Op: OpSync, Key: []byte(a.Addr())}); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(metrics.calls[OpSync][resOK]); got != 1 {
		t.Fatalf("calls{sync,ok} = %v, want 1", got)
	}
	if got := counterValue(metrics.dials[0]); got != 1 {
		t.Fatalf("dials{ok} = %v, want 1", got)
	}
	bad := startMember(t, ca, func(c *QUICConfig) { c.TLS = foreignTLS(t, ca) })
	bad.Call(ctx, b.Addr(), &Request{Op: OpPing})
	waitFor(t, 2*time.Second, "refusal counted", func() bool { return counterValue(metrics.refusedC) == 1 })
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// TestFlowControlBackpressure pushes more than the stream's flow-control
// window at once, so writes take the writer goroutine's blocking path,
// and checks every value arrives intact.
func TestFlowControlBackpressure(t *testing.T) {
	ca := transporttest.NewCA(t)
	a, b := startMember(t, ca, nil), startMember(t, ca, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	slow := slowWrites.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				key := []byte(fmt.Sprintf("big-%d-%d", g, i))
				val := bytes.Repeat(key[:1+len(key)%5], MaxValueSize/(1+len(key)%5))
				if _, err := a.Call(ctx, b.Addr(), &Request{Op: OpSet, Key: key, Value: val, TTL: time.Minute}); err != nil {
					errs <- err
					return
				}
				r, err := a.Call(ctx, b.Addr(), &Request{Op: OpGet, Key: key})
				if err != nil || !bytes.Equal(r.Value, val) {
					errs <- fmt.Errorf("get %s: %v", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d frames waited for flow control", slowWrites.Load()-slow)
}
