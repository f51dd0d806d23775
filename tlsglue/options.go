// options.go: Options, their documented defaults and validation.

package tlsglue

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

const (
	// DefaultDeadline bounds one lookup when Options.Deadline is zero.
	//
	// A remote get through a peer over QUIC on loopback takes ~150 µs at the
	// median; in a datacenter add one network round trip (100-500 µs) and
	// scheduling noise on a busy server (1-2 ms at the tail). 3 ms keeps a
	// healthy lookup's p99.9 inside the deadline while a dead owner costs a
	// handshake at most 3 ms, which is less than the round trip a TLS 1.2
	// resumption saves a typical Internet client, and far less than the
	// CPU-equivalent of the full handshake it may save for RSA certificates.
	DefaultDeadline = 3 * time.Millisecond

	// DefaultLifetime is the session lifetime and store TTL when
	// Options.Lifetime is zero. One day bounds how long a stolen handle plus
	// store contents stay useful, while covering a working day of returning
	// clients; crypto/tls accepts up to [MaxLifetime].
	DefaultLifetime = 24 * time.Hour

	// MaxLifetime is the largest accepted Options.Lifetime: crypto/tls
	// refuses sessions older than seven days and advertises seven days as
	// the TLS 1.3 ticket lifetime.
	MaxLifetime = 7 * 24 * time.Hour

	// DefaultQueueSize is the write queue's capacity when Options.QueueSize
	// is zero.
	DefaultQueueSize = 4096

	// DefaultWriters is the most write workers when Options.Writers is zero.
	DefaultWriters = 8

	// DefaultWriteTimeout bounds one store write when Options.WriteTimeout
	// is zero.
	DefaultWriteTimeout = 500 * time.Millisecond

	// maxDeadline rejects deadlines that would hold handshakes for seconds.
	maxDeadline = 10 * time.Second
	// maxLabel bounds Options.Label (it is stored in every session).
	maxLabel = 255
)

// Options tunes Install and New. The zero value is ready to use: every field
// has a documented zero-value default.
type Options struct {
	// Deadline bounds one lookup; the handshake's own context (from
	// GetConfigForClient, see Install) can only shorten it.
	// 0 = DefaultDeadline (3 ms).
	Deadline time.Duration

	// Lifetime is the session lifetime and store TTL, counted from the
	// session secret's creation (a TLS 1.2 session re-issued on resumption
	// keeps its original creation time). 0 = DefaultLifetime (24 h); at most
	// MaxLifetime (7 days); at least one second (crypto/tls counts session
	// age in seconds).
	Lifetime time.Duration

	// SingleUse makes a handle resume at most once, cluster-wide (RFC 8446
	// section 8.1): lookups use Store.Take instead of Store.Get. Since the
	// handle travels in clear in the ClientHello, anyone who sees it can burn
	// it by presenting it first; that is inherent to single-use tickets.
	// Only single-use sessions admit TLS 1.3 early data (0-RTT, under
	// quic-go), unless ReplayableEarlyData.
	SingleUse bool

	// ReplayableEarlyData lets sessions that are not single-use admit TLS
	// 1.3 early data (0-RTT, which quic-go accepts with quic.Config.Allow0RTT
	// and its http3.Server by default). Early data has no replay protection
	// of its own: anyone who records a client's first flight (its ClientHello
	// and the early data after it) can send it again to any server of the
	// fleet, as often as they like until the session expires, and with a
	// session every server can resume, every server will hand the replayed
	// early data to the application. Enable it only if every request a
	// client may send as early data is safe to execute any number of times.
	//
	// false (the default): a session admits early data only under
	// SingleUse, where the cluster-wide Take lets at most one handshake
	// resume it; any other session (stateless tickets, which open on any
	// server any number of times, and those an UnwrapSession installed
	// before tlsglue resolves) resumes without early data, which
	// quic-go then resends in 1-RTT. Clients still offer early data
	// (quic-go advertises it in the tickets it issues whenever Allow0RTT
	// is on); turn Allow0RTT off to stop them trying.
	ReplayableEarlyData bool

	// Label binds sessions to a tenant or service: a session issued under one
	// Label never resumes under another, even on a shared store. At most 255
	// bytes. "" = no label (all configs sharing the store and the SNI/ALPN
	// resume each other's sessions).
	Label string

	// Metrics receives counters and the lookup latency histogram. Register
	// it with a prometheus.Registerer of your choice. nil = private,
	// unregistered metrics (reachable through Glue.Metrics).
	Metrics *Metrics

	// Logger receives debug logs of store errors. nil = slog.Default().
	Logger *slog.Logger

	// QueueSize is the write queue's capacity; a full queue drops writes.
	// 0 = DefaultQueueSize (4096).
	QueueSize int

	// Writers is the most goroutines writing to the store at once. They
	// start on demand and exit after a second without work.
	// 0 = DefaultWriters (8).
	Writers int

	// WriteTimeout bounds one Store.Set. 0 = DefaultWriteTimeout (500 ms).
	WriteTimeout time.Duration

	// NoHandshakeContext stops Install from setting GetConfigForClient.
	// By default Install wraps GetConfigForClient to clone the Config for
	// each handshake (about 1.2 µs and 0.5 KB), which lets lookups honour
	// the handshake's context and avoids a second store lookup when
	// crypto/tls unwraps the same identity twice in one handshake. With
	// NoHandshakeContext, lookups are bounded by Deadline alone.
	// false = per-handshake contexts.
	NoHandshakeContext bool

	// Mode says how tickets are issued: Stateful handles, Stateless tickets
	// under TicketKeys, or Hybrid (see Mode). Tickets of every mode resume
	// in every mode. Stateless tickets also honour Lifetime, and stop
	// opening when TicketKeys erases their key. 0 = Stateful.
	Mode Mode
	// TicketKeys seals and opens stateless tickets (a *ticketkeys.Keyring);
	// required by Stateless and Hybrid. When set in Stateful mode, tickets
	// it sealed still resume (a fleet moving back to stateful).
	TicketKeys TicketKeys
}

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("tlsglue: "+format, args...)) }
	switch {
	case o.Deadline < 0:
		bad("Options.Deadline %v is negative; use 0 for the default", o.Deadline)
	case o.Deadline > maxDeadline:
		bad("Options.Deadline %v holds handshakes too long (max %v)", o.Deadline, maxDeadline)
	case o.Deadline == 0:
		o.Deadline = DefaultDeadline
	}
	switch {
	case o.Lifetime < 0:
		bad("Options.Lifetime %v is negative; use 0 for the default", o.Lifetime)
	case o.Lifetime > MaxLifetime:
		bad("Options.Lifetime %v exceeds the 7 days crypto/tls accepts", o.Lifetime)
	case o.Lifetime == 0:
		o.Lifetime = DefaultLifetime
	case o.Lifetime < time.Second:
		bad("Options.Lifetime %v is under one second", o.Lifetime)
	}
	if len(o.Label) > maxLabel {
		bad("Options.Label is %d bytes (max %d)", len(o.Label), maxLabel)
	}
	switch {
	case o.QueueSize < 0:
		bad("Options.QueueSize %d is negative; use 0 for the default", o.QueueSize)
	case o.QueueSize == 0:
		o.QueueSize = DefaultQueueSize
	}
	switch {
	case o.Writers < 0:
		bad("Options.Writers %d is negative; use 0 for the default", o.Writers)
	case o.Writers == 0:
		o.Writers = DefaultWriters
	}
	switch {
	case o.WriteTimeout < 0:
		bad("Options.WriteTimeout %v is negative; use 0 for the default", o.WriteTimeout)
	case o.WriteTimeout == 0:
		o.WriteTimeout = DefaultWriteTimeout
	}
	if err := o.checkMode(); err != nil {
		errs = append(errs, err)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, errors.Join(errs...)
}
