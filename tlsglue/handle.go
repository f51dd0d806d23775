// handle.go: the handle a client holds as its ticket or PSK identity, and
// the keys derived from it.

package tlsglue

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"

	"github.com/tlsring/tlsring/ring"
)

const (
	// handleV2 is the first byte of every handle this version issues:
	// version, an 8-byte placement token, 128 bits from crypto/rand.
	handleV2    = 2
	handleV2Len = 1 + ring.TokenLen + handleRandLen
	// handleV1 handles (version, 128 bits from crypto/rand) were issued
	// before placement tokens; they still parse and resolve to the store
	// key they always had, so sessions issued by members not yet upgraded
	// keep resuming during a rolling deploy.
	handleV1    = 1
	handleV1Len = 1 + handleRandLen
	// maxHandleLen is the longest handle of any version.
	maxHandleLen = handleV2Len
	// handleRandLen is a handle's entropy: 128 bits from crypto/rand.
	handleRandLen = 16

	// digestLen is the length of the HKDF output that names a session in the
	// store: the whole store key of a v1 handle, the end of a v2 handle's
	// token-form store key (ring.TokenKey).
	digestLen = ring.TokenDigestLen
	// maxStoreKeyLen is the longest store key of any version.
	maxStoreKeyLen = ring.TokenKeyLen
	// aeadKeyLen is the AES-128-GCM key length derived from a handle.
	aeadKeyLen = 16

	// HKDF salts and labels; distinct labels make the store key and the
	// AEAD key independent, distinct salts keep the versions apart.
	hkdfSaltV1    = "tlsring/tlsglue handle v1"
	hkdfSaltV2    = "tlsring/tlsglue handle v2"
	labelStoreKey = "tlsring/tlsglue store key"
	labelAEADKey  = "tlsring/tlsglue aead key"
)

// handle is a parsed, well-formed handle of either version. A v1 handle
// uses the first handleV1Len bytes; the rest stay zero, so == compares
// handles.
type handle [maxHandleLen]byte

// storeKey is the key a session is stored under: digestLen bytes for a v1
// handle, ring.TokenKeyLen bytes of token form for a v2 handle.
type storeKey struct {
	b [maxStoreKeyLen]byte
	n uint8
}

// bytes returns the key.
func (k *storeKey) bytes() []byte { return k.b[:k.n] }

// newHandle draws a fresh v2 handle: the placement token p gives, or a
// random one if p is nil or has none, then 128 bits from crypto/rand.
func newHandle(p Placer) handle {
	var h handle
	h[0] = handleV2
	rand.Read(h[1+ring.TokenLen : handleV2Len]) // never returns an error (crypto/rand crashes the program instead)
	placed := false
	if p != nil {
		var tok [ring.TokenLen]byte
		if tok, placed = p.PlacementToken(); placed {
			copy(h[1:], tok[:])
		}
	}
	if !placed {
		rand.Read(h[1 : 1+ring.TokenLen])
	}
	return h
}

// parseHandle accepts exactly the handles of the versions this package
// knows: the right length for the version byte. Anything else is
// "malformed".
func parseHandle(b []byte) (h handle, ok bool) {
	switch {
	case len(b) == handleV2Len && b[0] == handleV2, len(b) == handleV1Len && b[0] == handleV1:
		copy(h[:], b)
		return h, true
	}
	return h, false
}

// bytes returns the handle as the client holds it.
func (h *handle) bytes() []byte {
	if h[0] == handleV1 {
		return h[:handleV1Len]
	}
	return h[:handleV2Len]
}

// keys derives the store key and the AEAD key from the handle with
// HKDF-SHA256: one Extract, one Expand per label. A v2 handle's input is
// the whole handle, token included, and its store key is the token-form
// key of its token and the derived digest; a v1 handle's input is its
// random part and its store key the digest.
func (h *handle) keys() (sk storeKey, aeadKey [aeadKeyLen]byte) {
	ikm, salt := h[:handleV2Len], hkdfSaltV2
	if h[0] == handleV1 {
		ikm, salt = h[1:handleV1Len], hkdfSaltV1
	}
	prk, err := hkdf.Extract(sha256.New, ikm, []byte(salt))
	if err != nil {
		panic("tlsglue: hkdf extract: " + err.Error()) // impossible for SHA-256
	}
	d, err := hkdf.Expand(sha256.New, prk, labelStoreKey, digestLen)
	if err != nil {
		panic("tlsglue: hkdf expand: " + err.Error())
	}
	ak, err := hkdf.Expand(sha256.New, prk, labelAEADKey, aeadKeyLen)
	if err != nil {
		panic("tlsglue: hkdf expand: " + err.Error())
	}
	if h[0] == handleV1 {
		sk.n = uint8(copy(sk.b[:], d))
	} else {
		sk.b = ring.TokenKey([ring.TokenLen]byte(h[1:1+ring.TokenLen]), [digestLen]byte(d))
		sk.n = ring.TokenKeyLen
	}
	copy(aeadKey[:], ak)
	clear(prk)
	clear(ak)
	return sk, aeadKey
}
