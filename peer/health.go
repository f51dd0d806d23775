// Failure detection: a member that cannot be reached, or whose calls time
// out several times in a row, is marked down and asked last until a
// background ping finds it answering again, so a dead member costs one
// hedge delay per read, not a deadline per handshake.

package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlsring/tlsring/transport"
)

type health struct {
	p        *Peer
	mu       sync.RWMutex
	down     map[string]downInfo // member -> when and why it was marked down
	timeouts map[string]int      // member -> timed-out calls since its last answer
}

type downInfo struct {
	since time.Time
	err   error // the failure that marked it down
}

func newHealth(p *Peer) *health {
	return &health{p: p, down: make(map[string]downInfo), timeouts: make(map[string]int)}
}

// downErrors returns the members marked down with the error that marked
// each.
func (h *health) downErrors() map[string]string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]string, len(h.down))
	for m, d := range h.down {
		out[m] = d.err.Error()
	}
	return out
}

func (h *health) isDown(m string) bool {
	h.mu.RLock()
	_, d := h.down[m]
	h.mu.RUnlock()
	return d
}

// failed records a call to m that got no answer. A member that refused or
// could not be reached is marked down at once; one that timed out only
// after Config.DownAfter timeouts in a row, since a handshake's deadline is
// short and a busy member may answer a little late without being dead.
func (h *health) failed(m string, err error) {
	timedOut := errors.Is(err, context.DeadlineExceeded)
	h.mu.Lock()
	_, was := h.down[m]
	if !was && timedOut {
		h.timeouts[m]++
		if h.timeouts[m] < h.p.cfg.DownAfter {
			h.mu.Unlock()
			return
		}
	}
	if !was {
		h.down[m] = downInfo{since: time.Now(), err: err}
	} else {
		d := h.down[m]
		d.err = err // readiness shows the latest cause
		h.down[m] = d
	}
	h.mu.Unlock()
	if !was {
		h.p.log.Warn("member marked down", "peer", m, "err", err)
	}
}

func (h *health) ok(m string) {
	h.mu.RLock()
	_, was := h.down[m]
	n := h.timeouts[m]
	h.mu.RUnlock()
	if !was && n == 0 {
		return
	}
	h.mu.Lock()
	d, was := h.down[m]
	delete(h.down, m)
	delete(h.timeouts, m)
	h.mu.Unlock()
	if was {
		h.p.log.Info("member answering again", "peer", m, "down_for", time.Since(d.since).Round(time.Millisecond))
		// Writes it missed while down go out now, and a state transfer
		// waiting for it asks it again.
		h.p.hints.kick(m)
		h.p.kickTransfer()
	}
}

// downMembers returns the members marked down.
func (h *health) downMembers() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.down))
	for m := range h.down {
		out = append(out, m)
	}
	return out
}

// forget drops members no longer in the ring.
func (h *health) forget(keep func(string) bool) {
	h.mu.Lock()
	for m := range h.down {
		if !keep(m) {
			delete(h.down, m)
		}
	}
	for m := range h.timeouts {
		if !keep(m) {
			delete(h.timeouts, m)
		}
	}
	h.mu.Unlock()
}

// WarmUp pings every other member at once, so that connections exist
// before the first handshake needs one, and members that do not answer are
// marked down from the start. It returns when every member answered or
// failed (the error names those that failed), or ctx ends. New starts one
// in the background; call it to wait for a warm ring, as tests and the
// demo do.
func (p *Peer) WarmUp(ctx context.Context) error {
	members := p.ring.Load().Members()
	errs := make(chan error, len(members))
	sem := make(chan struct{}, 32) // bounded dials at 1000 members
	n := 0
	for _, m := range members {
		if m == p.self {
			continue
		}
		n++
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := respErr(p.call(ctx, m, &transport.Request{Op: transport.OpPing})); err != nil {
				errs <- fmt.Errorf("%s: %w", m, err)
				return
			}
			errs <- nil
		}()
	}
	var failed []error
	for range n {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("peer: %d of %d members did not answer: %w", len(failed), n, errors.Join(failed...))
	}
	return nil
}

// probeLoop pings members marked down every ProbeInterval, and retries
// delayed writes to members that answer (a write can fail on a member
// that was never marked down, or its first delivery can fail).
func (h *health) probeLoop() {
	defer h.p.wg.Done()
	t := time.NewTicker(h.p.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-h.p.bg.Done():
			return
		case <-t.C:
		}
		for _, m := range h.downMembers() {
			ctx, cancel := context.WithTimeout(h.p.bg, h.p.cfg.ProbeInterval)
			h.p.call(ctx, m, &transport.Request{Op: transport.OpPing})
			cancel()
		}
		for _, m := range h.p.hints.pending() {
			if !h.isDown(m) {
				h.p.hints.kick(m)
			}
		}
	}
}
