// What one incoming connection may make this member hold: requests read
// and not yet answered (with room for their answers), and answers waiting
// for the caller's flow control. At either bound, a count and bytes, the
// member stops reading that connection's requests, so the caller's own
// flow control pushes back on it; a caller that reads no answers for
// QUICConfig.StallTimeout is cut off. The package documentation states
// the resulting bound.

package transport

import (
	"errors"
	"log/slog"
	"os"
	"sync"

	"github.com/quic-go/quic-go"
)

// inConn is one incoming connection; its streams share its budget.
type inConn struct {
	t      *QUIC
	conn   *quic.Conn
	remote string

	maxRequests int // QUICConfig.MaxConcurrentRequests
	maxHeld     int // QUICConfig.MaxConnBytes

	mu          sync.Mutex
	outstanding int           // requests read whose answer QUIC has not taken yet
	held        int           // bytes of those: requests in service, answers queued
	wake        chan struct{} // closed when room frees up; nil when no reader waits
	cut         bool          // cut off for not reading
}

// maxAnswerSize is the largest answer frame: a value at its limit and a
// message at its limit.
const maxAnswerSize = frameLenSize + responseHeaderSize + 4 + MaxValueSize + 2 + MaxMessageSize

// reserve is what a request of body bytes holds while it is served: its
// body and room for the largest answer its operation can have.
func reserve(op Op, body int) int {
	if op == OpGet || op == OpTake {
		return body + maxAnswerSize
	}
	return body + maxAnswerSize - MaxValueSize
}

// admit waits until the connection may have one more request read: fewer
// than maxRequests outstanding and fewer than maxHeld bytes held. It
// reports false once the connection is gone.
func (c *inConn) admit() bool {
	for {
		c.mu.Lock()
		if c.outstanding < c.maxRequests && c.held < c.maxHeld {
			c.mu.Unlock()
			return true
		}
		if c.wake == nil {
			c.wake = make(chan struct{})
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-c.conn.Context().Done():
			return false
		}
	}
}

// begin counts a request read that holds n bytes until answered.
func (c *inConn) begin(n int) {
	c.mu.Lock()
	c.outstanding++
	c.held += n
	c.mu.Unlock()
}

// room reports whether admit would not wait.
func (c *inConn) room() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outstanding < c.maxRequests && c.held < c.maxHeld
}

// end counts the answers to k requests that held n bytes as given to
// QUIC, or dropped (queued false); or as queued (queued true), to be
// counted again by drained.
func (c *inConn) end(n, k int, queued bool) {
	c.mu.Lock()
	c.held -= n
	if !queued {
		c.outstanding -= k
	}
	c.wakeLocked()
	c.mu.Unlock()
}

// queue counts an answer of n bytes waiting for flow control.
func (c *inConn) queue(n int) {
	c.mu.Lock()
	c.held += n
	c.mu.Unlock()
	c.t.queuedAdd(n)
}

// drained counts queued answers of n bytes to k requests taken by QUIC,
// or dropped because the stream broke: their requests are answered.
func (c *inConn) drained(n, k int) {
	c.mu.Lock()
	c.held -= n
	c.outstanding -= k
	c.wakeLocked()
	c.mu.Unlock()
	c.t.queuedAdd(-n)
}

func (c *inConn) wakeLocked() {
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// writeFailed is the serving side's frameWriter.fail: a write that timed
// out means the caller read nothing for StallTimeout, and it is cut off.
// Other errors mean the connection is already gone.
func (c *inConn) writeFailed(err error) {
	if !isTimeout(err) {
		return
	}
	c.mu.Lock()
	first := !c.cut
	c.cut = true
	c.mu.Unlock()
	if !first {
		return
	}
	c.t.metrics.slowReader()
	c.t.slowLog.log(c.t.log, slog.LevelWarn, "member not reading its answers, cutting it off",
		"remote", c.remote, "stalled_for", c.t.cfg.StallTimeout)
	c.conn.CloseWithError(codeSlowReader, "tlsring: answers not read within the stall timeout")
}

// isTimeout reports whether err is a write deadline passing.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
