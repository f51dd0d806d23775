// The serving side of the QUIC transport: accepting member connections and
// their streams, reading request frames and answering them concurrently
// with the Handler.

package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
			t:  t,
			c:  c,
			br: bufio.NewReaderSize(str, 16<<10),
		}
		s.w = frameWriter{
			str:     str,
			spawn:   t.go_,
			fail:    c.writeFailed,
			stall:   t.cfg.StallTimeout,
			queued:  c.queue,
			drained: c.drained,
		}
		t.wg.Add(1)
		go s.read()
	}
}

// serverStream serves one caller's request stream.
//
// Requests are served leader/follower style: one goroutine at a time reads
// the stream (the leader). Once it has a whole request it starts a
// successor to read the next one and serves its request itself, at once,
// on the goroutine the network woke: the request does not wait for a
// hand-off to a worker, and a slow or blocked handler holds up no other
// request. The connection's budget (inConn) bounds the requests
// outstanding, and so the goroutines: at the bound the leader waits before
// reading on, which pushes back on the caller through flow control.
type serverStream struct {
	t   *QUIC
	c   *inConn
	br  *bufio.Reader
	hdr [frameLenSize]byte
	w   frameWriter
}

// read is the leader's loop. The caller has added to the transport's wait
// group for it.
func (s *serverStream) read() {
	defer s.t.wg.Done()
	if !s.c.admit() {
		return
	}
	body, err := readFrame(s.br, &s.hdr)
	if err != nil {
		s.readFailed(err)
		return
	}
	f, derr := decodeRequest(body)
	f.held = reserve(f.req.Op, len(body))
	s.c.begin(f.held)
	if f.deadline > 0 {
		f.expires = time.Now().Add(time.Duration(f.deadline) * time.Microsecond)
	}
	s.t.wg.Add(1)
	go s.read()
	s.serve(&f, derr)
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

// serve answers one request frame.
func (s *serverStream) serve(f *requestFrame, derr error) {
	var resp *Response
	switch {
	case derr != nil:
		// readFrame guarantees the version and ID are there, so every
		// decoding error can be answered.
		resp = &Response{Status: StatusBadRequest, Message: derr.Error()}
		s.t.log.Debug("bad request from member", "remote", s.c.remote, "err", derr)
	case f.id == pingID && f.req.Op == OpPing:
		resp = pingOK // the dial-time check; the handler never sees it
	default:
		if err := f.req.Validate(); err != nil {
			resp = &Response{Status: StatusBadRequest, Message: err.Error()}
		} else {
			resp = s.t.handle(f)
			if resp == nil {
				s.c.end(f.held, false)
				return // the caller's deadline passed: it has given up
			}
		}
	}
	s.t.metrics.served(f.req.Op, resp.Status)
	bp := getBuf(responseSize(resp))
	*bp = appendResponse(*bp, f.id, resp)
	queued, _ := s.w.write(*bp) // a failed write means the connection is gone
	s.c.end(f.held, queued)
	putBuf(bp)
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
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, f.expires)
		defer cancel()
	}
	resp := serveGuarded(ctx, t.h, &f.req, func(r any) {
		t.panicLog.log(t.log, slog.LevelError, "handler panicked", "op", f.req.Op, "panic", r)
		t.metrics.panicked()
	})
	if f.deadline > 0 && time.Now().After(f.expires) {
		return nil
	}
	return resp
}
