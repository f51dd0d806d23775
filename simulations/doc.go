// Package simulations is tlsring's deterministic discrete-event cluster
// simulator: it plays a scenario (members, network, workload, balancer,
// faults; see README.md in this folder for the format) in virtual time and
// compares strategies that all see the same client events: no sharing,
// tlsring, shared ticket keys and sticky balancing.
//
// What is real and what is modelled. The ring (package ring, placement
// tokens included) and the store's accounting (the sizes package
// peer/store charges, EntryOverhead, TTL expiry, tombstones) are the
// production code or follow it exactly; the member's decisions go through
// the memberLogic interface (member.go). The network (per-link latency,
// loss, partitions), member CPU (a FIFO queue per member with a number of
// cores), and handshake CPU costs (from docs/benchmarks.json, overridable)
// are models.
//
// Determinism: one seeded random source per concern (math/rand/v2 PCG),
// events ordered by time then by sequence number, no map iteration on any
// output path: the same scenario and seed give byte-identical output files.
package simulations
