// The serving side of the QUIC transport: accepting member connections and
// their streams, reading request frames and answering them concurrently
// with the Handler.

package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

func (t *QUIC) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept(t.ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			conn.CloseWithError(codeNoError, "member closing")
			return
		}
		t.inbound[conn] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		t.metrics.accepted()
		go t.serveConn(conn)
	}
}

// peerName names the calling member for logs: its certificate's common
// name (or first SAN) and its address.
func peerName(conn *quic.Conn) string {
	name := ""
	if certs := conn.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		c := certs[0]
		switch {
		case c.Subject.CommonName != "":
			name = c.Subject.CommonName
		case len(c.DNSNames) > 0:
			name = c.DNSNames[0]
		case len(c.IPAddresses) > 0:
			name = c.IPAddresses[0].String()
		}
	}
	return fmt.Sprintf("%s (%s)", conn.RemoteAddr(), name)
}

func (t *QUIC) serveConn(conn *quic.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, conn)
		t.mu.Unlock()
	}()
	c := &inConn{
		t:           t,
		conn:        conn,
		remote:      peerName(conn),
		maxRequests: t.cfg.MaxConcurrentRequests,
		maxHeld:     t.cfg.MaxConnBytes,
	}
	t.log.Debug("member connected", "remote", c.remote)
	for {
		str, err := conn.AcceptStream(t.ctx)
		if err != nil {
			t.log.Debug("member disconnected", "remote", c.remote, "err", err)
			return
		}
		s := &serverStream{
			t:   t,
			c:   c,
			br:  bufio.NewReaderSize(str, 16<<10),
			out: answers{buf: getBuf(flushBytes)},
		}
		s.w = frameWriter{
			str:     str,
			spawn:   t.go_,
			fail:    c.writeFailed,
			stall:   t.cfg.StallTimeout,
			queued:  c.queue,
			drained: c.drained,
		}
		s.watchdog = time.AfterFunc(time.Hour, s.stalled)
		s.watchdog.Stop()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			s.lead()
		}()
	}
}

// Inline serving: how long a handler may run on the reading goroutine
// before another takes over the reading, and how many answers, or bytes
// of them, are written to QUIC at once.
const (
	inlineFor    = time.Millisecond
	flushAnswers = 32
	flushBytes   = 16 << 10
	detachedMark = ^uint64(0)
)

// serverStream serves one caller's request stream.
//
// The goroutine that reads the stream (the leader) serves each request
// itself, inline, and reads the next: a request costs no hand-off to
// another goroutine. Answers to requests that arrived together leave
// together: while a whole further request is already buffered the leader
// keeps its answers (up to flushAnswers, or flushBytes), and hands them to
// QUIC in one write before it would wait for more, so QUIC packs them
// into as few packets as fit and wakes its send loop once.
//
// A handler that runs longer than inlineFor would hold up the requests
// behind it: the watchdog then starts a new leader, and the old one
// answers its own request and ends. The connection's budget (inConn)
// bounds the requests outstanding, and so these goroutines.
type serverStream struct {
	t   *QUIC
	c   *inConn
	br  *bufio.Reader // the leader's
	hdr [frameLenSize]byte
	w   frameWriter

	out      answers       // the leader's answers not yet given to QUIC
	seq      uint64        // the leader's count of requests served inline
	serving  atomic.Uint64 // seq of the request being served inline; 0 between; detachedMark once the watchdog took over
	armed    atomic.Uint64 // seq the watchdog was armed for
	watchdog *time.Timer
}

// answers is a leader's batch of encoded answers not yet given to QUIC.
type answers struct {
	buf  *[]byte
	n    int // requests they answer
	held int // bytes those requests hold in the connection's budget
}

// lead is the leader's loop, on a goroutine the transport waits for. The
// answers kept (s.out) are the current leader's: a leader the watchdog
// replaced leaves them to its successor.
func (s *serverStream) lead() {
	for {
		if s.out.n > 0 && (!s.frameBuffered() || !s.c.room()) {
			s.flush(&s.out)
		}
		if !s.c.admit() {
			s.end()
			return
		}
		body, err := readFrame(s.br, &s.hdr)
		if err != nil {
			s.end()
			s.readFailed(err)
			return
		}
		f, derr := decodeRequest(body)
		if f.deadline > 0 {
			f.expires = time.Now().Add(time.Duration(f.deadline) * time.Microsecond)
		}
		f.held = reserve(f.req.Op, len(body))
		s.c.begin(f.held)

		s.seq++
		seq := s.seq
		s.armed.Store(seq)
		s.serving.Store(seq)
		s.watchdog.Reset(inlineFor)
		resp := s.answer(&f, derr)
		if !s.serving.CompareAndSwap(seq, 0) {
			// The watchdog made another goroutine the leader while
			// the handler ran: answer on our own, and end.
			if resp == nil {
				s.c.end(f.held, 1, false)
				return
			}
			one := answers{buf: getBuf(responseSize(resp))}
			s.add(&one, &f, resp)
			s.flush(&one)
			putBuf(one.buf)
			return
		}
		s.watchdog.Stop()
		if resp == nil {
			s.c.end(f.held, 1, false) // the caller's deadline passed: it has given up
			continue
		}
		s.add(&s.out, &f, resp)
		if s.out.n >= flushAnswers || len(*s.out.buf) >= flushBytes {
			s.flush(&s.out)
		}
	}
}

// end gives the last kept answers to QUIC as the stream ends.
func (s *serverStream) end() {
	s.flush(&s.out)
	putBuf(s.out.buf)
	s.out.buf = nil
}

// stalled is the watchdog: the leader has been in one handler for
// inlineFor. It starts a new leader, unless the handler has returned.
func (s *serverStream) stalled() {
	seq := s.armed.Load()
	if seq == 0 || !s.serving.CompareAndSwap(seq, detachedMark) {
		return
	}
	s.t.go_(s.lead) // nothing to do if the transport is closing
}

// frameBuffered reports whether a whole request frame is already in the
// read buffer, so reading it will not wait.
func (s *serverStream) frameBuffered() bool {
	n := s.br.Buffered()
	if n < frameLenSize {
		return false
	}
	b, _ := s.br.Peek(frameLenSize)
	return n-frameLenSize >= int(binary.BigEndian.Uint32(b))
}

// add encodes resp, the answer to f, into out.
func (s *serverStream) add(out *answers, f *requestFrame, resp *Response) {
	s.t.metrics.served(f.req.Op, resp.Status)
	*out.buf = appendResponse(*out.buf, f.id, resp)
	out.n++
	out.held += f.held
}

// flush gives out's answers to QUIC.
func (s *serverStream) flush(out *answers) {
	if out.n == 0 {
		return
	}
	queued, _ := s.w.write(*out.buf, out.n) // a failed write means the connection is gone
	s.c.end(out.held, out.n, queued)
	*out.buf = (*out.buf)[:0]
	out.n, out.held = 0, 0
}

func (s *serverStream) readFailed(err error) {
	switch {
	case errors.Is(err, errFrameSize), errors.Is(err, io.ErrUnexpectedEOF):
		s.t.malformedLog.log(s.t.log, slog.LevelWarn, "malformed frame from member, closing connection", "remote", s.c.remote, "err", err)
		s.t.metrics.malformed()
		s.c.conn.CloseWithError(codeProtocolError, truncMessage(err.Error()))
	case errors.Is(err, io.EOF):
		// The caller closed its side of the stream: nothing more to read.
	default:
		// The connection or stream is gone; serveConn logs it.
	}
}

var pingOK = &Response{Status: StatusOK}

// answer answers one request frame; nil means the caller's deadline
// passed and it gets no answer.
func (s *serverStream) answer(f *requestFrame, derr error) *Response {
	switch {
	case derr != nil:
		// readFrame guarantees the version and ID are there, so every
		// decoding error can be answered.
		s.t.log.Debug("bad request from member", "remote", s.c.remote, "err", derr)
		return &Response{Status: StatusBadRequest, Message: derr.Error()}
	case f.id == pingID && f.req.Op == OpPing:
		return pingOK // the dial-time check; the handler never sees it
	}
	if err := f.req.Validate(); err != nil {
		return &Response{Status: StatusBadRequest, Message: err.Error()}
	}
	return s.t.handle(f)
}

// handle runs the handler under the caller's deadline, guarded and
// checked (serve.go). It returns nil, skipping the work or the answer,
// once the deadline has passed: the caller gave up, its reply would be
// discarded.
func (t *QUIC) handle(f *requestFrame) *Response {
	ctx := t.ctx
	if f.deadline > 0 {
		if time.Now().After(f.expires) {
			return nil // waited to be served past the deadline
		}
		dc := &deadlineCtx{parent: t.ctx, deadline: f.expires}
		defer dc.release()
		ctx = dc
	}
	resp := serveGuarded(ctx, t.h, &f.req, t)
	if f.deadline > 0 && time.Now().After(f.expires) {
		return nil
	}
	return resp
}

// handlerPanicked logs (sampled) and counts a handler's panic.
func (t *QUIC) handlerPanicked(req *Request, r any) {
	t.panicLog.log(t.log, slog.LevelError, "handler panicked", "op", req.Op, "panic", r)
	t.metrics.panicked()
}
