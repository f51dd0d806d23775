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
// handle: one version byte and 128 bits from crypto/rand. The store key and
// an AES-128-GCM key are derived from the handle with HKDF-SHA256 under
// distinct labels, and the store only ever holds the AEAD-sealed
// [tls.SessionState.Bytes] (with the store key as associated data). The
// store's contents alone, or a handle alone, reveal nothing resumable; both
// together do, exactly as a stateless ticket together with its ticket key
// would. Note that clients send the handle in clear in their ClientHello, so
// protect the store (the peer transport uses mutual TLS).
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
// # Handshake counts
//
// tlsglue wraps VerifyConnection, which crypto/tls calls exactly once per
// server handshake after deciding whether to resume, to count handshakes as
// full or resumed. In TLS 1.3 that too precedes the client's Finished.
package tlsglue
