// The frame writer both ends of a stream use: frames are queued straight
// into the QUIC stream from the goroutine that made them, without a
// hand-off, and fall back to a writer goroutine only when flow control
// pushes back.

package transport

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// frameWriter writes whole frames to a stream from many goroutines.
//
// The fast path is quic-go's TryWriteAll: it copies the frame into the
// stream's pending STREAM frame and wakes the connection's send loop,
// without blocking and without a goroutine switch. Frames written by other
// goroutines before the send loop runs join the same pending data, so one
// packet carries several frames: writes coalesce by themselves, as they
// would through a writer goroutine draining a channel into a bufio.Writer,
// minus that goroutine's wake-up on every request.
//
// When flow control has no room (TryWriteAll would block), frames are
// copied to a queue drained by a writer goroutine with blocking writes;
// while it runs, new frames join its queue. Frames are independent
// (ID-tagged), so their order on the stream does not matter, but the queue
// keeps it anyway. The writer does not bound its queue itself: on the
// serving side the queued and drained hooks feed the connection's budget
// (bounds.go), which stops reading requests while too much is queued, and
// stall fails the stream when the caller takes nothing for that long.
type frameWriter struct {
	str   *quic.Stream
	spawn func(func()) bool // runs the writer goroutine, tracked by the transport
	fail  func(error)       // called once when the stream breaks

	// Serving side only; zero on the calling side, whose queue its own
	// callers bound (each waits for its answer).
	stall   time.Duration  // a queued write not taken within this long fails the stream
	queued  func(n int)    // a write of n bytes was queued
	drained func(n, k int) // a queued write of n bytes and k frames was written, or dropped

	mu      sync.Mutex
	err     error
	queue   []pending
	writing bool
}

// pending is a queued write: whole frames, k of them.
type pending struct {
	b []byte
	k int
}

// write sends frames, k whole frames back to back. It never blocks on the
// network and never retains frames after it returns. queued reports that
// they wait in the queue (drained will be called for them) rather than in
// QUIC's buffer.
func (w *frameWriter) write(frames []byte, k int) (queued bool, err error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return false, err
	}
	if !w.writing {
		err := w.str.TryWriteAll(frames)
		if err == nil {
			w.mu.Unlock()
			return false, nil
		}
		if !errors.Is(err, quic.ErrWouldBlock) {
			w.err = err
			w.mu.Unlock()
			w.fail(err)
			return false, err
		}
	}
	slowWrites.Add(1)
	if !w.writing {
		w.writing = true
		if !w.spawn(w.drain) {
			w.writing = false
			w.err = ErrClosed
			w.mu.Unlock()
			return false, ErrClosed
		}
	}
	w.queue = append(w.queue, pending{append([]byte(nil), frames...), k})
	if w.queued != nil {
		w.queued(len(frames))
	}
	w.mu.Unlock()
	return true, nil
}

func (w *frameWriter) drain() {
	for {
		w.mu.Lock()
		q := w.queue
		w.queue = nil
		if len(q) == 0 || w.err != nil {
			w.writing = false
			w.mu.Unlock()
			w.dropped(q)
			return
		}
		w.mu.Unlock()
		for i, f := range q {
			if w.stall > 0 {
				w.str.SetWriteDeadline(time.Now().Add(w.stall))
			}
			_, err := w.str.Write(f.b)
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				w.dropped(q[i:])
				w.fail(err)
				break
			}
			if w.drained != nil {
				w.drained(len(f.b), f.k)
			}
		}
	}
}

// dropped accounts for queued frames that will never be written.
func (w *frameWriter) dropped(q []pending) {
	if w.drained == nil {
		return
	}
	for _, f := range q {
		w.drained(len(f.b), f.k)
	}
}

// bufPool holds encode buffers for frames of ordinary size.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledBuf = 128 << 10

func getBuf(n int) *[]byte {
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	*bp = (*bp)[:0]
	return bp
}

func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	bufPool.Put(bp)
}

// slowWrites counts frames that took the writer goroutine's path; tests
// read it.
var slowWrites atomic.Int64
