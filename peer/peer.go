// Package peer is a ring member: it keeps a bounded share of the cluster's
// sessions in its local store and routes every Get, Set, Take and Delete to
// the key's owner and replica, wherever they are.
//
// Every key lives on Config.Replicas members (owner and ring successor by
// default). Reads ask the owner and hedge to the replica when the owner is
// slow, missing or down; writes go to all copies in parallel; Take is
// decided by the first reachable copy and removes the others. Members that
// fail are marked down and skipped until a background probe finds them
// answering again (health.go). SetMembers rebuilds the ring and moves
// entries to their new owners (rebalance.go).
//
// Every decision among these (which copy to ask and when to hedge, when a
// member is down, whether a Take wins, what a miss answers, which delayed
// writes to keep, how the state transfer is scheduled, what moves) is made
// by the member's decision core (peer/core), a deterministic state machine;
// this package is its shell: goroutines, timers, the store and the
// transport. Config.Recorder records what the member fed its core.
package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/peer/membership"
	"github.com/tlsring/tlsring/peer/store"
	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/transport"
)

// Defaults for Config's zero values.
const (
	DefaultReplicas       = core.DefaultReplicas
	DefaultHedgeAfter     = core.DefaultHedgeAfter
	DefaultRequestTimeout = time.Second
	DefaultProbeInterval  = core.DefaultProbeInterval
	DefaultDownAfter      = core.DefaultDownAfter
	// DefaultTransferTimeout bounds one part (a sixteenth) of one member's
	// share of a state transfer.
	DefaultTransferTimeout = 10 * time.Second
)

// Limits on keys, values and TTLs; longer ones get an error.
const (
	MaxKeySize   = transport.MaxKeySize
	MaxValueSize = transport.MaxValueSize
	MaxTTL       = transport.MaxTTL
)

// ErrNotFound is returned by Get and Take when no member holds the key. It
// has a NotFound() bool method, so packages such as tlsglue can recognise a
// miss without importing peer.
var ErrNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string  { return "peer: key not found" }
func (notFound) NotFound() bool { return true }

// ErrClosed is returned by calls on a closed Peer.
var ErrClosed = errors.New("peer: closed")

// Config configures a Peer. Self, Members and (for the default QUIC
// transport) TLS are required; every other field has a documented default.
type Config struct {
	Self     string       // this member's QUIC address "host:port", as it appears in Members
	Members  []string     // every ring member, Self included
	TLS      *tls.Config  // mutual TLS between members: Certificates + RootCAs/ClientCAs of the cluster CA; the transport sets ALPN, TLS 1.3 and client-auth on a clone
	MaxBytes int64        // bound on the local store (keys+values+store.EntryOverhead each); 0 = store.DefaultMaxBytes (64 MiB)
	Logger   *slog.Logger // nil = slog.Default()

	// Replicas is how many members hold each key, owner included.
	// 0 = DefaultReplicas (2: owner and replica).
	Replicas int
	// HedgeAfter is how long a read waits for one copy before also asking
	// the next. 0 = DefaultHedgeAfter (1 ms, several times a loopback
	// QUIC round trip's p99).
	HedgeAfter time.Duration
	// RequestTimeout bounds a call whose context has no deadline.
	// 0 = DefaultRequestTimeout (1 s).
	RequestTimeout time.Duration
	// ProbeInterval is how often members marked down are pinged.
	// 0 = DefaultProbeInterval (200 ms).
	ProbeInterval time.Duration
	// DownAfter is how many calls to a member must time out in a row
	// before it is marked down (a refused or unreachable member is marked
	// down at once). 0 = DefaultDownAfter (3).
	DownAfter int
	// Listen starts the transport this member uses, serving h. nil = QUIC
	// on Self with TLS (transport.ListenQUIC, configured by QUIC); tests
	// and simulations pass an in-memory transport.Network's Listen.
	Listen func(self string, h transport.Handler) (transport.Transport, error)
	// QUIC tunes the default QUIC transport (timeouts, bounds, Metrics);
	// its Addr, TLS, Logger and Authorize are set by the member: Self, TLS,
	// Logger, and the member-list check with Authorize. Zero = the
	// transport's documented defaults.
	QUIC transport.QUICConfig
	// Registerer receives the member's Prometheus metrics, those of the
	// default QUIC transport included (unless QUIC.Metrics is set), every
	// series labelled member=Self. nil = not registered (they are still
	// kept, see Peer.Collector).
	Registerer prometheus.Registerer
	// Membership, if set, is followed for the member list from New until
	// Leave or Close (follow.go): its lists are applied with SetMembers,
	// damped by package membership (a member that appears joins at once;
	// one gone from the source is reported down and leaves the ring only
	// after MembershipGrace). Its metrics go to Registerer. nil = Members,
	// changed by SetMembers only.
	Membership membership.Source
	// MembershipGrace is how long a member gone from Membership stays in
	// the ring before its ranges move. 0 = membership.DefaultGrace (30 s);
	// negative = none.
	MembershipGrace time.Duration
	// Now is the clock for TTLs. nil = time.Now.
	Now func() time.Time
	// HintBytes bounds the delayed writes kept for members that could not
	// be reached (keys, values and 96 bytes each). 0 = MaxBytes/8 (of the
	// default MaxBytes when that is 0).
	HintBytes int64
	// TombstoneTTL is the longest a deleted or taken key is remembered, so
	// that a late copy from another member cannot bring it back; also the
	// lifetime of a delayed Delete. 0 = store.DefaultTombstoneTTL (10 min).
	TombstoneTTL time.Duration
	// Authorize, if set, is asked about every other member's certificate
	// on every connection, after the check that the certificate names a
	// host of the member list: return an error to refuse it (a deny list of
	// retired certificates, say). Call Peer.Reauthorize after it changes.
	// nil = the member-list check alone.
	Authorize func(leaf *x509.Certificate) error
	// TransferTimeout bounds one request of the state transfer of a member
	// that starts or rejoins (a sixteenth of one other member's share); one
	// that does not finish in time is retried. 0 = DefaultTransferTimeout
	// (10 s).
	TransferTimeout time.Duration
	// Recorder, if set, receives every event this member feeds its
	// decision core (peer/core) and the decision it got, in order: tests
	// and simulators replay them (core.Replay; a core.TraceRecorder keeps
	// them as a core.Trace). nil = none recorded.
	Recorder core.Recorder
	// Seed seeds the decision core's random source (retry jitter).
	// 0 = a random seed.
	Seed uint64
	// ExternalLiveness makes MemberDown and MemberUp, called by a
	// membership source that knows liveness (gossip), the only judges of
	// which members are down: failed calls no longer mark a member down
	// and the member's own probes stop (liveness.go). false = failed calls
	// and probes mark members down and up, and MemberDown and MemberUp
	// feed the same marks.
	ExternalLiveness bool
}

// Peer is a ring member. Its methods are safe for concurrent use.
type Peer struct {
	cfg     Config
	self    string
	log     *slog.Logger
	store   *store.Store
	tr      transport.Transport
	core    *core.Core // every decision: routing, health, delayed writes, state transfer, moves
	health  *health
	hints   *hints
	hosts   atomic.Pointer[memberHosts] // hosts of the ring authorize last saw
	metrics *metrics

	following *following // Config.Membership's follower, if any (follow.go)

	transferMu     sync.Mutex
	cancelTransfer context.CancelFunc // stops the last started state transfer
	transferKick   chan struct{}      // a member answers again: retry the transfer now

	rebalanceMu   sync.Mutex
	settled       *ring.Ring         // ring the last finished rebalance moved entries for
	cancelReb     context.CancelFunc // cancels the running rebalance, if any
	rebalanceDone chan struct{}      // closed when the last started rebalance ends

	closed    atomic.Bool
	bg        context.Context // cancelled by Close; background work runs under it
	stopBg    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup // background work: deletes after Take, rebalancing, probing
}

// New checks cfg, starts listening on cfg.Self and serves at once.
func New(cfg Config) (*Peer, error) {
	if cfg.Self == "" {
		return nil, errors.New("peer: Config.Self is empty; set it to this member's host:port")
	}
	r, err := ring.New(cfg.Members)
	if err != nil {
		return nil, fmt.Errorf("peer: bad Config.Members: %w", err)
	}
	if !r.Contains(cfg.Self) {
		return nil, fmt.Errorf("peer: Config.Self %q is not in Config.Members %v", cfg.Self, cfg.Members)
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	c, err := core.New(coreConfig(cfg), time.Now())
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	var p *Peer // the default transport's Authorize asks it once it exists
	var trMetrics *transport.Metrics
	if cfg.Listen == nil {
		if cfg.TLS == nil {
			return nil, errors.New("peer: Config.TLS is nil; members need a certificate and the cluster CA")
		}
		qc := cfg.QUIC
		if qc.Metrics == nil {
			trMetrics = transport.NewMetrics(prometheus.Labels{"member": cfg.Self})
			qc.Metrics = trMetrics
		}
		qc.TLS, qc.Logger = cfg.TLS, cfg.Logger
		qc.Authorize = func(leaf *x509.Certificate) error { return p.authorize(leaf) }
		cfg.Listen = func(self string, h transport.Handler) (transport.Transport, error) {
			qc.Addr = self
			return transport.ListenQUIC(qc, h)
		}
	}
	p = &Peer{
		cfg:     cfg,
		self:    cfg.Self,
		log:     cfg.Logger.With("member", cfg.Self),
		store:   store.New(store.Config{MaxBytes: cfg.MaxBytes, Now: cfg.Now, TombstoneTTL: cfg.TombstoneTTL}),
		settled: c.Ring(),
		core:    c,

		transferKick: make(chan struct{}, 1),
	}
	p.bg, p.stopBg = context.WithCancel(context.Background())
	p.metrics = newMetrics(p)
	p.metrics.transport = trMetrics
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.metrics); err != nil {
			return nil, fmt.Errorf("peer: registering metrics: %w", err)
		}
	}
	p.health = newHealth(p)
	p.hints = newHints(p)
	tr, err := cfg.Listen(cfg.Self, transport.HandlerFunc(p.serve))
	if err != nil {
		p.stopBg()
		if cfg.Registerer != nil {
			cfg.Registerer.Unregister(p.metrics)
		}
		return nil, fmt.Errorf("peer: listening on %s: %w", cfg.Self, err)
	}
	p.tr = tr
	p.wg.Add(2)
	go p.health.probeLoop()
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.bg, cfg.RequestTimeout)
		defer cancel()
		if err := p.WarmUp(ctx); err != nil {
			p.log.Debug("warm-up: some members not answering yet; probing them", "err", err)
		}
	}()
	if !c.Transfer().Done {
		p.startTransfer(c.TransferGen())
	}
	if err := p.startFollowing(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// coreConfig is the decision core's configuration for cfg (defaults set).
func coreConfig(cfg Config) core.Config {
	return core.Config{
		Self:          cfg.Self,
		Members:       cfg.Members,
		Replicas:      cfg.Replicas,
		HedgeAfter:    cfg.HedgeAfter,
		ProbeInterval: cfg.ProbeInterval,
		DownAfter:     cfg.DownAfter,
		TombstoneTTL:  cfg.TombstoneTTL,
		HintBytes:     cfg.HintBytes,
		Seed:          cfg.Seed,
		Recorder:      cfg.Recorder,

		ExternalLiveness: cfg.ExternalLiveness, // liveness.go
	}
}

// Core returns the member's decision core, for tests and diagnostics; its
// state changes only through the member.
func (p *Peer) Core() *core.Core { return p.core }

// Collector returns the member's Prometheus metrics (with the default QUIC
// transport's, as Config.Registerer says), for registering on a registry of
// the caller's choice.
func (p *Peer) Collector() prometheus.Collector { return p.metrics }

// Self returns this member's address.
func (p *Peer) Self() string { return p.self }

// Members returns the current ring members, sorted.
func (p *Peer) Members() []string { return slices.Clone(p.core.Ring().Members()) }

// Owners returns the members that hold key under the current ring, owner
// first.
func (p *Peer) Owners(key []byte) []string {
	return p.core.Ring().Owners(key, p.cfg.Replicas)
}

// LocalStats returns the local store's counters.
func (p *Peer) LocalStats() store.Stats { return p.store.Stats() }

// HasLocal reports whether this member's own store holds an unexpired
// entry for key; for tests and diagnostics.
func (p *Peer) HasLocal(key []byte) bool {
	_, _, ok := p.store.Get(key)
	return ok
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return errors.New("peer: empty key")
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("peer: key of %d bytes exceeds the limit of %d", len(key), MaxKeySize)
	}
	return nil
}

// Close stops serving, waits for background work and closes the
// transport. It does not hand entries off; see Leave.
func (p *Peer) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.stopBg()
		p.wg.Wait()
		err = p.tr.Close()
		if p.cfg.Registerer != nil {
			p.cfg.Registerer.Unregister(p.metrics)
		}
		p.unregisterFollowing()
	})
	return err
}
