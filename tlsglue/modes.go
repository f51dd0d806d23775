// modes.go: the three ways a Glue issues tickets (stateful handles,
// stateless tickets under the fleet's rotating keys, or a hybrid) and the
// stateless sealing and opening.

package tlsglue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Mode says how a Glue issues tickets; Options.Mode. Every mode resumes
// what every other issued (given the store and keys it used), so a fleet can
// change modes without a single lost session.
type Mode int

const (
	// Stateful issues handles: the session lives in the Store, the client
	// holds 25 bytes naming it. One store write per issued ticket, one
	// lookup per resumption.
	Stateful Mode = iota
	// Stateless issues tickets sealed under the fleet's rotating keys
	// (Options.TicketKeys): nothing is stored per session and nothing is
	// looked up, at the price that the key set opens every ticket of the
	// retention window.
	Stateless
	// Hybrid is stateless for TLS 1.3 and stateful for TLS 1.2. TLS 1.3
	// issues a new ticket on every resumption, so stateless saves a store
	// write per handshake, and its resumptions (psk_dhe_ke, what browsers
	// and Go offer) mix in a fresh key exchange, so a captured ticket key
	// exposes the resumption secret but not the resumed connection's
	// traffic. A TLS 1.2 resumption derives its traffic keys from the
	// ticket's master secret alone, so a captured ticket key would decrypt
	// every recorded TLS 1.2 connection of the window; stateful handles
	// keep that exposure per session, and a TLS 1.2 resumption re-uses its
	// handle with no write at all.
	Hybrid
)

// String returns "stateful", "stateless" or "hybrid".
func (m Mode) String() string {
	switch m {
	case Stateful:
		return "stateful"
	case Stateless:
		return "stateless"
	case Hybrid:
		return "hybrid"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses the names String returns.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Stateful, Stateless, Hybrid} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("tlsglue: unknown mode %q (want stateful, stateless or hybrid)", s)
}

// TicketKeys seals and opens stateless tickets under keys the whole fleet
// shares and rotates; *ticketkeys.Keyring implements it. Seal must not
// fail for want of a key. IsTicket tells the identities Open is for (others
// go on to the previous UnwrapSession). Open returns an error for any ticket
// it cannot open: one with a NotFound() bool method returning true (a key
// erased or not held) counts as a miss, any other as corrupt. All are
// called on the handshake's goroutine and must not block on the network.
type TicketKeys interface {
	Seal(plaintext []byte) ([]byte, error)
	IsTicket(identity []byte) bool
	Open(ticket []byte) ([]byte, error)
}

// checkMode validates Mode and TicketKeys.
func (o *Options) checkMode() error {
	switch o.Mode {
	case Stateful:
	case Stateless, Hybrid:
		if o.TicketKeys == nil {
			return fmt.Errorf("tlsglue: Mode %v needs Options.TicketKeys (a *ticketkeys.Keyring)", o.Mode)
		}
	default:
		return fmt.Errorf("tlsglue: unknown Mode %d", int(o.Mode))
	}
	return nil
}

// stateless reports whether a ticket for a connection of version v is sealed
// under the fleet keys.
func (g *Glue) stateless(v uint16) bool {
	switch g.opts.Mode {
	case Stateless:
		return true
	case Hybrid:
		return v >= tls.VersionTLS13
	}
	return false
}

// sealTicket seals the serialized, bound session state as a ticket.
func (g *Glue) sealTicket(state []byte) ([]byte, error) {
	t, err := g.opts.TicketKeys.Seal(state)
	clear(state)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// unwrapTicket opens identity as a stateless ticket. handled is false when
// the Glue has no TicketKeys or identity is not one of its tickets, so the
// identity goes on to the previous UnwrapSession; otherwise a ticket that
// does not open is a full handshake, counted as a miss (too old, or a key
// not held) or corrupt.
func (h *hooks) unwrapTicket(identity []byte, cs tls.ConnectionState) (ss *tls.SessionState, handled bool) {
	g := h.g
	if g.opts.TicketKeys == nil || !g.opts.TicketKeys.IsTicket(identity) {
		return nil, false
	}
	state, err := g.opts.TicketKeys.Open(identity)
	if err != nil {
		if isNotFound(err) {
			g.m.lookup(lrMiss)
		} else {
			g.m.lookup(lrCorrupt)
		}
		return nil, true
	}
	ss, err = tls.ParseSessionState(state)
	if err != nil {
		g.m.lookup(lrCorrupt)
		return nil, true
	}
	switch checkBinding(ss.Extra, cs.ServerName, cs.NegotiatedProtocol, g.opts.Label) {
	case bindingMismatch:
		g.m.lookup(lrMismatch)
		return nil, true
	case bindingMissing:
		g.m.lookup(lrCorrupt)
		return nil, true
	}
	if t, ok := createdAt(state); ok && h.now().Sub(t) > g.opts.Lifetime {
		g.m.lookup(lrMiss)
		return nil, true
	}
	g.m.lookup(lrHit)
	return ss, true
}

// noStore is the Store of a Stateless Glue made without one: every lookup
// misses, every write is dropped.
type noStore struct{}

var errNoStore = errors.New("tlsglue: no Store (Stateless mode)")

func (noStore) Get(context.Context, []byte) ([]byte, error)  { return nil, ErrNotFound }
func (noStore) Take(context.Context, []byte) ([]byte, error) { return nil, ErrNotFound }
func (noStore) Delete(context.Context, []byte) error         { return nil }
func (noStore) Set(context.Context, []byte, []byte, time.Duration) error {
	return errNoStore
}
