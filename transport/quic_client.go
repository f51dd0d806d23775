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

// remoteConn is this member's link to one member it calls: the current
// connection, a dial in progress, and the backoff after failed dials.
type remoteConn struct {
	t    *QUIC
	addr string

	mu        sync.Mutex
	cur       *clientConn
	dialing   chan struct{} // closed when the dial in progress ends
	dialStart time.Time     // when that dial began
	suspect   bool          // a connection broke or a dial failed since the last good dial
	dialTook  time.Duration // how long the last good dial took
	down      bool          // the last dial failed: calls fail fast until retryAt
	lastErr   error
	retryAt   time.Time
	backoff   time.Duration
	closed    bool
}

// clientConn is one live connection to a member and its request stream.
type clientConn struct {
	p    *remoteConn
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
	p, err := t.remote(member)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		cc, err := p.conn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := cc.roundTrip(ctx, req)
		if err == nil || attempt > 0 || !cc.stale() || ctx.Err() != nil {
			return resp, err
		}
		// The member closed or reset the connection: it was stopping, or
		// it restarted and its new incarnation does not know the
		// connection. Once, on a fresh connection.
		t.log.Debug("connection to member went stale, retrying on a fresh one", "remote", member, "err", cc.deadErr)
	}
}

// roundTrip sends req on cc and waits for its response.
func (cc *clientConn) roundTrip(ctx context.Context, req *Request) (*Response, error) {
	t := cc.p.t
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
	_, err := cc.w.write(*bp, 1)
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

// stale reports whether cc died because the member closed it in order
// (it was stopping: code 0), cut it off as a slow reader (code 2), or
// reset it statelessly (it restarted and no longer knows the connection).
// A request that failed on a stale connection may be retried on a fresh
// one: every operation is safe to repeat (get, set, delete, put_many and
// ping are idempotent; a repeated take finds nothing, so single use holds).
func (cc *clientConn) stale() bool {
	if !cc.isDead.Load() {
		return false
	}
	var appErr *quic.ApplicationError
	if errors.As(cc.deadErr, &appErr) {
		return appErr.Remote && (appErr.ErrorCode == codeNoError || appErr.ErrorCode == codeSlowReader)
	}
	var reset *quic.StatelessResetError
	return errors.As(cc.deadErr, &reset)
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

// remote returns the link to member, creating it on first use.
func (t *QUIC) remote(member string) (*remoteConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	p := t.remotes[member]
	if p == nil {
		p = &remoteConn{t: t, addr: member}
		t.remotes[member] = p
	}
	return p, nil
}

// conn returns a live connection to the member, dialling one if there is
// none. A call waits for the dial up to its own deadline while the member
// has given no sign of trouble. Once a connection to it broke or a dial
// failed (the member may be gone, or restarting), a call waits only while
// the dial is younger than redialWait, long enough for a handshake with a
// member that is up, and then fails with ErrUnreachable while the dial
// goes on in the background; after a failed dial, calls fail at once
// until the backoff has elapsed, and the next call then dials afresh.
func (p *remoteConn) conn(ctx context.Context) (*clientConn, error) {
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
			p.dialing, p.dialStart = ch, time.Now()
			if !p.t.go_(func() { p.dial(ch) }) {
				p.dialing = nil
				p.mu.Unlock()
				return nil, ErrClosed
			}
		}
		ch := p.dialing
		var timer *time.Timer
		var limit <-chan time.Time
		if p.suspect {
			wait := time.Until(p.dialStart.Add(p.redialWait()))
			if wait <= 0 {
				err := p.downErr()
				p.mu.Unlock()
				return nil, err
			}
			timer = time.NewTimer(wait)
			limit = timer.C
		}
		p.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-limit:
			// The member has not answered the dial in time; the next
			// round of the loop fails the call.
		case <-ctx.Done():
			err = ctx.Err()
		case <-p.t.done:
			err = ErrClosed
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return nil, err
		}
	}
}

// redialWait is how long calls wait for a dial to a suspect member:
// RedialWait, or three times what the last good dial took if more (a slow
// link, or a loaded machine).
func (p *remoteConn) redialWait() time.Duration {
	return max(p.t.cfg.RedialWait, 3*p.dialTook)
}

func (p *remoteConn) downErr() error {
	if p.dialing != nil && !p.down {
		return fmt.Errorf("%w: %s: no new connection within %v, still dialling (last error: %v)", ErrUnreachable, p.addr, p.redialWait(), p.lastErr)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, p.addr, p.lastErr)
}

// dial connects to the member and publishes the result; ch is closed when
// done.
func (p *remoteConn) dial(ch chan struct{}) {
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
		// Debug: the member (peer package) logs the same event once, as
		// "member marked down", with what it decides; the transport's view
		// of one connection is detail.
		if !p.down && !p.closed {
			p.t.log.Debug("member unreachable", "remote", p.addr, "err", err, "retry_in", p.backoff)
		}
		p.down, p.suspect = true, true
		p.lastErr = err
		return
	}
	if p.closed {
		cc.close(ErrClosed)
		return
	}
	if p.down {
		p.t.log.Debug("member reachable again", "remote", p.addr) // the member logs "member answering again"
	}
	p.down, p.suspect, p.backoff, p.lastErr = false, false, 0, nil
	p.dialTook = time.Since(p.dialStart)
	p.cur = cc
}

// close ends the link; the transport is closing.
func (p *remoteConn) close() {
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
func (t *QUIC) dial(p *remoteConn) (*clientConn, error) {
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
	t.log.Debug("connected to member", "remote", p.addr)
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
	cc.p.t.malformedLog.log(cc.p.t.log, slog.LevelWarn, "malformed response from member, closing connection", "remote", cc.p.addr, "err", err)
	cc.p.t.metrics.malformed()
	cc.conn.CloseWithError(codeProtocolError, truncMessage(err.Error()))
}

// close marks the connection dead, wakes its waiting calls and closes it.
func (cc *clientConn) close(err error) {
	cc.once.Do(func() {
		if !errors.Is(err, ErrClosed) {
			// Before anyone can see the connection dead, so that a call
			// that finds it dead finds the member suspect.
			cc.p.lost(cc, err)
		}
		cc.deadErr = err
		cc.isDead.Store(true)
		close(cc.dead)
		cc.conn.CloseWithError(codeNoError, "")
		if !errors.Is(err, ErrClosed) {
			cc.p.t.log.Debug("connection to member lost", "remote", cc.p.addr, "err", err)
		}
	})
}

// lost forgets a connection that broke (the member closed it, was reset
// after a restart, or timed out). The member is now suspect: the next call
// dials afresh but waits at most RedialWait for it, so a restarted member
// is reached at once and a gone one costs calls little.
func (p *remoteConn) lost(cc *clientConn, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != cc || p.closed {
		return
	}
	p.cur = nil
	p.suspect, p.lastErr = true, err
}
