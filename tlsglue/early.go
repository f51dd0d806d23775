// early.go: the early-data (0-RTT) policy: which sessions may admit early
// data, and the per-handshake accounting of what became of the early data
// a ClientHello offered.

package tlsglue

import (
	"crypto/tls"
	"slices"
)

// extensionEarlyData is the TLS extension a ClientHello offers early data
// with (RFC 8446, early_data).
const extensionEarlyData = 42

// offersEarlyData reports whether the ClientHello offers early data.
func offersEarlyData(chi *tls.ClientHelloInfo) bool {
	return slices.Contains(chi.Extensions, extensionEarlyData)
}

// restrictEarlyData applies the early-data policy to a session about to be
// returned from UnwrapSession: only a session that this lookup took from
// the store (singleUse) keeps the permission it was issued with, unless
// Options.ReplayableEarlyData. It reports whether it withdrew a permission.
//
// UnwrapSession is where a server may refuse early data: crypto/tls reads
// SessionState.EarlyData after it returns (quic-go's and http3's checks run
// in between and may clear it too), and installs the early-data keys only
// then. So by the time any early data can be read, the single-use Take has
// returned, and a session that no Take won has no early data to admit.
func (h *hooks) restrictEarlyData(ss *tls.SessionState, singleUse bool) bool {
	if ss == nil || !ss.EarlyData || singleUse || h.g.opts.ReplayableEarlyData {
		return false
	}
	ss.EarlyData = false
	return true
}

// firstIdentity is what a handshake's first UnwrapSession resolved to.
type firstIdentity struct {
	done       bool
	ss         *tls.SessionState // nil: no session
	replayable bool              // restrictEarlyData withdrew its permission
	suite      uint16            // its cipher suite; 0: read it from ss when needed
}

// noteFirst records the handshake's first UnwrapSession; later ones (other
// PSK identities) cannot carry early data. hs may be nil (no per-handshake
// state).
func (hs *handshake) noteFirst(ss *tls.SessionState, replayable bool, suite uint16) {
	if hs == nil || hs.first.done {
		return
	}
	hs.first = firstIdentity{done: true, ss: ss, replayable: replayable, suite: suite}
}

// verify is the per-handshake Config.VerifyConnection: the shared one, then
// the decision on the early data the ClientHello offered. crypto/tls calls
// it once per handshake, after deciding on resumption and early data.
func (hs *handshake) verify(cs tls.ConnectionState) error {
	if err := hs.h.verify(cs); err != nil {
		return err
	}
	if hs.earlyOffered {
		hs.earlyOffered = false
		hs.h.g.m.early(hs.earlyDecision(cs))
	}
	return nil
}

// earlyDecision tells whether crypto/tls accepted the offered early data,
// and if not, why. crypto/tls accepts it when it resumes PSK identity 0,
// whose session still has EarlyData set after UnwrapSession and quic-go's
// session check, with the cipher suite and ALPN protocol the session was
// issued under (the ALPN is tlsglue's binding: a session that differs is
// never returned), over QUIC. Exact for ClientHellos offering one PSK
// identity, as Go, quic-go and browsers send; with several, a resumption of
// a later identity after crypto/tls turned down identity 0 for its client
// certificate would be counted as accepted.
func (hs *handshake) earlyDecision(cs tls.ConnectionState) earlyRefusal {
	f := &hs.first
	switch {
	case f.ss == nil:
		return erNoSession
	case f.replayable:
		return erReplayable
	case !f.ss.EarlyData:
		return erQUIC
	case !cs.DidResume || cs.HelloRetryRequest || cs.Version != tls.VersionTLS13:
		return erTLS
	}
	suite := f.suite
	if suite == 0 {
		// A session from the UnwrapSession tlsglue falls back to.
		if b, err := f.ss.Bytes(); err == nil {
			suite, _ = stateSuite(b)
		}
	}
	if suite != cs.CipherSuite {
		return erTLS
	}
	return erNone
}
