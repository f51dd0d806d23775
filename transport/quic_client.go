// The calling side of the QUIC transport: one connection and stream per
// member called, dialled on first use and redialled with backoff, a
// pending-call table keyed by request ID, and Call itself.

package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// peerConn is this member's link to one member it calls: the current
// connection, a dial in progress, and the backoff after failed dials.
type peerConn struct {
	t    *QUIC
	addr string

	mu      sync.Mutex
	cur     *clientConn
	dialing chan struct{} // closed when the dial in progress ends
	down    bool          // the last dial failed: calls fail fast
	lastErr error
	retryAt time.Time
	backoff time.Duration
	closed  bool
}

// clientConn is one live connection to a member and its request stream.
type clientConn struct {
	p    *peerConn
	conn *quic.Conn
	str  *quic.Stream
	br   *bufio.Reader
	w    frameWriter

	nextID atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*call

	dead    chan struct{} // closed when the connection broke
	isDead  atomic.Bool
	deadErr error // set before dead is closed
	once    sync.Once
}

// call is one request waiting for its response. Calls are pooled: ch is
// empty whenever a call is in the pool.
type call struct {
	ch chan *Response
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan *Response, 1)} }}

// Call sends req to member and waits for its response; see Transport.
func (t *QUIC) Call(ctx context.Context, member string, req *Request) (*Response, error) {
	start := time.Now()
	resp, err := t.call(ctx, member, req)
	t.metrics.call(req.Op, resp, err, start)
	return resp, err
}

func (t *QUIC) call(ctx context.Context, member string, req *Request) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := t.peer(member)
	if err != nil {
		return nil, err
	}
	cc, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}

	c := callPool.Get().(*call)
	id := cc.nextID.Add(1)
	var dl uint32
	if d, ok := ctx.Deadline(); ok {
		dl = deadlineMicros(time.Until(d))
	}
	cc.mu.Lock()
	cc.pending[id] = c
	cc.mu.Unlock()
	if cc.isDead.Load() {
		return nil, cc.abandon(id, c, cc.unreachable())
	}
	bp := getBuf(requestSize(req))
	*bp = appendRequest(*bp, id, dl, req)
	_, err = cc.w.write(*bp)
	putBuf(bp)
	if err != nil {
		return nil, cc.abandon(id, c, cc.unreachable())
	}

	select {
	case resp := <-c.ch:
		callPool.Put(c)
		return resp, nil
	case <-ctx.Done():
		return nil, cc.abandon(id, c, ctx.Err())
	case <-cc.dead:
		return nil, cc.abandon(id, c, cc.unreachable())
	case <-t.done:
		return nil, cc.abandon(id, c, ErrClosed)
	}
}

// abandon forgets call id, so a late reply is discarded, and returns err.
func (cc *clientConn) abandon(id uint64, c *call, err error) error {
	cc.mu.Lock()
	_, mine := cc.pending[id]
	delete(cc.pending, id)
	cc.mu.Unlock()
	if !mine {
		// The reader took the call and is about to hand it its response
		// (a non-blocking send on a buffered channel): drain it so the
		// call goes back to the pool empty.
		<-c.ch
	}
	callPool.Put(c)
	return err
}

func (cc *clientConn) unreachable() error {
	if errors.Is(cc.deadErr, ErrClosed) {
		return ErrClosed
	}
	select {
	case <-cc.p.t.done:
		return ErrClosed
	default:
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, cc.p.addr, cc.deadErr)
}

// peer returns the link to member, creating it on first use.
func (t *QUIC) peer(member string) (*peerConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	p := t.peers[member]
	if p == nil {
		p = &peerConn{t: t, addr: member}
		t.peers[member] = p
	}
	return p, nil
}

// conn returns a live connection to the member. If there is none it
// starts a dial; a call waits for that dial (up to its own deadline)
// unless the member is presumed down, that is, the last dial failed: then
// calls fail at once with ErrUnreachable, and the member is redialled in
// the background once the backoff has elapsed.
func (p *peerConn) conn(ctx context.Context) (*clientConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		if cc := p.cur; cc != nil && !cc.isDead.Load() {
			p.mu.Unlock()
			return cc, nil
		}
		if p.dialing == nil {
			if p.down && time.Now().Before(p.retryAt) {
				err := p.downErr()
				p.mu.Unlock()
				return nil, err
			}
			ch := make(chan struct{})
			p.dialing = ch
			if !p.t.go_(func() { p.dial(ch) }) {
				p.dialing = nil
				p.mu.Unlock()
				return nil, ErrClosed
			}
		}
		if p.down {
			err := p.downErr()
			p.mu.Unlock()
			return nil, err
		}
		ch := p.dialing
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.t.done:
			return nil, ErrClosed
		}
	}
}

func (p *peerConn) downErr() error {
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, p.addr, p.lastErr)
}

// dial connects to the member and publishes the result; ch is closed when
// done.
func (p *peerConn) dial(ch chan struct{}) {
	cc, err := p.t.dial(p)
	p.t.metrics.dial(err)
	p.mu.Lock()
	defer p.mu.Unlock()
	defer close(ch)
	p.dialing = nil
	if err != nil {
		if p.backoff == 0 {
			p.backoff = p.t.cfg.MinBackoff
		} else {
			p.backoff = min(2*p.backoff, p.t.cfg.MaxBackoff)
		}
		p.retryAt = time.Now().Add(p.backoff)
		if !p.down && !p.closed {
			p.t.log.Warn("member unreachable", "peer", p.addr, "err", err, "retry_in", p.backoff)
		}
		p.down = true
		p.lastErr = err
		return
	}
	if p.closed {
		cc.close(ErrClosed)
		return
	}
	if p.down {
		p.t.log.Info("member reachable again", "peer", p.addr)
	}
	p.down, p.backoff, p.lastErr = false, 0, nil
	p.cur = cc
}

// close ends the link; the transport is closing.
func (p *peerConn) close() {
	p.mu.Lock()
	p.closed = true
	cc := p.cur
	p.mu.Unlock()
	if cc != nil {
		cc.close(ErrClosed)
	}
}

// dial opens a connection and its stream to p's member and checks, with a
// ping the transport answers itself, that the member accepted us.
func (t *QUIC) dial(p *peerConn) (*clientConn, error) {
	host, _, err := net.SplitHostPort(p.addr)
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", p.addr)
	if err != nil {
		return nil, err
	}
	tc := t.tlsConf.Clone()
	if host == "" {
		host = "localhost"
	}
	tc.ServerName = host
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	conn, err := t.tr.Dial(ctx, ua, tc, t.qconf)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*clientConn, error) {
		conn.CloseWithError(codeNoError, "dial failed")
		return nil, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return fail(err)
	}
	deadline, _ := ctx.Deadline()
	str.SetDeadline(deadline)
	if _, err := str.Write(appendRequest(nil, pingID, deadlineMicros(time.Until(deadline)), &Request{Op: OpPing})); err != nil {
		return fail(err)
	}
	cc := &clientConn{
		p:       p,
		conn:    conn,
		str:     str,
		br:      bufio.NewReaderSize(str, 16<<10),
		pending: make(map[uint64]*call),
		dead:    make(chan struct{}),
	}
	var hdr [frameLenSize]byte
	body, err := readFrame(cc.br, &hdr)
	if err != nil {
		return fail(err)
	}
	f, err := decodeResponse(body)
	if err != nil {
		return fail(err)
	}
	if f.id != pingID || f.resp.Status != StatusOK {
		return fail(fmt.Errorf("transport: unexpected answer to the dial ping: id %d status %v %q", f.id, f.resp.Status, f.resp.Message))
	}
	str.SetDeadline(time.Time{})
	cc.w = frameWriter{str: str, spawn: t.go_, fail: func(err error) { cc.close(err) }}
	if !t.go_(cc.readLoop) {
		return fail(ErrClosed)
	}
	t.log.Debug("connected to member", "peer", p.addr)
	return cc, nil
}

// readLoop hands each response to the call waiting for it, and discards
// late ones whose call gave up.
func (cc *clientConn) readLoop() {
	var hdr [frameLenSize]byte
	for {
		body, err := readFrame(cc.br, &hdr)
		if err != nil {
			if errors.Is(err, errFrameSize) {
				cc.protocolError(err)
			}
			cc.close(err)
			return
		}
		f, err := decodeResponse(body)
		if err != nil {
			cc.protocolError(err)
			cc.close(err)
			return
		}
		cc.mu.Lock()
		c := cc.pending[f.id]
		delete(cc.pending, f.id)
		cc.mu.Unlock()
		if c == nil {
			cc.p.t.metrics.late()
			continue
		}
		resp := new(Response)
		*resp = f.resp
		c.ch <- resp
	}
}

func (cc *clientConn) protocolError(err error) {
	cc.p.t.malformedLog.log(cc.p.t.log, slog.LevelWarn, "malformed response from member, closing connection", "peer", cc.p.addr, "err", err)
	cc.p.t.metrics.malformed()
	cc.conn.CloseWithError(codeProtocolError, truncMessage(err.Error()))
}

// close marks the connection dead, wakes its waiting calls and closes it.
func (cc *clientConn) close(err error) {
	cc.once.Do(func() {
		if !errors.Is(err, ErrClosed) {
			// Before anyone can see the connection dead, so that no call
			// finds it dead without the member presumed down.
			cc.p.lost(cc, err)
		}
		cc.deadErr = err
		cc.isDead.Store(true)
		close(cc.dead)
		cc.conn.CloseWithError(codeNoError, "")
		if !errors.Is(err, ErrClosed) {
			cc.p.t.log.Debug("connection to member lost", "peer", cc.p.addr, "err", err)
		}
	})
}

// lost presumes the member down once its connection broke (it closed, was
// reset after a restart, or timed out): calls fail fast with
// ErrUnreachable instead of each waiting for a redial, and the next call
// starts one in the background.
func (p *peerConn) lost(cc *clientConn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != cc || p.closed {
		return
	}
	p.cur = nil
	p.down, p.lastErr = true, err
	p.backoff = p.t.cfg.MinBackoff
	p.retryAt = time.Now()
}
