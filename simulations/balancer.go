// balancer.go: the load balancer in front of a strategy's fleet: random,
// round robin, least connections, sticky with failover, client-IP hash.
// Each strategy has its own, drawing from a random source seeded alike, so
// that with the same fleet state they route the same clients alike.

package simulations

import "math/rand/v2"

type balancer struct {
	w       *world
	policy  string
	r       *rand.Rand
	rr      int
	conns   []int32 // open connections per member (least_connections)
	upCache []int
	upGen   int
}

// up returns the members the balancer sends connections to, in order.
func (b *balancer) up() []int {
	if b.upGen != b.w.lbGen || b.upCache == nil {
		b.upCache = b.upCache[:0]
		for m := range b.w.n {
			if b.w.lbUp[m] {
				b.upCache = append(b.upCache, m)
			}
		}
		b.upGen = b.w.lbGen
	}
	return b.upCache
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// pick chooses a member for a connection of client id; sticky is the
// client's remembered member (-1 for none), updated for the sticky policy.
// A connection sent to a member that is dead but not yet noticed by the
// balancer fails and is retried: failures counts them.
func (b *balancer) pick(id uint64, sticky *int32) (m int, failures int) {
	up := b.up()
	if len(up) == 0 {
		return -1, 0
	}
	for attempt := 0; ; attempt++ {
		m = b.choose(id, sticky, up, attempt)
		if b.w.alive[m] || attempt >= 3 {
			break
		}
		failures++
		if b.policy == "sticky" {
			*sticky = -1
		}
	}
	if !b.w.alive[m] {
		m = -1
		for _, c := range up { // the balancer's next try: the first live member
			if b.w.alive[c] {
				m = c
				failures++
				break
			}
		}
	}
	if m >= 0 && b.policy == "least_connections" {
		b.conns[m]++ // open from now until the strategy closes it (base.opened)
	}
	return m, failures
}

func (b *balancer) choose(id uint64, sticky *int32, up []int, attempt int) int {
	switch b.policy {
	case "round_robin":
		b.rr++
		return up[b.rr%len(up)]
	case "least_connections":
		best := up[(b.rr+attempt)%len(up)] // ties rotate
		b.rr++
		for _, m := range up {
			if b.conns[m] < b.conns[best] {
				best = m
			}
		}
		return best
	case "sticky":
		if s := *sticky; s >= 0 && int(s) < b.w.n && b.w.lbUp[s] {
			return int(s)
		}
		m := up[b.r.IntN(len(up))]
		*sticky = int32(m)
		return m
	case "ip_hash":
		h := mix64(id + uint64(attempt)*0x9e3779b97f4a7c15)
		for range 20 {
			if m := int(h % uint64(b.w.n)); b.w.lbUp[m] {
				return m
			}
			h = mix64(h)
		}
		return up[h%uint64(len(up))]
	}
	return up[b.r.IntN(len(up))]
}
