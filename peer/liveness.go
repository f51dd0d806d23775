// Liveness from outside: a membership source that knows which members are
// alive (gossip) tells the member through MemberDown and MemberUp
// (membership.Liveness), and so does the damping while a member gone from
// its source waits out its grace period. With Config.ExternalLiveness the
// source is the only judge: failed calls and the member's own probes no
// longer mark anyone down or up (the core's ExternalLiveness), so there is
// one notion of "down". Without it, the source's word is one more input
// next to the calls and probes.

package peer

// MemberDown marks member down: reads ask its copies elsewhere first and
// writes for it wait as delayed writes until it is up. reason is logged
// and shown by readiness. It implements membership.Liveness.
func (p *Peer) MemberDown(member string, reason error) {
	p.health.liveness(member, false, reason)
}

// MemberUp marks member up again: delayed writes for it go out and a state
// transfer waiting for it asks it again. It implements
// membership.Liveness.
func (p *Peer) MemberUp(member string) {
	p.health.liveness(member, true, nil)
}
