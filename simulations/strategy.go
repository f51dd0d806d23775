// strategy.go: what a strategy is, the client-side tickets they keep, and
// the three strategies that need no ring: no sharing (each member resumes
// only its own tickets), sticky balancing (the same, behind a sticky
// balancer), and shared ticket keys (stateless: any member resumes any
// ticket sealed under a key it still holds).

package simulations

// strategy is one fleet, run against every client visit.
type strategy interface {
	name() string
	visit(c *client, slot int32, conns int, now int64)
	grow(n int)        // the client table grew to n slots
	forget(slot int32) // a new client took slot
	memberDown(m int)
	memberUp(m int)
	membersChanged(old, n int)
	memory() (mean, max int64) // store bytes per live member
	recorder() *recorder
	cpuBusy() int64
}

// ticket is what a client holds from one strategy's fleet.
type ticket struct {
	valid   bool
	sticky  int32 // the sticky balancer's member for this client, -1 none
	issuer  int32
	inc     int32 // the issuer's incarnation (a restart loses its ticket key)
	created int64 // the session's first full handshake: it expires Lifetime after
	issued  int64 // when this ticket was sealed (stateless key rotation)
	token   uint64
	cid     uint64 // the client holding it (slots are reused)
}

// base holds what every strategy has.
type base struct {
	label   string
	sc      *Scenario
	w       *world
	en      *engine
	lb      *balancer
	cpus    []cpu
	rec     recorder
	tickets []ticket
	life    int64
}

func newBase(label string, sc *Scenario, w *world, en *engine, seed uint64, policy string) base {
	maxN := len(w.alive)
	return base{
		label: label, sc: sc, w: w, en: en,
		lb:   &balancer{w: w, policy: policy, r: newRand(seed, 2), conns: make([]int32, maxN)},
		cpus: newCPUs(maxN, sc.Cores),
		life: int64(sc.Workload.SessionLifetime),
	}
}

func (b *base) name() string              { return b.label }
func (b *base) recorder() *recorder       { return &b.rec }
func (b *base) forget(slot int32)         { b.tickets[slot] = ticket{sticky: -1} }
func (b *base) memory() (int64, int64)    { return 0, 0 }
func (b *base) membersChanged(old, n int) {}

func (b *base) grow(n int) {
	for len(b.tickets) < n {
		b.tickets = append(b.tickets, ticket{sticky: -1})
	}
}

func (b *base) cpuBusy() int64 {
	var s int64
	for i := range b.cpus {
		s += b.cpus[i].busy
	}
	return s
}

func (b *base) memberDown(m int) {}

func (b *base) memberUp(m int) { b.cpus[m].reset(b.en.now) }

// cost returns the handshake's CPU by the client's TLS version and the
// certificate type.
func (b *base) cost(c *client) *HandshakeCost {
	switch {
	case c.tls13 && c.rsa:
		return b.sc.Costs.TLS13RSA
	case c.tls13:
		return b.sc.Costs.TLS13ECDSA
	case c.rsa:
		return b.sc.Costs.TLS12RSA
	}
	return b.sc.Costs.TLS12ECDSA
}

// rtts is the client's share of a handshake's latency: TLS 1.3 takes one
// round trip either way; TLS 1.2 two for a full handshake, one resumed.
func rtts(c *client, resumed bool) int64 {
	if c.tls13 || resumed {
		return c.rtt
	}
	return 2 * c.rtt
}

// connEvent kinds shared by strategies.
const evClose uint8 = 200

// opened schedules the close of a connection to m (counted open since the
// balancer picked m) for least_connections.
func (b *base) opened(m int, end int64, dur *sampler) {
	if b.lb.policy != "least_connections" {
		return
	}
	b.en.at(end+dur.draw(b.lb.r), closer{b}, evClose, int32(m), 0, 0)
}

type closer struct{ b *base }

func (c closer) handle(e *event) {
	if c.b.lb.conns[e.a] > 0 {
		c.b.lb.conns[e.a]--
	}
}

// simple is the no sharing, sticky and stateless strategies.
type simple struct {
	base
	stateless bool
	dur       sampler
}

func newSimple(kind string, sc *Scenario, w *world, en *engine, seed uint64) *simple {
	policy := sc.Balancer.Policy
	if kind == StratSticky {
		policy = "sticky"
	}
	s := &simple{base: newBase(kind, sc, w, en, seed, policy), stateless: kind == StratStateless}
	s.dur = newSampler(sc.Workload.ConnectionDuration)
	return s
}

func (s *simple) visit(c *client, slot int32, conns int, now int64) {
	t := &s.tickets[slot]
	held := *t
	has := held.valid && now < held.created+s.life
	for i := range conns {
		offered := has && (i == 0 || *s.sc.Workload.TicketReuse)
		m, fails := s.lb.pick(c.id, &t.sticky)
		s.rec.cur.ConnFailures += int64(fails)
		if m < 0 {
			continue // no member up: the connection fails
		}
		resumed := false
		if offered {
			if s.stateless {
				keyAge := now/int64(s.sc.Stateless.Rotation) - held.issued/int64(s.sc.Stateless.Rotation)
				resumed = keyAge < int64(s.sc.Stateless.KeysKept)
			} else {
				resumed = int(held.issuer) == m && held.inc == s.w.incarnation[m]
			}
		}
		hc := s.cost(c)
		cost := hc.Full
		if resumed {
			cost = hc.Resumed
			if s.stateless {
				cost = hc.Stateless
			}
		}
		end := s.cpus[m].run(now, int64(cost), s.w.slow[m])
		lat := int64(fails)*int64(s.sc.Balancer.RetryAfter) + rtts(c, resumed) + end - now
		if i == 0 && c.visits > 0 {
			s.rec.cur.Returns++
		}
		s.rec.handshake(lat, offered, resumed, i == 0 && c.visits > 0 && has)
		s.opened(m, end, &s.dur)
		// The client keeps the newest ticket: TLS 1.3 issues one per
		// handshake, TLS 1.2 keeps the session it resumed.
		created := now
		if resumed {
			created = held.created
		}
		*t = ticket{valid: true, sticky: t.sticky, issuer: int32(m), inc: s.w.incarnation[m], created: created, issued: now}
	}
}
