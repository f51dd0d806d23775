// Package simulations is where the deterministic discrete-event cluster
// simulator of SPEC §1.3 and §6 will live: 1000-member scenarios that drive
// the real ring and peer logic to predict resumption rate, handshake CPU and
// latency for a fleet. It is empty on purpose: no issue has asked for it
// yet, and nothing here pretends to simulate anything.
package simulations
