// install.go: Glue, its lifecycle, and Install, which plugs a Glue into a
// *tls.Config.

package tlsglue

import (
	"context"
	"crypto/tls"
	"errors"
	"reflect"
	"time"

	"github.com/golang/groupcache/singleflight"
)

// Glue connects tls.Configs to a Store: it owns the options, the metrics and
// the write queue shared by every Config it is installed on.
type Glue struct {
	store  Store
	placer Placer // store's placement tokens; nil: random tokens
	opts   Options
	m      *Metrics
	w      *writer

	flights  singleflight.Group // concurrent Gets of one key share one (flight.go)
	noFlight bool               // every lookup Gets on its own; benchmarks compare
}

// New validates opts and returns a Glue writing to s. Its write workers start
// on demand and exit when idle, so a Glue that is never closed leaks no
// goroutines; Close or Shutdown release it deterministically.
func New(s Store, opts Options) (*Glue, error) {
	if s == nil && opts.Mode != Stateless {
		return nil, errors.New("tlsglue: nil Store (only Stateless mode needs none)")
	}
	if s == nil {
		s = noStore{}
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	placer, _ := s.(Placer)
	return &Glue{store: s, placer: placer, opts: o, m: o.Metrics, w: newWriter(s, o)}, nil
}

// Install makes cfg resume sessions through s, cluster-wide: it is
// New(s, opts) followed by Glue.Install(cfg). See Glue.Install for how it
// composes with hooks already set on cfg.
func Install(cfg *tls.Config, s Store, opts Options) error {
	if cfg == nil {
		return errors.New("tlsglue: nil *tls.Config")
	}
	g, err := New(s, opts)
	if err != nil {
		return err
	}
	return g.Install(cfg)
}

// Install sets cfg's WrapSession, UnwrapSession and VerifyConnection, and,
// unless Options.NoHandshakeContext, GetConfigForClient. Call it once per
// Config, after every other change to it and before serving with it; one
// Glue may be installed on several Configs.
//
// Composition with what cfg already has:
//   - WrapSession: replaced; tlsglue issues every ticket. Layers that add
//     their own SessionState.Extra (quic-go's http3 does) must wrap the
//     hooks after Install, which is what they do when given the Config.
//   - UnwrapSession: kept as the fallback for identities that are not
//     tlsglue handles, e.g. tickets issued before a rollout; without one,
//     such identities are a full handshake counted as "malformed".
//   - VerifyConnection: called first; if it accepts the connection, tlsglue
//     counts the handshake as full or resumed, and what became of the
//     early data its ClientHello offered (unless VerifyConnection was
//     wrapped after Install).
//   - GetConfigForClient: called first; a Config it returns is used as it
//     is (Install on that Config too if it should resume through the store).
//     When it returns nil, tlsglue returns a per-handshake clone of cfg whose
//     UnwrapSession knows the handshake's context. Because the clone is made
//     from cfg, a copy of cfg made after Install (cfg.Clone()) still serves
//     cfg's settings; quic-go and http3 re-apply theirs to the returned
//     Config, as crypto/tls's GetConfigForClient contract requires. If
//     cfg.UnwrapSession was wrapped after Install by a layer that does not
//     do so, the clone keeps that wrapper and lookups fall back to
//     Options.Deadline alone, so no wrapper is ever bypassed.
func (g *Glue) Install(cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("tlsglue: nil *tls.Config")
	}
	if cfg.SessionTicketsDisabled {
		return errors.New("tlsglue: cfg.SessionTicketsDisabled is set; nothing would resume")
	}
	now := cfg.Time
	if now == nil {
		now = time.Now
	}
	h := &hooks{g: g, prevUnwrap: cfg.UnwrapSession, prevVerify: cfg.VerifyConnection, now: now}
	cfg.WrapSession = h.wrap
	cfg.UnwrapSession = h.unwrapShared
	cfg.VerifyConnection = h.verify
	if !g.opts.NoHandshakeContext {
		prev := cfg.GetConfigForClient
		cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			if prev != nil {
				if c, err := prev(chi); err != nil || c != nil {
					return c, err
				}
			}
			c := cfg.Clone()
			c.GetConfigForClient = nil
			if isShared(c.UnwrapSession) {
				ctx := chi.Context()
				if ctx == nil {
					ctx = context.Background()
				}
				hs := &handshake{h: h, ctx: ctx}
				c.UnwrapSession = hs.unwrap
				if isOwnWrap(c.WrapSession) {
					c.WrapSession = hs.wrap
				}
				// The early-data decision is counted at VerifyConnection;
				// if a layer wrapped it after Install, it goes uncounted.
				if isOwnVerify(c.VerifyConnection) && offersEarlyData(chi) {
					hs.earlyOffered = true
					g.m.earlyOffered.Inc()
					c.VerifyConnection = hs.verify
				}
			}
			return c, nil
		}
	}
	return nil
}

// Metrics returns the Glue's collectors (Options.Metrics, or the private
// ones made when it was nil).
func (g *Glue) Metrics() *Metrics { return g.m }

// Flush waits until every session write queued so far has been attempted, or
// until ctx is done. Useful in tests and before handing a client to another
// server in a demo; handshakes never need it.
func (g *Glue) Flush(ctx context.Context) error { return g.w.flush(ctx) }

// Shutdown stops accepting writes (later sessions are dropped and counted),
// waits for queued writes until ctx is done, then closes.
func (g *Glue) Shutdown(ctx context.Context) error {
	g.w.closed.Store(true)
	err := g.w.flush(ctx)
	g.w.close()
	return err
}

// Close stops accepting writes, cancels writes in progress, drops queued
// ones and waits for the workers to exit. Handshakes keep working after
// Close: lookups still run, new sessions are just not stored.
func (g *Glue) Close() error {
	g.w.close()
	return nil
}

// Telling tlsglue's own hooks from wrappers. A per-handshake clone may
// replace a hook only if cfg's field still holds tlsglue's own function: a
// layer that wrapped it after Install (quic-go does) must keep running.
// Go funcs are not comparable, so the check compares code pointers through
// reflect: every method value of one method shares one code pointer, and a
// wrapper is a function of its own. An explicit marker was considered and
// rejected: a marker call (a sentinel identity our hook recognises) is
// answered the same by our hook and by any pass-through wrapper around it,
// which is exactly the case that must not be replaced, and crypto/tls's
// Config has no field to carry a marker of its own. These three comparisons
// are the only use of reflect in the package.

// sharedUnwrapPC is the code pointer of every hooks.unwrapShared method value.
var sharedUnwrapPC = reflect.ValueOf((&hooks{}).unwrapShared).Pointer()

// ownWrapPC is the code pointer of every hooks.wrap method value.
var ownWrapPC = reflect.ValueOf((&hooks{}).wrap).Pointer()

// ownVerifyPC is the code pointer of every hooks.verify method value.
var ownVerifyPC = reflect.ValueOf((&hooks{}).verify).Pointer()

// isOwnVerify reports whether f is still tlsglue's own VerifyConnection.
func isOwnVerify(f func(tls.ConnectionState) error) bool {
	return f != nil && reflect.ValueOf(f).Pointer() == ownVerifyPC
}

// isOwnWrap reports whether f is still tlsglue's own WrapSession, not a
// wrapper around it (quic-go's, say), so a per-handshake clone may replace it.
func isOwnWrap(f func(tls.ConnectionState, *tls.SessionState) ([]byte, error)) bool {
	return f != nil && reflect.ValueOf(f).Pointer() == ownWrapPC
}

// isShared reports whether f is still tlsglue's own UnwrapSession, not a
// wrapper around it, so that a per-handshake clone may replace it.
func isShared(f func([]byte, tls.ConnectionState) (*tls.SessionState, error)) bool {
	return f != nil && reflect.ValueOf(f).Pointer() == sharedUnwrapPC
}
