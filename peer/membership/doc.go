// Package membership finds a ring's members and applies them to a peer.
//
// A Source reports the full member list each time it changes: Static (a
// fixed list), File (a members file re-read on a signal), DNS (SRV, or A
// and AAAA with a port, polled), and gossip. Follow runs a source and
// applies its lists to a Target (a *peer.Peer) through a Damper: a member
// that appears joins the ring at once; one that disappears is reported down
// to a Liveness at once (reads go to its replica) but stays in the ring for
// a grace period, and its ranges move only if it is still gone then, so a
// flapping member, a restart or a partial DNS answer moves nothing. Lists
// that are empty or lack this member are refused: a member leaves the ring
// by leaving, not because a source forgot it.
//
// Metrics (tlsring_membership_*) count members by state, joins, leaves,
// flaps damped and source errors.
package membership
