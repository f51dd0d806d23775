// Package ticketkeys gives a fleet of TLS servers shared, rotating session
// ticket keys, agreed over the tlsring ring without a leader and without
// disk, so that a ticket sealed by any member opens on every other.
//
// # Key schedule
//
// Time is cut into epochs of Options.Period (epoch = Unix time / Period).
// The key of an epoch is 32 random bytes, made by one member and stored in
// the ring itself as an ordinary entry named "tlsring-ticket-key/<epoch>"
// (so it lives on the entry's owner and its replica, moves with the ring
// on membership changes, reaches a restarted member through the peer's
// state transfer, and is read by the others over the mutually authenticated
// QUIC transport). Its TTL ends when the last ticket it may have sealed
// outlives Options.Retention: at the end of the epoch plus Retention.
//
// Which member makes it: the ring owner of the entry's name (when the
// Store tells owners, as a *peer.Peer does; otherwise every member acts as
// owner). The owner makes the key of epoch e+1 half-way through epoch e, so
// every member holds it before anyone seals with it: members whose clocks
// run a few seconds apart (up to half a period) still open each other's
// tickets across an epoch boundary. A member that still finds no key for
// the current epoch an eighth of a period in (its owner is down) makes one
// itself and stores it. A member that reaches no one seals under a key of
// its own, kept locally ("local" in Metrics): its tickets resume on it
// alone, but handshakes never fail for want of a key. Two members that make
// a key for one epoch at once (a partition) each keep theirs; the ticket's
// key name carries a key ID besides the epoch, so each ticket still opens
// wherever its key is held.
//
// Why random keys in the ring rather than a ratchet (key(n+1) = KDF(key(n))):
// a ratchet needs a first key made once and shared by some channel, and a
// member holding key(n) can compute every later key, so a captured key also
// opens future tickets until an operator re-seeds the fleet. Random keys
// have neither property; their price is that the ring must be reachable
// once per epoch, which it is for sessions anyway. No secret lets anyone
// recompute a past epoch's key.
//
// # Forward secrecy, in plain words
//
// A ticket can be opened by whoever holds its epoch's key, until that key
// is erased: at most Period + Retention after the ticket was sealed. After
// that, neither the members' memory nor the ring holds it (expired entries
// are dropped by the store; members zero their copy), so an attacker who
// records traffic and later captures a member (memory, or the ring's
// contents) cannot decrypt sessions older than Period + Retention. Choose
// Retention no longer than the ticket lifetime you want to honour (tlsglue's
// Options.Lifetime), and Period as a fraction of it: the defaults, 1 h and
// 24 h, mean a captured member exposes at most the last 25 hours of
// resumed sessions. Compared with the stateful mode (sessions in the
// store), the exposure is the same in kind (store contents plus handles
// there, key set plus tickets here) but the stateless mode's key set is a
// few dozen small keys that open every ticket of the window, so guard members' memory
// as you would the store. Key files written for nginx or Apache put the
// same keys on a filesystem: use a tmpfs so that they are never on disk.
package ticketkeys
