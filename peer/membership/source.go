// The contract between the sources (static list, members file, DNS,
// gossip) and the code that applies their answers to a ring: a Source
// reports the full member list each time it changes, and a source that
// knows liveness (gossip) reports it through Liveness.

package membership

import "context"

// Source reports the ring's members as they change.
type Source interface {
	// Run calls update with the full member list (QUIC "host:port"
	// addresses, sorted, without duplicates) each time it changes, until
	// ctx ends; it then returns ctx.Err() (or an error that made it stop
	// earlier). update is never called concurrently and must not block
	// for long. A source that fails to read its members keeps the last
	// good list: it does not call update with an empty or partial list.
	Run(ctx context.Context, update func(members []string)) error
}

// Liveness is told, per member, what a source that knows liveness (gossip)
// learns, and what the damping learns: a member gone from the source but
// still in the ring during its grace period is reported down so that reads
// go to its replica at once.
type Liveness interface {
	// MemberDown marks member unreachable; reason says why (for logs).
	MemberDown(member string, reason error)
	// MemberUp marks member reachable again.
	MemberUp(member string)
}
