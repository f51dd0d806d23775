// Package gossip is a membership source on hashicorp/memberlist: members
// find each other through seed addresses and SWIM (probes, indirect
// probes, suspicion that the suspect refutes if alive, dead members
// reaped), and the ring follows what gossip knows (membership.Source).
// What memberlist learns of liveness (suspect, alive again, dead) goes to
// a membership.Liveness, the peer's one notion of "down".
//
// Gossip is authenticated as strongly as the data path: memberlist talks
// over QUIC with mutual TLS (transport.go), with the same cluster
// certificate, CA and authorization callback as the peer protocol, on a
// gossip address of its own with its own ALPN. A party without a
// certificate of the cluster CA completes no handshake: it cannot join,
// read the member list or claim to be anybody. memberlist's own
// encryption (SecretKey) is not used: TLS 1.3 already encrypts and
// authenticates every packet and stream. Any holder of a cluster
// certificate can join, as on the data path; within the cluster a member
// is trusted to advertise its own data address (the data path's
// authorization then checks that its certificate names that host).
//
// Each member's memberlist node is named by its data-path QUIC address,
// and its metadata carries that address (meta.go); the source reports the
// data addresses of the members alive or suspect.
package gossip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/peer/membership"
)

// Defaults for Config's zero values.
const (
	// DefaultProbeInterval is memberlist's LAN probe interval.
	DefaultProbeInterval = time.Second
	// DefaultJoinRetry is how often joining is retried while no seed
	// answers.
	DefaultJoinRetry = time.Second
)

// leaveLinger is how many gossip intervals Leave goes on gossiping after
// it queued the news.
const leaveLinger = 5

// udpBufferSize bounds memberlist's packets, so that one fits a QUIC
// datagram at the smallest packet size QUIC allows (1200 bytes); a larger
// one would go on a stream.
const udpBufferSize = 1100

// Config configures a Gossip member. Listen, Member and TLS are required.
type Config struct {
	// Listen is the UDP "ip:port" gossip listens on; other members reach
	// this one there, so the IP must be theirs to dial (no wildcard).
	// Port 0 picks a free port: read it back with Addr.
	Listen string
	// Member is this member's data-path QUIC address, its name in the
	// ring; gossip carries it to the others.
	Member string
	// Seeds are gossip addresses ("host:port") of members to join
	// through; one that answers is enough. Empty, or only this member's
	// own address: this member starts a cluster. Joining is retried every
	// JoinRetry until a seed answers.
	Seeds []string
	// TLS is the cluster TLS of the data path: this member's certificate
	// (Certificates) and the cluster CA (RootCAs, ClientCAs). It is
	// cloned, never modified. Seeds are dialled with ServerName set to
	// their host, so certificates need that IP or DNS SAN.
	TLS *tls.Config
	// Authorize, if set, is asked about every certificate of the cluster
	// CA on every gossip connection, both ways (a deny list of retired
	// certificates); an error refuses the connection.
	Authorize func(leaf *x509.Certificate) error
	// Liveness, if not nil, is told when a member turns suspect
	// (MemberDown), is alive again (MemberUp) or is declared dead or
	// leaves (MemberDown). SetLiveness sets it later.
	Liveness membership.Liveness
	// ProbeInterval is memberlist's probe interval; the probe timeout is
	// half of it and the gossip interval a fifth. Detecting a failure
	// takes about ProbeInterval x (1 + SuspicionMult x log10(members)),
	// less with confirmations from others. 0 = DefaultProbeInterval (1s).
	ProbeInterval time.Duration
	// SuspicionMult scales how long a suspect member has to refute before
	// it is declared dead. 0 = memberlist's default (4).
	SuspicionMult int
	// JoinRetry is how often joining is retried while no seed answers.
	// 0 = DefaultJoinRetry (1s).
	JoinRetry time.Duration
	// Logger receives membership events; memberlist's own log lines go to
	// it too, at their levels. nil = slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics (tlsring_membership_gossip_*).
	// nil = not registered (see Collector).
	Registerer prometheus.Registerer
	// Memberlist, if set, is called with memberlist's configuration last,
	// to tune what Config does not expose. Transport, Name, Delegate,
	// Events, Ping and Logger must be left alone.
	Memberlist func(*memberlist.Config)
}

// Gossip is a member of a gossip cluster and a membership.Source.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	tr      *quicTransport
	ml      *memberlist.Memberlist
	metrics *metrics
	seeds   []string
	// reapAfter is how long memberlist remembers dead members.
	reapAfter time.Duration

	joined   chan struct{} // closed once a seed answered (or there were none)
	joinOnce sync.Once

	mu       sync.Mutex
	members  []string            // data addresses of alive and suspect members, sorted
	changed  chan struct{}       // closed and replaced when members changes
	state    map[string]bool     // data address -> suspect, as last reported
	addrs    map[string]meta     // node name -> its metadata
	suspects map[string]bool     // node names this member's probes failed, until one succeeds
	gone     map[string]goneInfo // dead or left, until reaped, by node name
	liveness membership.Liveness

	meta      atomic.Pointer[[]byte] // this member's metadata (meta.go)
	kick      chan struct{}          // memberlist saw a change: look now
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type goneInfo struct {
	addr  string
	state memberlist.NodeStateType // StateDead or StateLeft
	at    time.Time
}

var _ membership.Source = (*Gossip)(nil)

// New starts gossiping on cfg.Listen and joins through cfg.Seeds in the
// background (Joined says when that happened). Close stops it; Leave
// first tells the others.
func New(cfg Config) (*Gossip, error) {
	if cfg.Member == "" {
		return nil, errors.New("gossip: Config.Member is empty; set it to this member's data-path host:port")
	}
	if err := checkAddr(cfg.Member); err != nil {
		return nil, fmt.Errorf("gossip: Config.Member %q: %w", cfg.Member, err)
	}
	if cfg.ProbeInterval < 0 || cfg.JoinRetry < 0 || cfg.SuspicionMult < 0 {
		return nil, errors.New("gossip: Config.ProbeInterval, JoinRetry and SuspicionMult must not be negative")
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.JoinRetry == 0 {
		cfg.JoinRetry = DefaultJoinRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Gossip{
		cfg:      cfg,
		log:      cfg.Logger.With("member", cfg.Member),
		metrics:  newMetrics(cfg.Member),
		joined:   make(chan struct{}),
		changed:  make(chan struct{}),
		state:    map[string]bool{},
		addrs:    map[string]meta{},
		suspects: map[string]bool{},
		gone:     map[string]goneInfo{},
		liveness: cfg.Liveness,
		kick:     make(chan struct{}, 1),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g.metrics); err != nil {
			return nil, fmt.Errorf("gossip: registering metrics: %w", err)
		}
	}
	tr, err := listen(cfg.Listen, cfg.TLS, cfg.Authorize, g.log, g.metrics)
	if err != nil {
		g.unregister()
		return nil, err
	}
	g.tr = tr
	for _, s := range cfg.Seeds {
		if s != tr.addr && s != cfg.Listen {
			g.seeds = append(g.seeds, s)
		}
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Member
	mc.Transport = tr
	m := encodeMeta(meta{addr: cfg.Member})
	g.meta.Store(&m)
	mc.Delegate = delegate{&g.meta}
	mc.Events = events{g}
	mc.Ping = events{g}
	mc.Logger = log.New(logWriter{log: g.log, suspect: g.suspected}, "", 0)
	mc.UDPBufferSize = udpBufferSize
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeInterval / 2
	mc.GossipInterval = max(cfg.ProbeInterval/5, time.Millisecond)
	// A member restarted on another gossip port keeps its name (its data
	// address): let it reclaim the name soon after it was declared dead.
	mc.DeadNodeReclaimTime = 5 * cfg.ProbeInterval
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	if cfg.Memberlist != nil {
		cfg.Memberlist(mc)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		tr.Shutdown()
		g.unregister()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ml = ml
	g.reapAfter = mc.GossipToTheDeadTime
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.refresh()
	g.wg.Add(2)
	go g.joinLoop()
	go g.watch()
	g.log.Info("gossip: listening", "gossip", tr.addr, "seeds", g.seeds)
	return g, nil
}

func (g *Gossip) unregister() {
	if g.cfg.Registerer != nil {
		g.cfg.Registerer.Unregister(g.metrics)
	}
}

// Addr returns the gossip address, with the real port.
func (g *Gossip) Addr() string { return g.tr.addr }

// Collector returns the gossip metrics, for registering on a registry of
// the caller's choice.
func (g *Gossip) Collector() prometheus.Collector { return g.metrics }

// SetLiveness sets the Liveness told of suspect, alive and dead members
// from now on (for a peer created after its membership source).
func (g *Gossip) SetLiveness(l membership.Liveness) {
	g.mu.Lock()
	g.liveness = l
	g.mu.Unlock()
}

// Joined is closed once a seed answered, or at once without seeds.
func (g *Gossip) Joined() <-chan struct{} { return g.joined }

// Members returns the data addresses of the members gossip knows alive or
// suspect, this one included, sorted.
func (g *Gossip) Members() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.members)
}

// Run calls update with the members (Members) once this member has
// joined, then each time they change, until ctx ends or the member is
// closed. It implements membership.Source.
func (g *Gossip) Run(ctx context.Context, update func(members []string)) error {
	select {
	case <-g.joined:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.ctx.Done():
		return errors.New("gossip: closed")
	}
	var last []string
	for first := true; ; first = false {
		g.mu.Lock()
		cur, ch := g.members, g.changed
		g.mu.Unlock()
		if first || !slices.Equal(cur, last) {
			update(slices.Clone(cur))
			last = cur
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.ctx.Done():
			return errors.New("gossip: closed")
		case <-ch:
		}
	}
}

// joinLoop joins through the seeds, retrying every JoinRetry until one
// answers.
func (g *Gossip) joinLoop() {
	defer g.wg.Done()
	if len(g.seeds) == 0 {
		g.joinOnce.Do(func() { close(g.joined) })
		return
	}
	t := time.NewTicker(g.cfg.JoinRetry)
	defer t.Stop()
	for {
		n, err := g.ml.Join(g.seeds)
		if n > 0 {
			g.log.Info("gossip: joined", "seeds_answering", n, "members", g.ml.NumMembers())
			g.joinOnce.Do(func() { close(g.joined) })
			g.poke()
			return
		}
		g.log.Warn("gossip: no seed answered; retrying", "seeds", g.seeds, "retry", g.cfg.JoinRetry, "err", err)
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poke makes watch look at memberlist's state now.
func (g *Gossip) poke() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// watch follows memberlist's state: on every event memberlist reports (and
// each suspicion logWriter sees), and every half probe interval in case.
func (g *Gossip) watch() {
	defer g.wg.Done()
	t := time.NewTicker(max(g.cfg.ProbeInterval/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.kick:
		case <-t.C:
		}
		g.refresh()
	}
}

// refresh reads memberlist's members, updates the list, tells Liveness of
// every change of state, and counts. Only node names are read from
// memberlist.Members (the other fields of the nodes it returns change
// under its lock); addresses come from the events, suspicion from this
// member's own failed probes (logWriter) until a probe succeeds again.
func (g *Gossip) refresh() {
	nodes := g.ml.Members() // alive and suspect
	type event struct {
		addr string
		up   bool
		why  error
	}
	var evs []event
	g.mu.Lock()
	now := make(map[string]bool, len(nodes)) // data address -> suspect
	alive, suspect := 0, 0
	for _, n := range nodes {
		md, ok := g.addrs[n.Name]
		if !ok {
			continue // no usable metadata (logged by the event)
		}
		addr := md.addr
		sus := g.suspects[n.Name]
		if sus {
			suspect++
		} else {
			alive++
		}
		now[addr] = now[addr] || sus
	}
	for addr, sus := range now {
		prev, had := g.state[addr]
		switch {
		case addr == g.cfg.Member:
		case sus && (!had || !prev):
			evs = append(evs, event{addr, false, ErrSuspect})
		case !sus && (!had || prev):
			evs = append(evs, event{addr, true, nil})
		}
	}
	for addr := range g.state {
		if _, ok := now[addr]; !ok && addr != g.cfg.Member {
			why := ErrDead
			for _, gi := range g.gone {
				if gi.addr == addr && gi.state == memberlist.StateLeft {
					why = ErrLeft
				}
			}
			evs = append(evs, event{addr, false, why})
		}
	}
	g.state = now
	list := make([]string, 0, len(now))
	for addr := range now {
		list = append(list, addr)
	}
	slices.Sort(list)
	if !slices.Equal(list, g.members) {
		g.members = list
		close(g.changed)
		g.changed = make(chan struct{})
	}
	dead := 0
	reap := time.Now().Add(-g.reapAfter)
	for name, gi := range g.gone {
		if gi.at.Before(reap) {
			delete(g.gone, name)
			delete(g.addrs, name)
		} else if gi.state == memberlist.StateDead {
			dead++
		}
	}
	l := g.liveness
	g.mu.Unlock()
	g.metrics.members.WithLabelValues("alive").Set(float64(alive))
	g.metrics.members.WithLabelValues("suspect").Set(float64(suspect))
	g.metrics.members.WithLabelValues("dead").Set(float64(dead))
	if l == nil {
		return
	}
	for _, e := range evs {
		if e.up {
			l.MemberUp(e.addr)
		} else {
			l.MemberDown(e.addr, e.why)
		}
	}
}

// suspected is told by logWriter that this member's probes of the node
// named name failed: memberlist now suspects it (it has no event for
// that).
func (g *Gossip) suspected(name string) {
	g.mu.Lock()
	_, known := g.addrs[name]
	was := g.suspects[name]
	if known && !was {
		g.suspects[name] = true
	}
	g.mu.Unlock()
	if known && !was {
		g.log.Warn("gossip: member suspect: its probes failed; reads go to its replica", "remote", name)
		g.poke()
	}
}

// answered is told that a probe of the node named name succeeded.
func (g *Gossip) answered(name string) {
	g.mu.Lock()
	was := g.suspects[name]
	delete(g.suspects, name)
	g.mu.Unlock()
	if was {
		g.metrics.refutations.Inc()
		g.log.Info("gossip: suspect member answering again", "remote", name)
		g.poke()
	}
}

// Reasons given to Liveness.MemberDown, for errors.Is: a member this
// one's probes failed (suspect), one gossip declared dead, one that left.
var (
	ErrSuspect = errors.New("gossip: suspect (its probes failed; it has a moment to refute)")
	ErrDead    = errors.New("gossip: declared dead")
	ErrLeft    = errors.New("gossip: left the cluster")
)

// Leave tells the other members that this one leaves, waiting at most
// until ctx ends for the news to go out, then closes. Members that heard
// drop it at once instead of suspecting it first.
func (g *Gossip) Leave(ctx context.Context) error {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	// Say first that this member is leaving, and give that a few gossip
	// rounds to spread, so that the others count its going as a leave,
	// not a failure (best effort: a member that hears the goodbye first
	// counts a death), then leave.
	m := encodeMeta(meta{addr: g.cfg.Member, leaving: true})
	g.meta.Store(&m)
	err := g.ml.UpdateNode(max(timeout/2, 0))
	g.tr.flush(ctx)
	spread := time.NewTimer(leaveLinger * g.cfg.ProbeInterval / 5)
	select {
	case <-spread.C:
	case <-ctx.Done():
	}
	spread.Stop()
	if err == nil {
		err = g.ml.Leave(max(timeout/2, 0))
	}
	// memberlist has queued the news; let it leave the sockets and the
	// gossip rounds after spread it, as serf's LeavePropagateDelay does.
	g.tr.flush(ctx)
	linger := time.NewTimer(leaveLinger * g.cfg.ProbeInterval / 5)
	select {
	case <-linger.C:
	case <-ctx.Done():
	}
	linger.Stop()
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gossip: leaving: %w", err)
	}
	return nil
}

// Close stops gossiping at once, without telling the others (they will
// find this member dead), and waits for its goroutines.
func (g *Gossip) Close() error {
	var err error
	g.closeOnce.Do(func() {
		g.cancel()
		err = g.ml.Shutdown()
		g.wg.Wait()
		g.unregister()
	})
	return err
}

// events receives memberlist's notifications. They are called while
// memberlist holds its locks, so they only record and wake watch.
type events struct{ g *Gossip }

func (e events) NotifyJoin(n *memberlist.Node) {
	g := e.g
	if n.Name != g.cfg.Member {
		g.metrics.joins.Inc()
		g.log.Info("gossip: member joined", "remote", n.Name, "gossip", n.Address())
		g.tr.warm(n.Address())
	}
	e.learn(n)
}

func (e events) NotifyUpdate(n *memberlist.Node) { e.learn(n) }

// learn records the data address n's metadata carries.
func (e events) learn(n *memberlist.Node) {
	g := e.g
	md, err := decodeMeta(n.Meta)
	g.mu.Lock()
	if err == nil {
		g.addrs[n.Name] = md
	} else {
		delete(g.addrs, n.Name)
	}
	delete(g.gone, n.Name)
	delete(g.suspects, n.Name)
	g.mu.Unlock()
	if err != nil {
		g.log.Warn("gossip: ignoring a member with bad metadata", "node", n.Name, "gossip", n.Address(), "err", err)
	}
	g.poke()
}

func (e events) NotifyLeave(n *memberlist.Node) {
	g := e.g
	g.mu.Lock()
	md, ok := g.addrs[n.Name]
	if !ok {
		md.addr = n.Name
	}
	state, reason := memberlist.StateDead, "dead"
	if md.leaving {
		state, reason = memberlist.StateLeft, "left"
	}
	g.gone[n.Name] = goneInfo{addr: md.addr, state: state, at: time.Now()}
	delete(g.suspects, n.Name)
	g.mu.Unlock()
	if n.Name != g.cfg.Member {
		g.metrics.leaves.WithLabelValues(reason).Inc()
		g.log.Warn("gossip: member gone", "remote", n.Name, "gossip", n.Address(), "reason", reason)
	}
	g.poke()
}

// NotifyPingComplete is memberlist's PingDelegate: a probe succeeded.
func (e events) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	e.g.answered(n.Name)
}

// AckPayload is memberlist's PingDelegate: no payload.
func (events) AckPayload() []byte { return nil }

// delegate gives memberlist this member's metadata; tlsring sends no user
// messages or state of its own over gossip.
type delegate struct{ meta *atomic.Pointer[[]byte] }

func (d delegate) NodeMeta(limit int) []byte {
	m := *d.meta.Load()
	if len(m) > limit {
		return nil // cannot happen: checkAddr bounds the address
	}
	return m
}
func (delegate) NotifyMsg([]byte)                           {}
func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}
