// flight.go: concurrent lookups of one handle on one Glue share a single
// Store.Get (groupcache's singleflight). A browser opens several parallel
// TLS 1.2 connections offering one session; without this each one costs a
// remote read.

package tlsglue

import (
	"context"
	"time"
)

// flightResult is what one shared Get returns to every lookup that joined it.
type flightResult struct {
	value []byte // read-only: every joiner opens it, none modifies it
	err   error
	// timedOut reports that the flight's context was done when Get
	// returned: the lookups that shared it count a timeout.
	timedOut bool
}

// get fetches key for a lookup under parent (the handshake's context) and
// Options.Deadline, sharing the Store.Get with concurrent lookups of the
// same key. It is used for Get only, never for Take: a single-use session
// must go to exactly one handshake.
//
// Deadlines: a flight runs under its first caller's Deadline, measured from
// that caller's start, and detached from its cancellation (a client that
// hangs up does not fail the lookups that joined it). Every caller that
// joins started later, so with the same Deadline its own limit is no
// earlier (give or take the scheduling delay between reading the clock and
// joining): groupcache's blocking Do never holds a caller past its own
// Deadline. A caller whose handshake context would end sooner, or is
// already done, does not join: it looks up on its own, as without flights.
// A caller whose handshake is cancelled while it waits keeps waiting for
// the flight, at most until its Deadline; the handshake is failing anyway.
func (g *Glue) get(parent context.Context, key []byte) flightResult {
	deadline := time.Now().Add(g.opts.Deadline)
	if d, ok := parent.Deadline(); g.noFlight || ok && d.Before(deadline) || parent.Err() != nil {
		return g.getAlone(parent, deadline, key)
	}
	led := false
	v, _ := g.flights.Do(string(key), func() (any, error) {
		led = true
		r := g.getAlone(context.WithoutCancel(parent), deadline, key)
		return &r, nil
	})
	if !led {
		g.m.shared.Inc()
	}
	return *v.(*flightResult)
}

// getAlone is one Store.Get under parent and deadline.
func (g *Glue) getAlone(parent context.Context, deadline time.Time, key []byte) flightResult {
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	value, err := g.store.Get(ctx, key)
	return flightResult{value: value, err: err, timedOut: ctx.Err() != nil}
}
