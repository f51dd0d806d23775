// hooks.go: the WrapSession, UnwrapSession and VerifyConnection hooks, and
// the per-handshake state behind UnwrapSession. (early.go has the early-data
// policy and its accounting.)

package tlsglue

import (
	"context"
	"crypto/tls"
	"errors"
	"time"
)

// hooks is what Install sets on one Config.
type hooks struct {
	g          *Glue
	prevUnwrap func([]byte, tls.ConnectionState) (*tls.SessionState, error)
	prevVerify func(tls.ConnectionState) error
	now        func() time.Time
}

// wrap is Config.WrapSession: it binds the session, draws a handle, queues
// the write and returns the handle at once.
func (h *hooks) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	o := &h.g.opts
	ss.Extra = append(ss.Extra, bindingEntry(cs.ServerName, cs.NegotiatedProtocol, o.Label))
	state, err := ss.Bytes()
	if err != nil {
		return nil, err
	}
	if h.g.stateless(cs.Version) {
		return h.g.sealTicket(state) // modes.go
	}
	hd := newHandle(h.g.placer)
	ttl := o.Lifetime
	if t, ok := createdAt(state); ok {
		// A TLS 1.2 session re-issued on resumption keeps its creation time.
		ttl -= h.now().Sub(t)
	}
	if ttl < time.Second {
		h.g.m.write(wrExpired)
		clear(state)
	} else {
		h.g.w.enqueue(writeJob{h: hd, state: state, ttl: ttl})
	}
	return append([]byte(nil), hd.bytes()...), nil
}

// unwrapShared is Config.UnwrapSession on the installed Config itself, used
// when no per-handshake clone exists (NoHandshakeContext, or a handshake that
// bypassed GetConfigForClient).
func (h *hooks) unwrapShared(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	return h.unwrap(nil, identity, cs)
}

// unwrap is Config.UnwrapSession. It never returns an error for a session it
// cannot use: every failure is (nil, nil), a full handshake, counted.
func (h *hooks) unwrap(hs *handshake, identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if len(identity) == 0 {
		return nil, nil // TLS 1.2 ClientHello without a ticket: nothing to look up
	}
	hd, ok := parseHandle(identity)
	if !ok {
		if ss, handled := h.unwrapTicket(identity, cs); handled { // modes.go
			// A stateless ticket opens on any server, any number of
			// times: never single-use.
			cleared := h.restrictEarlyData(ss, false)
			hs.noteFirst(ss, cleared, 0)
			return ss, nil
		}
		if h.prevUnwrap == nil {
			h.g.m.lookup(lrMalformed)
			hs.noteFirst(nil, false, 0)
			return nil, nil
		}
		ss, err := h.prevUnwrap(identity, cs)
		if err != nil {
			return ss, err
		}
		// Not a tlsglue session, so not single-use either.
		cleared := h.restrictEarlyData(ss, false)
		hs.noteFirst(ss, cleared, 0)
		return ss, nil
	}
	if hs != nil {
		if ss, seen := hs.recall(&hd); seen {
			return ss, nil
		}
	}
	ss, suite, r := h.lookup(hs, &hd, cs)
	h.g.m.lookup(r)
	// The single-use Take (if any) has returned: only now may the session
	// admit early data, and crypto/tls installs the early-data keys only
	// after this returns.
	cleared := h.restrictEarlyData(ss, h.g.opts.SingleUse)
	if hs != nil {
		hs.remember(&hd, ss)
		hs.noteFirst(ss, cleared, suite)
	}
	return ss, nil
}

// lookup fetches, opens, parses and checks the session behind hd, and
// returns it with its cipher suite.
func (h *hooks) lookup(hs *handshake, hd *handle, cs tls.ConnectionState) (*tls.SessionState, uint16, lookupResult) {
	g := h.g
	storeKey, aeadKey := hd.keys()
	parent := context.Background()
	if hs != nil {
		parent = hs.ctx
	}
	start := time.Now()
	var r flightResult
	if g.opts.SingleUse {
		ctx, cancel := context.WithTimeout(parent, g.opts.Deadline)
		r.value, r.err = g.store.Take(ctx, storeKey.bytes())
		r.timedOut = ctx.Err() != nil
		cancel()
	} else {
		r = g.get(parent, storeKey.bytes())
	}
	g.m.observe(time.Since(start))
	value, err := r.value, r.err
	if err != nil || value == nil {
		switch {
		case err == nil || isNotFound(err):
			return nil, 0, lrMiss
		case r.timedOut || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			return nil, 0, lrTimeout
		default:
			g.opts.Logger.Debug("tlsglue: session lookup failed", "err", err)
			return nil, 0, lrError
		}
	}
	state, err := open(&storeKey, &aeadKey, value)
	clear(aeadKey[:])
	if err != nil {
		return nil, 0, lrCorrupt
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		return nil, 0, lrCorrupt
	}
	switch checkBinding(ss.Extra, cs.ServerName, cs.NegotiatedProtocol, g.opts.Label) {
	case bindingMismatch:
		return nil, 0, lrMismatch
	case bindingMissing:
		return nil, 0, lrCorrupt
	}
	if t, ok := createdAt(state); ok && h.now().Sub(t) > g.opts.Lifetime {
		return nil, 0, lrMiss // outlived Lifetime; the store's TTL just has not caught up
	}
	suite, _ := stateSuite(state)
	return ss, suite, lrHit
}

// verify is Config.VerifyConnection: crypto/tls calls it once per server
// handshake, full or resumed, after the resumption decision.
func (h *hooks) verify(cs tls.ConnectionState) error {
	if h.prevVerify != nil {
		if err := h.prevVerify(cs); err != nil {
			return err
		}
	}
	if cs.DidResume {
		h.g.m.resumed.Inc()
	} else {
		h.g.m.full.Inc()
	}
	return nil
}

// maxRemembered is how many distinct handles one handshake remembers;
// crypto/tls unwraps at most 5 PSK identities per ClientHello.
const maxRemembered = 5

// handshake is the per-handshake state of a Config cloned by
// GetConfigForClient: the handshake's context, and the lookups already made,
// so that a handle unwrapped twice in one handshake is looked up once (and,
// with SingleUse, the second unwrap still gets the session the first took).
type handshake struct {
	h    *hooks
	ctx  context.Context
	n    int
	seen [maxRemembered]struct {
		hd handle
		ss *tls.SessionState
	}
	// earlyOffered: the ClientHello offers early data, counted in Metrics
	// and to be decided at VerifyConnection (early.go).
	earlyOffered bool
	// first is what the handshake's first UnwrapSession resolved to: PSK
	// identity 0, the only one early data may use.
	first firstIdentity
}

// wrap is the clone's Config.WrapSession. A TLS 1.2 resumption re-issues
// the very session it resumed (same secret, same creation time), so the
// handle the client offered still names the right stored state: hand it
// back and write nothing. That saves a store write, most of tlsring's cost
// on a TLS 1.2 resumption. Not with SingleUse: that handle is gone.
func (hs *handshake) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	if cs.DidResume && cs.Version <= tls.VersionTLS12 && !hs.h.g.opts.SingleUse {
		if hd, ok := hs.resumed(); ok {
			hs.h.g.m.write(wrReused)
			return append([]byte(nil), hd.bytes()...), nil
		}
	}
	return hs.h.wrap(cs, ss)
}

// resumed returns the one handle this handshake found a session for.
func (hs *handshake) resumed() (handle, bool) {
	var found handle
	n := 0
	for i := range hs.n {
		if hs.seen[i].ss != nil {
			found = hs.seen[i].hd
			n++
		}
	}
	return found, n == 1
}

// unwrap is the clone's Config.UnwrapSession.
func (hs *handshake) unwrap(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	return hs.h.unwrap(hs, identity, cs)
}

func (hs *handshake) recall(hd *handle) (*tls.SessionState, bool) {
	for i := range hs.n {
		if hs.seen[i].hd == *hd {
			return hs.seen[i].ss, true
		}
	}
	return nil, false
}

func (hs *handshake) remember(hd *handle, ss *tls.SessionState) {
	if hs.n < len(hs.seen) {
		hs.seen[hs.n].hd, hs.seen[hs.n].ss = *hd, ss
		hs.n++
	}
}
