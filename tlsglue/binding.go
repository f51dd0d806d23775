// binding.go: the SessionState.Extra entry binding a session to the SNI,
// ALPN protocol and Options.Label it was issued under, and the session
// creation time and cipher suite read from the serialized state.

package tlsglue

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"time"
)

// extraPrefix starts tlsglue's entry in SessionState.Extra. Its doc asks
// layers to append only and to use entries recognizable out of order by an
// id and version prefix (quic-go and its http3 package add their own).
const extraPrefix = "tlsglue1"

// bindingEntry encodes prefix || u16 len || SNI || u16 len || ALPN ||
// u16 len || label.
func bindingEntry(serverName, alpn, label string) []byte {
	b := make([]byte, 0, len(extraPrefix)+6+len(serverName)+len(alpn)+len(label))
	b = append(b, extraPrefix...)
	for _, s := range [...]string{serverName, alpn, label} {
		b = binary.BigEndian.AppendUint16(b, uint16(min(len(s), 0xffff)))
		b = append(b, s[:min(len(s), 0xffff)]...)
	}
	return b
}

// bindingResult is the outcome of checking a session's binding.
type bindingResult int

const (
	bindingOK       bindingResult = iota
	bindingMismatch               // issued under another SNI, ALPN or label
	bindingMissing                // no (well-formed) tlsglue entry: not ours
)

// checkBinding compares the session's entry with the connection's SNI and
// ALPN protocol and the configured label, without allocating. The first
// well-formed tlsglue entry decides; a malformed one is passed over.
func checkBinding(extra [][]byte, serverName, alpn, label string) bindingResult {
entries:
	for _, e := range extra {
		rest, ok := bytes.CutPrefix(e, []byte(extraPrefix))
		if !ok {
			continue
		}
		result := bindingOK
		for _, want := range [...]string{serverName, alpn, label} {
			if len(rest) < 2 {
				continue entries
			}
			n := int(binary.BigEndian.Uint16(rest))
			rest = rest[2:]
			if len(rest) < n {
				continue entries
			}
			if string(rest[:n]) != want {
				result = bindingMismatch
			}
			rest = rest[n:]
		}
		return result
	}
	return bindingMissing
}

// stateSuite reads the cipher suite from a serialized SessionState (the
// same layout as createdAt; ok is false for an encoding it does not know).
// TestLifetime pins it.
func stateSuite(state []byte) (suite uint16, ok bool) {
	if len(state) < 5 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(state)
	if v < tls.VersionTLS10 || v > tls.VersionTLS13 || state[2] != 1 /* server */ {
		return 0, false
	}
	return binary.BigEndian.Uint16(state[3:]), true
}

// createdAt reads the session secret's creation time from a serialized
// SessionState: uint16 version, uint8 type, uint16 cipher_suite, uint64
// created_at (see the format comment on tls.SessionState, which may only be
// extended at the end). The checks on version and type guard against a
// future incompatible encoding; ok is false then and callers fall back to
// crypto/tls's own seven-day limit. TestCreatedAtOffset pins the layout.
func createdAt(state []byte) (t time.Time, ok bool) {
	if len(state) < 13 {
		return t, false
	}
	v := binary.BigEndian.Uint16(state)
	if v < tls.VersionTLS10 || v > tls.VersionTLS13 || state[2] != 1 /* server */ {
		return t, false
	}
	sec := binary.BigEndian.Uint64(state[5:])
	if sec > 1<<62 {
		return t, false
	}
	return time.Unix(int64(sec), 0), true
}
