// writer.go: the bounded write queue and its on-demand worker pool, which
// seal session states and store them off the handshake's critical path.

package tlsglue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// writerIdle is how long a worker waits for work before exiting. Tests
// shorten it.
var writerIdle = time.Second

// writeJob is one session to seal and store.
type writeJob struct {
	h     handle
	state []byte // SessionState.Bytes(), cleared once sealed
	ttl   time.Duration
}

// writer owns the queue and the workers.
//
// Invariants: pending counts jobs queued or being written; running counts
// live workers. Enqueue bumps pending then reads running, a worker exiting
// drops running then reads pending (both sequentially consistent atomics), so
// a queued job never ends up without a worker.
type writer struct {
	store   Store
	metrics *Metrics
	logger  *slog.Logger
	timeout time.Duration
	max     int32

	// inline makes enqueue write on the caller's goroutine. Benchmarks set it
	// to put the write's CPU on the handshake thread they measure.
	inline bool

	queue   chan writeJob
	pending atomic.Int64
	running atomic.Int32
	closed  atomic.Bool // no more enqueues (Shutdown or close)
	stopped bool        // no more workers (close); guarded by mu

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc

	mu      sync.Mutex // guards worker starts, waiters and closing
	wg      sync.WaitGroup
	waiters []chan struct{}
}

func newWriter(s Store, o Options) *writer {
	ctx, cancel := context.WithCancel(context.Background())
	return &writer{
		store:   s,
		metrics: o.Metrics,
		logger:  o.Logger,
		timeout: o.WriteTimeout,
		max:     int32(o.Writers),
		queue:   make(chan writeJob, o.QueueSize),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// enqueue hands j to the workers without blocking; it reports false (and
// counts a drop) when the queue is full or closed.
func (w *writer) enqueue(j writeJob) bool {
	if w.closed.Load() {
		w.metrics.drops.Inc()
		return false
	}
	p := w.pending.Add(1)
	if w.inline {
		w.write(j)
		w.done()
		return true
	}
	select {
	case w.queue <- j:
	default:
		w.done()
		w.metrics.drops.Inc()
		return false
	}
	w.metrics.pending.Inc()
	if int64(w.running.Load()) < min(p, int64(w.max)) {
		w.startWorker()
	}
	return true
}

// startWorker starts one more worker if there is work for it.
func (w *writer) startWorker() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	r := w.running.Load()
	if r >= w.max || int64(r) >= w.pending.Load() {
		return
	}
	w.running.Add(1)
	w.wg.Add(1)
	go w.work()
}

// work serves the queue until idle for writerIdle or until closed.
func (w *writer) work() {
	defer w.wg.Done()
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		select {
		case j := <-w.queue:
			if w.ctx.Err() != nil { // closed: what is left is dropped
				clear(j.state)
				w.metrics.drops.Inc()
			} else {
				w.write(j)
			}
			w.metrics.pending.Dec()
			w.done()
			idle.Reset(writerIdle)
		case <-idle.C:
			w.running.Add(-1)
			if w.pending.Load() > 0 {
				w.startWorker() // a job raced with this exit
			}
			return
		case <-w.ctx.Done():
			w.running.Add(-1)
			return
		}
	}
}

// write seals j and stores it, counting the result.
func (w *writer) write(j writeJob) {
	storeKey, aeadKey := j.h.keys()
	value := seal(&storeKey, &aeadKey, j.state)
	clear(j.state)
	clear(aeadKey[:])
	ctx, cancel := context.WithTimeout(w.ctx, min(w.timeout, j.ttl))
	err := w.store.Set(ctx, storeKey.bytes(), value, j.ttl)
	ctxErr := ctx.Err()
	cancel()
	switch {
	case err == nil:
		w.metrics.write(wrOK)
	case ctxErr != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		w.metrics.write(wrTimeout)
		w.logger.Debug("tlsglue: session write timed out", "err", err)
	default:
		w.metrics.write(wrError)
		w.logger.Debug("tlsglue: session write failed", "err", err)
	}
}

// done retires one pending job and wakes flushers when none are left.
func (w *writer) done() {
	if w.pending.Add(-1) != 0 {
		return
	}
	w.mu.Lock()
	for _, c := range w.waiters {
		close(c)
	}
	w.waiters = nil
	w.mu.Unlock()
}

// flush waits until no write is queued or in progress, or ctx is done.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	if w.pending.Load() == 0 || w.stopped {
		w.mu.Unlock()
		return nil
	}
	c := make(chan struct{})
	w.waiters = append(w.waiters, c)
	w.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops accepting writes, cancels in-flight ones, waits for the
// workers and drops whatever is still queued.
func (w *writer) close() {
	w.mu.Lock()
	w.closed.Store(true)
	already := w.stopped
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	if already {
		return
	}
	for {
		select {
		case j := <-w.queue:
			clear(j.state)
			w.metrics.pending.Dec()
			w.metrics.drops.Inc()
			w.done()
		default:
			w.mu.Lock()
			for _, c := range w.waiters {
				close(c)
			}
			w.waiters = nil
			w.mu.Unlock()
			return
		}
	}
}
