// handle.go: the handle a client holds as its ticket or PSK identity, and
// the keys derived from it.

package tlsglue

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
)

const (
	// handleVersion is the first byte of every handle this version issues.
	// A handle with another first byte is a miss without any lookup.
	handleVersion = 1
	// handleRandLen is the handle's entropy: 128 bits from crypto/rand.
	handleRandLen = 16
	// handleLen is the full handle length on the wire.
	handleLen = 1 + handleRandLen
	// storeKeyLen is the length of the store key derived from a handle.
	storeKeyLen = 16
	// aeadKeyLen is the AES-128-GCM key length derived from a handle.
	aeadKeyLen = 16

	// HKDF salt and labels; distinct labels make the store key and the AEAD
	// key independent.
	hkdfSalt      = "tlsring/tlsglue handle v1"
	labelStoreKey = "tlsring/tlsglue store key"
	labelAEADKey  = "tlsring/tlsglue aead key"
)

// handle is a parsed, well-formed handle.
type handle [handleLen]byte

// newHandle draws a fresh handle from crypto/rand.
func newHandle() handle {
	var h handle
	h[0] = handleVersion
	rand.Read(h[1:]) // never returns an error (crypto/rand crashes the program instead)
	return h
}

// parseHandle accepts exactly the handles this version issues: the right
// length and version byte. Anything else is "malformed".
func parseHandle(b []byte) (h handle, ok bool) {
	if len(b) != handleLen || b[0] != handleVersion {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// keys derives the store key and the AEAD key from the handle with
// HKDF-SHA256: one Extract, one Expand per label.
func (h *handle) keys() (storeKey [storeKeyLen]byte, aeadKey [aeadKeyLen]byte) {
	prk, err := hkdf.Extract(sha256.New, h[1:], []byte(hkdfSalt))
	if err != nil {
		panic("tlsglue: hkdf extract: " + err.Error()) // impossible for SHA-256
	}
	sk, err := hkdf.Expand(sha256.New, prk, labelStoreKey, storeKeyLen)
	if err != nil {
		panic("tlsglue: hkdf expand: " + err.Error())
	}
	ak, err := hkdf.Expand(sha256.New, prk, labelAEADKey, aeadKeyLen)
	if err != nil {
		panic("tlsglue: hkdf expand: " + err.Error())
	}
	copy(storeKey[:], sk)
	copy(aeadKey[:], ak)
	clear(prk)
	clear(ak)
	return storeKey, aeadKey
}
