// seal.go: sealing serialized session states for the store and opening them.

package tlsglue

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
)

const (
	// valueVersion is the first byte of every stored value.
	valueVersion = 1
	// gcmOverhead is the AES-GCM tag length.
	gcmOverhead = 16
	// maxValueLen bounds what open will try to decrypt; a session state with
	// a long client certificate chain is a few KB.
	maxValueLen = 256 << 10
	// adPrefix starts the associated data, which also binds the store key.
	adPrefix = "tlsring/tlsglue value v1"
)

var errCorrupt = errors.New("tlsglue: stored value does not open")

// newAEAD returns AES-128-GCM under key.
func newAEAD(key *[aeadKeyLen]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("tlsglue: aes: " + err.Error()) // impossible for a 16-byte key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("tlsglue: gcm: " + err.Error())
	}
	return aead
}

// adBuf holds the associated data.
type adBuf [len(adPrefix) + 1 + maxStoreKeyLen]byte

// additionalData is adPrefix || version || store key.
func additionalData(buf *adBuf, sk *storeKey) []byte {
	n := copy(buf[:], adPrefix)
	buf[n] = valueVersion
	n += 1 + copy(buf[n+1:], sk.bytes())
	return buf[:n]
}

// seal returns version || AES-128-GCM(aeadKey, nonce 0, state, ad(storeKey)).
//
// A zero nonce is safe because every AEAD key seals exactly one message: the
// key is derived from a fresh 128-bit random handle, and each handle is
// sealed once (by the write of the WrapSession that drew it).
func seal(sk *storeKey, aeadKey *[aeadKeyLen]byte, state []byte) []byte {
	aead := newAEAD(aeadKey)
	var nonce [12]byte
	var ad adBuf
	out := make([]byte, 1, 1+len(state)+gcmOverhead)
	out[0] = valueVersion
	return aead.Seal(out, nonce[:], state, additionalData(&ad, sk))
}

// open reverses seal. It fails for a value of another version, a value
// sealed under another key or for another store key, and any tampering.
func open(sk *storeKey, aeadKey *[aeadKeyLen]byte, value []byte) ([]byte, error) {
	if len(value) < 1+gcmOverhead || len(value) > maxValueLen || value[0] != valueVersion {
		return nil, errCorrupt
	}
	aead := newAEAD(aeadKey)
	var nonce [12]byte
	var ad adBuf
	state, err := aead.Open(nil, nonce[:], value[1:], additionalData(&ad, sk))
	if err != nil {
		return nil, errCorrupt
	}
	return state, nil
}
