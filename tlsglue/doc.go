// Package tlsglue plugs crypto/tls server session resumption into a
// cluster-wide session store, so that any server of a fleet resumes a TLS
// session issued by any other.
//
// # Adoption
//
// Start a store (in production a *peer.Peer, which satisfies [Store]) and
// call [Install] on the server's *tls.Config before serving with it:
//
//	cfg := &tls.Config{Certificates: certs}
//	if err := tlsglue.Install(cfg, store, tlsglue.Options{}); err != nil {
//		return err
//	}
//	ln, err := tls.Listen("tcp", ":443", cfg)
//
// Use [New] instead when the write workers need an explicit lifecycle
// ([Glue.Close], [Glue.Shutdown]) or when several configs share one write
// queue.
//
// # What the client holds and what the store holds
//
// The ticket (TLS 1.2) or PSK identity (TLS 1.3) a client receives is a
// handle of 25 bytes: a version byte (2), an 8-byte placement token and 128
// bits from crypto/rand. A 16-byte digest and an AES-128-GCM key are
// derived from the whole handle with HKDF-SHA256 under distinct labels; the
// store key is the token and the digest in the ring's token form
// (ring.TokenKey), and the store only ever holds the AEAD-sealed
// [tls.SessionState.Bytes] (with the store key as associated data). The
// store's contents alone, or a handle alone, reveal nothing resumable; both
// together do, exactly as a stateless ticket together with its ticket key
// would. Note that clients send the handle in clear in their ClientHello, so
// protect the store (the peer transport uses mutual TLS).
//
// Handles of version 1 (a version byte and 128 random bits, store key the
// digest alone), issued before placement tokens, still parse and resume,
// so a rolling upgrade loses no session; this version no longer issues them.
//
// # Placement
//
// The ring places a token-form key by its token, not by a hash of the whole
// key. When the Store implements [Placer] (a *peer.Peer does), the token is
// one the server's own member owns under its current ring, so each new
// session's owner copy is written to the local store and only its replica
// crosses the network: one remote write per new session instead of
// 2 - 2/N on average at N members (4/3 at three), and a later resumption on
// the issuing server is a local read. Ownership is still consistent
// hashing of the token: after a membership change a session belongs to
// whoever owns its token's position then, moves with that arc in the
// rebalance, and keeps resuming. A Store without Placer gets random
// tokens, which spread sessions as random keys do.
//
// What the token tells whoever sees the handle (any on-path observer, since
// the ClientHello is not encrypted): which ring member issued the session,
// that is at most log2(N) bits, and, across membership changes, roughly
// under which ring it was issued. Nothing about the client or the session:
// the token is drawn uniformly over the member's share of the circle and
// is not derived from any secret, the 128 random bits stay the whole
// secret, and the store key and AEAD key depend on the whole handle, so a
// known token helps neither to find nor to open a session. Where each
// server has its own address, the issuing server is visible anyway; behind
// one shared address the token discloses which backend issued a session
// and, over many handles, how many backends there are, much as backend
// cookies of load balancers do. A handle was already a stable identifier of
// its session across resumptions, with or without a token. We accept that
// for the saved remote write; a fleet that must hide its backends behind
// one address can wrap the Store in a type without PlacementToken.
//
// # Modes: stateful, stateless, hybrid
//
// [Options.Mode] picks how tickets are issued. Stateful (the default) issues
// the handles described above. Stateless seals the session state itself
// into the ticket under the fleet's rotating keys ([Options.TicketKeys], a
// *ticketkeys.Keyring agreeing keys through the ring): no store write, no
// lookup. Hybrid is stateless for TLS 1.3 and stateful for TLS 1.2. Every
// mode resumes tickets of every other. What each exposes, in plain words:
//
//   - Stateful: whoever gets a member's store contents and a client's
//     handle (sent in clear) can resume that one session and, in TLS 1.2,
//     decrypt its recorded connections, until the entry's TTL (Lifetime).
//     Sessions can be deleted one by one.
//   - Stateless: whoever captures the key set (any member's memory, or the
//     ring's entries) opens every ticket of the last Period + Retention; a
//     recorded TLS 1.2 connection that issued or resumed such a ticket is
//     then decrypted too, since TLS 1.2 derives its traffic keys from the
//     ticket's master secret alone. TLS 1.3 resumptions with psk_dhe_ke
//     (what Go, browsers and openssl offer) mix in a fresh key exchange, so
//     there the captured keys expose the resumption secret (and any 0-RTT
//     data) but not the resumed connection's traffic. Keys older than
//     Period + Retention are erased everywhere: nothing captured later
//     opens tickets older than that.
//   - Hybrid: the stateless exposure for TLS 1.3 only, where it is smallest
//     and where the stateful mode costs most (TLS 1.3 issues a new ticket,
//     hence a store write, on every resumption; a TLS 1.2 resumption re-uses
//     its handle and writes nothing).
//
// Act on it: keep Retention no longer than the ticket lifetime you need;
// prefer Hybrid over Stateless where TLS 1.2 clients matter; protect
// members' memory like a private key.
//
// # Binding
//
// Each session is bound to the SNI server name and the ALPN protocol it was
// issued under, and to [Options.Label]. crypto/tls itself does not check
// these; tlsglue answers a mismatching resumption attempt with a full
// handshake and counts it as "mismatch". Both values are known when crypto/tls
// calls UnwrapSession (processClientHello runs before checkForResumption in
// TLS 1.2 and 1.3), so the check is a plain comparison.
//
// # Never blocking the handshake
//
// UnwrapSession looks the handle up under min(Options.Deadline, the
// handshake's context); every failure (miss, timeout, store error, undecryptable
// or unparsable value, binding mismatch, malformed handle) becomes a full
// handshake and is counted by reason in [Metrics], never a handshake error.
// Concurrent lookups of one handle on one Glue (a browser opening several
// parallel TLS 1.2 connections with its one session) share a single
// Store.Get (groupcache's singleflight); never with SingleUse, where each
// lookup is a Take. The shared Get runs under its first lookup's Deadline,
// detached from that handshake's cancellation; a lookup whose handshake
// context would end before its own Deadline does not join, so none waits
// past its own deadline (see flight.go). Shared lookups are counted in
// [Metrics].
//
// WrapSession returns the handle at once and hands the state to a bounded
// write queue served by a small pool of workers; when the queue is full the
// write is dropped and counted.
//
// The write is queued when crypto/tls calls WrapSession. Over TCP with TLS
// 1.3 that is before the client's Finished has arrived (the server sends its
// ticket in its first flight), so a handshake that never finishes still
// stores a session. tlsglue accepts that rather than deferring the write:
// crypto/tls offers no hook after the client's Finished (VerifyConnection
// runs before it too), and nothing in ConnectionState identifies the
// connection to correlate a later signal with. Such an entry costs one queue
// slot and one store entry until its TTL, and is no use to anyone without the
// handle; the peer that provoked it made the server sign a full handshake,
// which costs far more. Under quic-go, tickets are only sent after the
// handshake completes, so the question does not arise.
//
// # Early data (0-RTT)
//
// quic-go accepts TLS 1.3 early data (quic.Config.Allow0RTT; its
// http3.Server turns it on by default): a returning client sends its first
// request in its first flight. Early data has no replay protection of its
// own, and with a cluster-wide store a recorded first flight resumes on
// every server of the fleet. So tlsglue lets a session admit early data
// only under [Options.SingleUse]: the lookup is a cluster-wide Take, and of
// all the handshakes presenting one session at most one gets it. Any other
// session (a stateless ticket too: it opens anywhere, any number of times)
// resumes with its SessionState.EarlyData cleared (quic-go then
// resends the early data in 1-RTT, or its caller does), unless the
// operator opts in with [Options.ReplayableEarlyData].
//
// UnwrapSession is where a server refuses early data: crypto/tls reads
// SessionState.EarlyData after it returns (after quic-go's own checks of
// the transport parameters and http3's of its SETTINGS, which may clear it
// too) and only then installs the keys that decrypt early data. So the
// single-use Take has returned before any early data can be read, and a
// handshake whose Take found nothing, or gave up at the deadline, admits
// none. A Take the owner completes after the lookup gave up burns the
// session without admitting its early data.
//
// What that leaves: a replay that reaches a server before the client's own
// flight (or instead of it) wins the session, and its early data is
// accepted once; the client's own early data is then refused, and when the
// client resends its request in 1-RTT, the request runs twice. Early data
// should still carry only requests that are safe to repeat once, which is
// what quic-go's http3 client allows (GET and HEAD).
//
// tlsglue counts each ClientHello offering early data, and whether it was
// accepted or why not (see [Metrics]).
//
// # Handshake counts
//
// tlsglue wraps VerifyConnection, which crypto/tls calls exactly once per
// server handshake after deciding whether to resume, to count handshakes as
// full or resumed. In TLS 1.3 that too precedes the client's Finished.
package tlsglue
