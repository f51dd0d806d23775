// Failure detection, the I/O half: calls report their outcome to the
// decision core (peer/core), which marks a member down when it cannot be
// reached or its calls time out several times in a row; a background loop
// pings the members the core says to probe, so a dead member costs one
// hedge delay per read, not a deadline per handshake.

package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tlsring/tlsring/transport"
)

// health reports call outcomes to the core and acts on its transitions.
type health struct {
	p *Peer
}

func newHealth(p *Peer) *health { return &health{p: p} }

// downErrors returns the members marked down with the error that marked
// each.
func (h *health) downErrors() map[string]string {
	down := h.p.core.Down()
	out := make(map[string]string, len(down))
	for m, d := range down {
		out[m] = d.Err
	}
	return out
}

func (h *health) isDown(m string) bool { return h.p.core.IsDown(m) }

// failed records a call to m that got no answer (see core.CallFailed for
// when that marks it down).
func (h *health) failed(m string, err error) {
	if h.p.core.CallFailed(time.Now(), m, errors.Is(err, context.DeadlineExceeded), err.Error()) {
		h.p.log.Warn("member marked down", "remote", m, "err", err)
	}
}

// ok records an answer from m; if m was down, writes it missed while down
// go out now, and a state transfer waiting for it asks it again.
func (h *health) ok(m string) {
	if h.p.core.CallOK(time.Now(), m) {
		h.up(m)
	}
}

// up acts on m coming back.
func (h *health) up(m string) {
	h.p.log.Info("member answering again", "remote", m)
	h.p.hints.kick(m)
	h.p.kickTransfer()
}

// WarmUp pings every other member at once, so that connections exist
// before the first handshake needs one, and members that do not answer are
// marked down from the start. It returns when every member answered or
// failed (the error names those that failed), or ctx ends. New starts one
// in the background; call it to wait for a warm ring, as tests and the
// demo do.
func (p *Peer) WarmUp(ctx context.Context) error {
	members := p.core.Ring().Members()
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

// probeLoop ticks the core every ProbeInterval: it pings the members the
// core says to probe (those marked down), and starts deliveries of delayed
// writes to the members it names (a write can fail on a member that was
// never marked down, or its first delivery can fail).
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
		d := h.p.core.Tick(time.Now())
		for _, m := range d.Probe {
			ctx, cancel := context.WithTimeout(h.p.bg, h.p.cfg.ProbeInterval)
			h.p.call(ctx, m, &transport.Request{Op: transport.OpPing})
			cancel()
		}
		for _, m := range d.Deliver {
			h.p.hints.kick(m)
		}
	}
}

// liveness applies an external source's word on m to the core (see
// core.Liveness): alive, or down for reason (nil: no reason given). A
// membership source's MemberDown and MemberUp come here.
func (h *health) liveness(m string, alive bool, reason error) {
	var changed bool
	if alive {
		changed = h.p.core.Liveness(time.Now(), m, true)
	} else {
		why := ""
		if reason != nil {
			why = reason.Error()
		}
		changed = h.p.core.LivenessDown(time.Now(), m, why)
	}
	if !changed {
		return
	}
	if alive {
		h.up(m)
	} else {
		h.p.log.Warn("member marked down by the liveness source", "remote", m, "err", reason)
	}
}
