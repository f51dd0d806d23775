// tlsring.go: the tlsring strategy. Each simulated member is the real
// decision core (peer/core) driven in virtual time, with its store
// modelled by simStore: the core says whom to ask, when to hedge, whether
// a read or a Take is decided, when a member is marked down and probed,
// which delayed writes to keep and deliver, how a state transfer runs and
// what moves on a membership change; this file only carries the messages
// (network model), charges the CPU (cpu model) and applies store
// operations, as package peer does with goroutines and QUIC. Placement is
// the ring's: a session's key is a token-form key carrying a placement
// token the issuing member owns (ring.PlacementToken), as tlsglue does
// through peer.PlacementToken.

package simulations

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/ring"
)

// Event kinds of the tlsring strategy.
const (
	evReq uint8 = iota + 10
	evResp
	evHedge
	evDeadline
	evWrite
	evWriteFail
	evTick
	evProbeOK
	evTransferRound
	evSyncDone
	evDelete
)

// writeTimeout is tlsglue's DefaultWriteTimeout: a write that gets no
// answer fails after it.
const writeTimeout = int64(500 * time.Millisecond)

// transferTimeout is the core's bound on one transfer part (peer's DefaultTransferTimeout).
const transferTimeout = int64(10 * time.Second)

// epoch is virtual time zero as the core sees it.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func vt(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }

// tmember is one simulated member: its core and store.
type tmember struct {
	c       *core.Core
	st      *simStore
	inc     int32 // the world's incarnation this core belongs to
	ticking bool
	gen     uint64 // transfer generation running
	round   int    // transfer parts still out this round
	// probeFails are probes sent at the last tick that will get no
	// answer: they time out after ProbeInterval, which is when the next
	// tick runs, so that tick reports them (one event, not two).
	probeFails []int32
}

// lookup is one handshake's read (or Take) of its session.
type lookup struct {
	gen       uint32
	live      bool // its deadline has not fired
	done      bool // the handshake is decided
	take      bool
	timed     bool // a deadline event is scheduled: it frees the lookup
	m         int32
	inc       int32 // m's incarnation when the lookup began
	slot      int32
	cid       uint64
	start     int64
	token     uint64
	created   int64
	penalty   int64
	rtt       int64
	tls13     bool
	rsa       bool
	offered   bool
	returning bool
	read      core.Read
	tk        core.Take
	order     []string
	asked     [8]int32
	answered  uint8
	nasked    uint8
}

type pendingWrite struct {
	token   uint64
	expires int64
	issuer  int32
	inc     int32
	del     bool
}

type tlsringStrat struct {
	base
	deadline int64
	names    []string
	idx      map[string]int32
	ring     *ring.Ring
	mem      []*tmember
	net      network
	lks      []lookup
	freeL    []int32
	wr       []pendingWrite
	freeW    []int32
	dur      sampler
	value    []byte
	size     int32
	tokRand  uint64
	keyBuf   [ring.TokenKeyLen]byte
	owners   []string
	coreCfg  core.Config
	coreRec  func(m int) core.Recorder // tests: record a member's core
}

func memberName(i int) string { return "m" + strconv.Itoa(i) }

func newTLSRing(label string, deadline time.Duration, sc *Scenario, w *world, en *engine, seed uint64, rec func(int) core.Recorder) (*tlsringStrat, error) {
	maxN := len(w.alive)
	t := &tlsringStrat{base: newBase(label, sc, w, en, seed, sc.Balancer.Policy), deadline: int64(deadline), idx: map[string]int32{}}
	t.names = make([]string, maxN)
	for i := range maxN {
		t.names[i] = memberName(i)
		t.idx[t.names[i]] = int32(i)
	}
	t.coreRec = rec
	t.dur = newSampler(sc.Workload.ConnectionDuration)
	t.net = network{w: w, lat: newSampler(sc.Network.Latency), cross: newSampler(sc.Network.CrossRack), loss: sc.Network.Loss, r: newRand(seed, 3)}
	t.size = int32(sc.Workload.SessionBytes)
	t.value = make([]byte, t.size)
	t.tokRand = seed
	t.coreCfg = core.Config{Replicas: sc.TLSRing.Replicas, HedgeAfter: sc.TLSRing.HedgeAfter.D(), ProbeInterval: sc.TLSRing.ProbeInterval.D(), DownAfter: sc.TLSRing.DownAfter}
	r, err := ring.New(t.names[:sc.Members])
	if err != nil {
		return nil, fmt.Errorf("simulations: %w", err)
	}
	t.ring = r
	t.mem = make([]*tmember, maxN)
	for i := range sc.Members {
		if err := t.start(i, false); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// start builds member m's core and an empty store. Every core shares one
// ring. A member that (re)starts during the run is built with it
// (Config.Ring), which starts its state transfer as the real member's
// does. A member present from the start is built over a one-member list
// and then given the ring (SetRing), which starts none: at time zero every
// store is empty, and 1000 members each pulling nothing from 999 others in
// 16 parts would be 16 million steps for no entry.
func (t *tlsringStrat) start(m int, transfer bool) error {
	cfg := t.coreCfg
	cfg.Self = t.names[m]
	cfg.Seed = t.tokRand ^ uint64(m+1)*0x9e3779b97f4a7c15 ^ uint64(t.w.incarnation[m])<<48
	if t.coreRec != nil {
		cfg.Recorder = t.coreRec(m)
	}
	now := vt(t.en.now)
	if transfer {
		cfg.Ring = t.ring // the one ring every core shares
	} else {
		cfg.Members = []string{cfg.Self}
	}
	c, err := core.New(cfg, now)
	if err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	if !transfer {
		c.SetRing(now, t.ring)
	}
	tm := &tmember{c: c, st: newSimStore(int64(t.sc.TLSRing.MaxBytes), int64(core.DefaultTombstoneTTL)), inc: t.w.incarnation[m]}
	t.mem[m] = tm
	if transfer {
		tm.gen = c.TransferGen()
		t.en.at(t.en.now, t, evTransferRound, int32(m), 0, int64(tm.gen))
	}
	return nil
}

func (t *tlsringStrat) key(token uint64) []byte {
	var tok [ring.TokenLen]byte
	binary.BigEndian.PutUint64(tok[:], token)
	t.keyBuf = ring.TokenKey(tok, [ring.TokenDigestLen]byte{})
	return t.keyBuf[:]
}

func (t *tlsringStrat) alive(m int32) bool {
	return t.w.alive[m] && t.mem[m] != nil && t.mem[m].inc == t.w.incarnation[m]
}

func (t *tlsringStrat) memberDown(m int) {}

// caller reports whether the member that began lookup l still runs (the
// same process, not a restarted one).
func (t *tlsringStrat) caller(l *lookup) bool {
	return t.alive(l.m) && t.mem[l.m].inc == l.inc
}

func (t *tlsringStrat) memberUp(m int) {
	t.cpus[m].reset(t.en.now)
	if err := t.start(m, true); err != nil {
		panic(err) // the member list is the one that built the ring
	}
}

func (t *tlsringStrat) membersChanged(old, n int) {
	from := t.ring
	to, err := ring.New(t.names[:n])
	if err != nil {
		panic(err)
	}
	t.ring = to
	now := t.en.now
	for i := range old {
		if !t.alive(int32(i)) {
			continue
		}
		tm := t.mem[i]
		tm.c.SetRing(vt(now), to)
		// Move each local entry as the core plans it.
		type mv struct {
			token   uint64
			expires int64
		}
		var entries []mv
		tm.st.each(now, func(k uint64, _ int32, exp int64) { entries = append(entries, mv{k, exp}) })
		var moved int64
		for _, e := range entries {
			key := t.key(e.token)
			send, drop := tm.c.Plan(from, to, key, t.owners[:0])
			ok := true
			for _, dst := range send {
				d := t.idx[dst]
				if _, reach := t.net.delay(i, int(d)); !reach || !t.alive(d) {
					ok = false
					continue
				}
				t.mem[d].st.add(e.token, t.size, e.expires, now)
				moved++
			}
			if drop && ok {
				tm.st.drop(e.token)
			}
		}
		t.cpus[i].run(now, moved*int64(t.sc.Costs.TransferItem), t.w.slow[i])
	}
	for i := old; i < n; i++ {
		if err := t.start(i, true); err != nil {
			panic(err)
		}
	}
}

func (t *tlsringStrat) memory() (mean, mx int64) {
	var sum, k int64
	for m := range t.w.n {
		if !t.alive(int32(m)) {
			continue
		}
		b := t.mem[m].st.bytes
		sum += b
		k++
		mx = max(mx, b)
	}
	if k > 0 {
		mean = sum / k
	}
	return mean, mx
}

func (t *tlsringStrat) newLookup() int32 {
	if n := len(t.freeL); n > 0 {
		id := t.freeL[n-1]
		t.freeL = t.freeL[:n-1]
		return id
	}
	t.lks = append(t.lks, lookup{})
	return int32(len(t.lks) - 1)
}

func (t *tlsringStrat) visit(c *client, slot int32, conns int, now int64) {
	tk := &t.tickets[slot]
	tk.cid = c.id
	held := *tk
	has := held.valid && now < held.created+t.life
	for i := range conns {
		offered := has && (i == 0 || *t.sc.Workload.TicketReuse)
		m, fails := t.lb.pick(c.id, &tk.sticky)
		t.rec.cur.ConnFailures += int64(fails)
		if m < 0 {
			continue
		}
		if i == 0 && c.visits > 0 {
			t.rec.cur.Returns++
		}
		id := t.newLookup()
		l := &t.lks[id]
		*l = lookup{gen: l.gen + 1, live: true, m: int32(m), inc: t.w.incarnation[m], slot: slot, cid: c.id, start: now, token: held.token, created: held.created,
			penalty: int64(fails) * int64(t.sc.Balancer.RetryAfter), rtt: c.rtt, tls13: c.tls13, rsa: c.rsa, offered: offered,
			returning: i == 0 && c.visits > 0 && has, take: t.sc.TLSRing.SingleUse}
		if !offered {
			t.finish(id, core.Pending, now)
			continue
		}
		t.startLookup(id, now)
	}
}

func (t *tlsringStrat) startLookup(id int32, now int64) {
	l := &t.lks[id]
	tm := t.mem[l.m]
	self := t.names[l.m]
	key := t.key(l.token)
	if l.take {
		order, up := tm.c.Route(core.RouteTake, key)
		l.order = order
		l.tk = core.NewTake(order, up)
		l.timed = true
		t.en.at(now+t.deadline, t, evDeadline, id, 0, int64(l.gen))
		t.askTake(id, now)
		return
	}
	order, _ := tm.c.Route(core.RouteRead, key)
	localMiss := false
	if order[0] == self {
		// The local read's CPU queues with the rest; its latency is its
		// own cost (the handshake that follows waits the queue).
		t.cpus[l.m].run(now, int64(t.sc.Costs.LookupLocal), t.w.slow[l.m])
		if tm.st.get(l.token, now) {
			t.rec.cur.Hits++
			t.finishAt(id, core.OutFound, now, now+int64(float64(t.sc.Costs.LookupLocal)*t.w.slow[l.m]))
			return
		}
		order = order[1:]
		localMiss = tm.c.LocalMissCounts()
	}
	l.read = core.NewRead(order, localMiss)
	l.order = order
	if len(order) == 0 {
		t.finish(id, l.read.Final(), now)
		return
	}
	l.timed = true
	t.en.at(now+t.deadline, t, evDeadline, id, 0, int64(l.gen))
	if len(order) > 1 {
		t.en.at(now+int64(tm.c.Hedge(core.RouteRead, time.Duration(t.deadline))), t, evHedge, id, 0, int64(l.gen))
	}
	t.askRead(id, now)
}

func (t *tlsringStrat) askRead(id int32, now int64) {
	l := &t.lks[id]
	if m, ok := l.read.Ask(); ok {
		t.send(id, m, 0, now)
	}
}

func (t *tlsringStrat) askTake(id int32, now int64) {
	l := &t.lks[id]
	m, i, ok := l.tk.Ask()
	if !ok {
		return
	}
	if t.idx[m] == l.m { // this member's own copy: served inline
		st := t.mem[l.m].st
		t.cpus[l.m].run(now, int64(t.sc.Costs.LookupLocal), t.w.slow[l.m])
		res := core.Found
		if !st.take(l.token, now) {
			res = t.missResult(l.m, l.token, now)
		}
		t.answer(id, int32(i), l.m, res, now)
		return
	}
	t.send(id, m, i, now)
	left := l.start + t.deadline - now
	t.en.at(now+int64(t.mem[l.m].c.Hedge(core.RouteTake, time.Duration(left))), t, evHedge, id, 0, int64(l.gen))
}

// send asks member m for the lookup's key; idx is its index in a Take's order.
func (t *tlsringStrat) send(id int32, m string, idx int, now int64) {
	l := &t.lks[id]
	d := t.idx[m]
	t.cpus[l.m].run(now, int64(t.sc.Costs.LookupCall), t.w.slow[l.m])
	if l.nasked < uint8(len(l.asked)) {
		l.asked[l.nasked] = d
		l.nasked++
	}
	if lat, ok := t.net.delay(int(l.m), int(d)); ok {
		t.en.at(now+lat, t, evReq, id, d, int64(l.gen)|int64(idx)<<32)
	}
}

func (t *tlsringStrat) missResult(m int32, token uint64, now int64) core.Result {
	st := t.mem[m].st
	if t.mem[m].c.Miss(vt(now), t.key(token), st.deleted(token, now)) == core.MissTransferring {
		return core.Failed
	}
	return core.NotFound
}

func (t *tlsringStrat) handle(e *event) {
	now := e.t
	switch e.kind {
	case evClose:
		if t.lb.conns[e.a] > 0 {
			t.lb.conns[e.a]--
		}
	case evReq:
		l := &t.lks[e.a]
		d := e.b
		if !t.alive(d) {
			return
		}
		end := t.cpus[d].run(now, int64(t.sc.Costs.LookupServe), t.w.slow[d])
		st := t.mem[d].st
		var hit bool
		if l.take {
			hit = st.take(l.token, now)
		} else {
			hit = st.get(l.token, now)
		}
		res := core.Found
		if !hit {
			res = t.missResult(d, l.token, now)
		}
		if lat, ok := t.net.delay(int(d), int(l.m)); ok {
			t.en.at(end+lat, t, evResp, e.a, d|int32(res)<<24, e.x)
		}
	case evResp:
		l := &t.lks[e.a]
		if l.gen != uint32(e.x) || !l.live || !t.caller(l) {
			return // the caller gave up at its deadline (and counted the call failed), or died
		}
		from := e.b & 0xffffff
		res := core.Result(e.b >> 24)
		t.answer(e.a, int32(e.x>>32), from, res, now)
	case evHedge:
		l := &t.lks[e.a]
		if l.gen != uint32(e.x) || !l.live || l.done || !t.caller(l) {
			return
		}
		if l.take {
			t.askTake(e.a, now)
		} else {
			t.askRead(e.a, now)
		}
	case evDeadline:
		l := &t.lks[e.a]
		if l.gen != uint32(e.x) || !l.live {
			return
		}
		l.live = false
		if t.caller(l) {
			for i := range l.nasked {
				if l.answered&(1<<i) == 0 {
					t.failed(l.m, l.asked[i], now)
				}
			}
		}
		switch {
		case !l.done && !t.caller(l):
			l.done = true // the member died mid-handshake: the connection is lost
			t.rec.cur.ConnFailures++
		case !l.done:
			t.rec.cur.Timeouts++
			out := core.Pending
			if l.take {
				out = l.tk.Final() // a Take that got the value before the deadline won
			}
			t.finish(e.a, out, now)
		}
		t.freeL = append(t.freeL, e.a)
	case evWrite:
		t.deliverWrite(e.b, e.a, int(e.x), now)
	case evWriteFail:
		w := t.wr[e.x]
		t.freeW = append(t.freeW, int32(e.x))
		if !t.alive(w.issuer) || t.mem[w.issuer].inc != w.inc {
			return
		}
		t.failed(w.issuer, e.a, now)
		t.hint(w.issuer, e.a, w, now)
	case evTick:
		t.tick(e.a, now)
	case evProbeOK:
		if t.alive(e.a) && t.mem[e.a].inc == int32(e.x) {
			t.ok(e.a, e.b, now)
		}
	case evTransferRound:
		t.transferRound(e.a, uint64(e.x), now)
	case evSyncDone:
		t.syncDone(e, now)
	case evDelete:
		if t.alive(e.a) {
			t.mem[e.a].st.del(uint64(e.x), now)
		}
	}
}

// answer feeds one copy's answer to the lookup's tracker.
func (t *tlsringStrat) answer(id, idx, from int32, res core.Result, now int64) {
	l := &t.lks[id]
	for i := range l.nasked {
		if l.asked[i] == from && l.answered&(1<<i) == 0 {
			l.answered |= 1 << i
			break
		}
	}
	if from != l.m {
		t.ok(l.m, from, now)
	}
	if l.done {
		return
	}
	var out core.Outcome
	if l.take {
		out = l.tk.Answer(int(idx), res)
		if out == core.Pending {
			t.askTake(id, now)
			return
		}
	} else {
		out = l.read.Answer(res)
		if out == core.Pending {
			t.askRead(id, now)
			return
		}
	}
	switch {
	case out == core.OutFound:
		t.rec.cur.Hits++
	case out == core.OutMiss:
		t.rec.cur.Misses++
	default:
		t.rec.cur.Errors++
	}
	t.finish(id, out, now)
}

func (t *tlsringStrat) finish(id int32, out core.Outcome, now int64) { t.finishAt(id, out, now, now) }

// finishAt completes the handshake of lookup id, decided at now (ready at
// ready, after a local lookup's CPU): resumed if out is OutFound.
func (t *tlsringStrat) finishAt(id int32, out core.Outcome, now, ready int64) {
	l := &t.lks[id]
	l.done = true
	if !l.timed {
		defer func() { t.freeL = append(t.freeL, id) }()
	}
	m := l.m
	resumed := out == core.OutFound
	if l.offered {
		t.rec.lookup(ready - l.start)
	}
	if l.take && resumed {
		var rest []string
		for _, r := range l.tk.Rest(rest) {
			t.sendDelete(m, t.idx[r], l.token, now)
		}
	}
	c := client{tls13: l.tls13, rsa: l.rsa, rtt: l.rtt}
	hc := t.cost(&c)
	cost := hc.Full
	if resumed {
		cost = hc.Resumed
	}
	end := t.cpus[m].run(ready, int64(cost), t.w.slow[m])
	t.rec.handshake(l.penalty+rtts(&c, resumed)+end-l.start, l.offered, resumed, l.returning)
	t.opened(int(m), end, &t.dur)
	tk := &t.tickets[l.slot]
	if tk.cid != l.cid {
		return // the client left and its slot went to another
	}
	created := now
	if resumed {
		created = l.created
	}
	if resumed && !l.tls13 && !l.take {
		return // TLS 1.2 resumption keeps the session it resumed
	}
	if !t.alive(m) {
		return
	}
	// A new session: a placement token this member owns, written to its copies.
	t.tokRand = mix64(t.tokRand + 0x9e3779b97f4a7c15)
	tok, ok := t.ring.PlacementToken(t.names[m], t.tokRand)
	if !ok {
		return
	}
	token := binary.BigEndian.Uint64(tok[:])
	expires := created + t.life
	*tk = ticket{valid: true, sticky: tk.sticky, cid: l.cid, created: created, token: token}
	t.write(m, token, expires, now)
}

// write stores a new session on its copies as peer's Set does: the local
// copy inline, the others by message, members marked down as delayed writes.
func (t *tlsringStrat) write(m int32, token uint64, expires, now int64) {
	tm := t.mem[m]
	order, up := tm.c.Route(core.RouteWrite, t.key(token))
	if up == 0 {
		up = len(order)
	}
	w := pendingWrite{token: token, expires: expires, issuer: m, inc: tm.inc}
	for i, name := range order {
		d := t.idx[name]
		switch {
		case d == m:
			t.cpus[m].run(now, int64(t.sc.Costs.LookupLocal), t.w.slow[m])
			tm.st.set(token, t.size, expires, now)
		case i >= up:
			t.hint(m, d, w, now)
		default:
			t.cpus[m].run(now, int64(t.sc.Costs.LookupCall), t.w.slow[m])
			wid := t.newWrite(w)
			if lat, ok := t.net.delay(int(m), int(d)); ok {
				t.en.at(now+lat, t, evWrite, d, m, int64(wid))
			} else {
				t.en.at(now+writeTimeout, t, evWriteFail, d, m, int64(wid))
			}
		}
	}
}

func (t *tlsringStrat) newWrite(w pendingWrite) int32 {
	if n := len(t.freeW); n > 0 {
		id := t.freeW[n-1]
		t.freeW = t.freeW[:n-1]
		t.wr[id] = w
		return id
	}
	t.wr = append(t.wr, w)
	return int32(len(t.wr) - 1)
}

func (t *tlsringStrat) deliverWrite(from, to int32, wid int, now int64) {
	w := t.wr[wid]
	t.freeW = append(t.freeW, int32(wid))
	if !t.alive(to) {
		if t.alive(from) && t.mem[from].inc == w.inc {
			t.en.at(now+writeTimeout, t, evWriteFail, to, from, int64(t.newWrite(w)))
		}
		return
	}
	t.cpus[to].run(now, int64(t.sc.Costs.LookupServe), t.w.slow[to])
	if w.del {
		t.mem[to].st.del(w.token, now)
	} else {
		t.mem[to].st.set(w.token, t.size, w.expires, now)
	}
	if t.alive(from) && t.mem[from].inc == w.inc {
		t.ok(from, to, now) // the answer's trip back is not modelled
	}
}

func (t *tlsringStrat) sendDelete(from, to int32, token uint64, now int64) {
	if lat, ok := t.net.delay(int(from), int(to)); ok {
		t.en.at(now+lat, t, evDelete, to, from, int64(token))
		return
	}
	t.hint(from, to, pendingWrite{token: token, del: true}, now)
}

// hint keeps a write for member d as a delayed write of member m's core.
func (t *tlsringStrat) hint(m, d int32, w pendingWrite, now int64) {
	tm := t.mem[m]
	var h core.Hint
	if w.del {
		h = tm.c.DeleteHintAt(vt(now))
	} else {
		h = tm.c.SetHintAt(vt(now), t.value, time.Duration(w.expires-now))
	}
	tm.c.HintAdd(vt(now), t.names[d], t.key(w.token), h)
	t.wake(m)
}

// ok reports an answered call from m to d to m's core.
func (t *tlsringStrat) ok(m, d int32, now int64) {
	tm := t.mem[m]
	if tm.c.CallOK(vt(now), t.names[d]) {
		t.deliverHints(m, d, now)
		if tm.gen != 0 && tm.round == 0 {
			t.en.at(now, t, evTransferRound, m, 0, int64(tm.gen))
		}
	}
}

// failed reports a timed-out call from m to d to m's core.
func (t *tlsringStrat) failed(m, d int32, now int64) {
	if t.mem[m].c.CallFailed(vt(now), t.names[d], true, "timeout") {
		t.wake(m)
	}
}

// wake makes sure m's core is ticked while it has members down or delayed writes.
func (t *tlsringStrat) wake(m int32) {
	tm := t.mem[m]
	if tm.ticking {
		return
	}
	tm.ticking = true
	t.en.at(int64(tm.c.NextTick().Sub(epoch)), t, evTick, m, 0, int64(tm.inc))
}

func (t *tlsringStrat) tick(m int32, now int64) {
	if !t.alive(m) {
		return
	}
	tm := t.mem[m]
	// A probe of a member marked down that gets no answer changes nothing
	// in the core but the error text it keeps for readiness; at 1000
	// members with one dead, reporting each would be most of the run's
	// work, so only probes of members no longer marked down are reported.
	for _, pd := range tm.probeFails {
		if !tm.c.IsDown(t.names[pd]) {
			t.failed(m, pd, now)
		}
	}
	tm.probeFails = tm.probeFails[:0]
	d := tm.c.Tick(vt(now))
	for _, p := range d.Probe {
		pd := t.idx[p]
		l1, ok1 := t.net.delay(int(m), int(pd))
		l2, ok2 := t.net.delay(int(pd), int(m))
		if ok1 && ok2 {
			t.en.at(now+l1+l2, t, evProbeOK, m, pd, int64(tm.inc))
		} else {
			tm.probeFails = append(tm.probeFails, pd)
		}
	}
	for _, p := range d.Deliver {
		t.deliverHints(m, t.idx[p], now)
	}
	if len(d.Probe) == 0 && len(d.Deliver) == 0 && len(tm.probeFails) == 0 && len(tm.c.HintsPending()) == 0 {
		tm.ticking = false
		return
	}
	t.en.at(int64(tm.c.NextTick().Sub(epoch)), t, evTick, m, 0, int64(tm.inc))
}

// deliverHints runs a delivery of m's delayed writes to d, at once.
func (t *tlsringStrat) deliverHints(m, d int32, now int64) {
	tm := t.mem[m]
	name := t.names[d]
	if !tm.c.HintsClaim(vt(now), name) {
		return
	}
	dl := tm.c.HintsTake(vt(now), name)
	_, reach := t.net.delay(int(m), int(d))
	if !reach || !t.alive(d) {
		var back []core.HintEntry
		for _, s := range dl.Sets {
			back = append(back, s.Entry())
		}
		back = append(back, dl.Deletes...)
		tm.c.HintsReturn(vt(now), name, back)
		if len(back) > 0 {
			t.failed(m, d, now) // the delivery's call got no answer
		}
	} else {
		st := t.mem[d].st
		for _, s := range dl.Sets {
			st.add(tokenOf(s.Key), t.size, now+int64(s.TTL), now)
		}
		for _, h := range dl.Deletes {
			st.del(tokenOf(h.Key), now)
		}
		t.cpus[d].run(now, int64(len(dl.Sets)+len(dl.Deletes))*int64(t.sc.Costs.TransferItem), t.w.slow[d])
	}
	for _, h := range dl.Local {
		if !h.Hint.Del {
			tm.st.add(tokenOf(h.Key), t.size, int64(h.Hint.Expires.Sub(epoch)), now)
		}
	}
	tm.c.HintsDone(vt(now), name)
}

func tokenOf(key string) uint64 {
	if len(key) != ring.TokenKeyLen {
		return 0
	}
	return binary.BigEndian.Uint64([]byte(key[1 : 1+ring.TokenLen]))
}

// transferRound asks for one round of member m's state transfer: each
// other member sends the entries of the asked parts that m holds a copy
// of; one sync per member carries all its parts of the round.
func (t *tlsringStrat) transferRound(m int32, gen uint64, now int64) {
	if !t.alive(m) || t.mem[m].gen != gen || t.mem[m].round > 0 {
		return
	}
	tm := t.mem[m]
	parts := tm.c.TransferRound(vt(now), gen)
	if len(parts) == 0 {
		t.roundEnd(m, gen, now)
		return
	}
	tm.round = len(parts)
	for i := 0; i < len(parts); {
		j := i
		for j < len(parts) && parts[j].Member == parts[i].Member {
			j++
		}
		src := t.idx[parts[i].Member]
		want := uint32(0)
		for _, p := range parts[i:j] {
			want |= 1 << p.Part
		}
		l1, ok1 := t.net.delay(int(m), int(src))
		l2, ok2 := t.net.delay(int(src), int(m))
		if !ok1 || !ok2 || !t.alive(src) {
			t.en.at(now+transferTimeout, t, evSyncDone, m, src, int64(gen)<<32|int64(want)|1<<31)
		} else {
			n := t.countSync(src, m, want, now)
			cost := int64(n) * int64(t.sc.Costs.TransferItem)
			t.cpus[src].run(now, cost, t.w.slow[src])
			t.en.at(now+l1+l2+cost, t, evSyncDone, m, src, int64(gen)<<32|int64(want))
		}
		i = j
	}
}

// countSync counts what src would send m for the parts in want.
func (t *tlsringStrat) countSync(src, m int32, want uint32, now int64) int {
	n := 0
	t.syncEntries(src, m, want, now, func(uint64, int64) { n++ })
	return n
}

func (t *tlsringStrat) syncEntries(src, m int32, want uint32, now int64, fn func(token uint64, expires int64)) {
	name := t.names[m]
	t.mem[src].st.each(now, func(k uint64, _ int32, exp int64) {
		key := t.key(k)
		if want&(1<<core.PartOf(key, core.TransferParts)) == 0 {
			return
		}
		for _, o := range t.ring.Owners(key, t.sc.TLSRing.Replicas) {
			if o == name {
				fn(k, exp)
				return
			}
		}
	})
}

func (t *tlsringStrat) syncDone(e *event, now int64) {
	m, src := e.a, e.b
	gen := uint64(e.x) >> 32
	want := uint32(e.x) &^ (1 << 31)
	failed := e.x&(1<<31) != 0
	if !t.alive(m) || t.mem[m].gen != gen {
		return
	}
	tm := t.mem[m]
	errMsg := ""
	if failed || !t.alive(src) {
		errMsg = "timeout"
		t.failed(m, src, now)
	} else {
		var got []struct {
			k   uint64
			exp int64
		}
		t.syncEntries(src, m, want, now, func(k uint64, exp int64) {
			got = append(got, struct {
				k   uint64
				exp int64
			}{k, exp})
		})
		for _, g := range got {
			tm.st.add(g.k, t.size, g.exp, now)
		}
		t.cpus[m].run(now, int64(len(got))*int64(t.sc.Costs.TransferItem), t.w.slow[m])
		t.ok(m, src, now)
	}
	for p := range core.TransferParts {
		if want&(1<<p) != 0 {
			tm.c.TransferPartDone(vt(now), gen, core.Part{Member: t.names[src], Part: p}, errMsg)
			tm.round--
		}
	}
	if tm.round == 0 {
		t.roundEnd(m, gen, now)
	}
}

func (t *tlsringStrat) roundEnd(m int32, gen uint64, now int64) {
	tm := t.mem[m]
	d := tm.c.TransferRoundEnd(vt(now), gen)
	if d.Done {
		tm.gen = 0
		return
	}
	t.en.at(now+int64(d.Wait), t, evTransferRound, m, 0, int64(gen))
}
