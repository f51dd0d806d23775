// Package core holds the decisions of a ring member, separated from its
// I/O: which copy of a key to ask first and when to hedge, when a member is
// marked down and probed back, whether a Take wins, what a miss answers
// while a state transfer runs, how delayed writes are bounded and
// rerouted, how a state transfer is scheduled and retried, and what moves
// on a membership change. It is a deterministic state machine in the
// manner of go.etcd.io/raft: no goroutines, no clock, no global random
// source, no network. Time comes in with every event (a now time.Time,
// wall clock or virtual), randomness from a source seeded by Config.Seed,
// and every decision comes back as a value the driver acts on.
//
// Two drivers use it. The real member (package peer) keeps one Core and
// calls it from its goroutines, which do the calls over the transport and
// run the timers; a Core is safe for concurrent use, and every event is
// applied atomically. A simulator keeps one Core per simulated member,
// calls it from a single goroutine with virtual time, and performs the
// actions itself (it delivers a call by scheduling its answer in virtual
// time). Nothing in a Core blocks or allocates per member on the hot path.
//
// # Driving a Core
//
// Build one with New(cfg, now). A simulator builds the ring once and
// passes it as Config.Ring to every core (rings are immutable), gives each
// core its own Seed drawn from the run's seeded source, and uses SetRing
// for membership changes likewise. Then, for each member operation:
//
//   - Get: order, _ := c.Route(RouteRead, key). If order[0] is Self,
//     read the local store first; on a local miss, skip it and tell
//     NewRead whether that miss counts (c.LocalMissCounts()). Drive the
//     Read tracker: r.Ask() for the first copy, arm one timer of
//     c.Hedge(RouteRead, left); when it fires, r.Ask() again; on each
//     answer, r.Answer(result): Pending means r.Ask() the next copy (if
//     any), any other Outcome ends the Get.
//   - Set / Delete: order, up := c.Route(RouteWrite, key); write
//     order[:up] (all of them when up is 0), the local copy first and
//     inline; keep a delayed write (c.HintAdd) for order[up:] and for every
//     copy whose call failed with a retriable error.
//   - Take: order, _ := c.Route(RouteTake, key); drive a Take tracker
//     (NewTake) with c.Hedge(RouteTake, left); on a win send a Delete to
//     Take.Rest's members in the background.
//   - Serving a Get or Take the store misses: answer c.Miss(now, key,
//     tombstoned).
//   - After every call to another member: c.CallOK(now, m) or
//     c.CallFailed(now, m, timedOut, err). When CallOK reports that m is up
//     again, deliver m's delayed writes (c.HintsClaim, c.HintsTake, send,
//     c.HintsReturn what failed, c.HintsDone) and wake the state transfer. Canceled calls (the caller gave up) are not
//     reported.
//   - External liveness (a membership source that knows a member died):
//     c.Liveness(now, m, alive) or c.LivenessDown(now, m, reason); it
//     shares the one notion of down with calls. With
//     Config.ExternalLiveness the source is the only judge: call outcomes
//     and probes no longer change anything.
//   - Periodically (every Config.ProbeInterval, or at c.NextTick()):
//     c.Tick(now); ping every member of Decision.Probe (report the answer
//     as above) and start a delivery of delayed writes to every member of
//     Decision.Deliver.
//   - Membership change: c.SetMembers(now, members) (or c.SetRing with a
//     ring built once for every core); if the decision says
//     StartTransfer, run a new state transfer (below). Move entries with
//     c.Plan for each local entry, and retry a failed move after
//     c.RebalanceBackoff.
//   - State transfer: New starts generation 1 (c.TransferGen()) unless the
//     member is alone. For each round, parts := c.TransferRound(now, gen);
//     ask each part (OpSync for the keys with PartOf(key, TransferParts)
//     == part that the member holds a copy of) and report
//     c.TransferPartDone; then c.TransferRoundEnd(now, gen) says Done or
//     how long to Wait before the next round (wake early when a call
//     decision says a member is up). c.Transfer() is the readiness half.
//
// Times are taken as wall-clock instants in UTC (monotonic readings are
// dropped), so a trace replays exactly. Nothing in a Core reads a clock.
//
// # Recording and replay
//
// With Config.Recorder set, a Core records every event it applies and the
// decision it returned, in order (a Step). A Trace is a serialisable list
// of them with the Config and start time; Replay feeds it to a fresh Core
// and reports the first decision that differs. The real member's tests use
// it to show that the member and a replayed core decide alike; a simulator
// can replay a trace through its own driver with Step.
package core
