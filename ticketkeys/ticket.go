// ticket.go: the ticket format, sealing and opening.
//
// A ticket is a version byte, the epoch (8 bytes, big endian), the key ID
// (4 bytes), a 16-byte random salt, then AES-256-GCM of the plaintext under
// HMAC-SHA256(epoch key, salt) with a zero nonce and the 29-byte header as
// associated data. A fresh key per ticket means no nonce can repeat however
// many tickets one key seals, and no expanded AES key schedule outlives the
// ticket it served, so erasing the 32-byte epoch key erases everything.

package ticketkeys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

const (
	// TicketVersion is the first byte of every ticket.
	TicketVersion = 0xA1
	headerLen     = 1 + 8 + 4 + 16
	tagLen        = 16
	// Overhead is how many bytes a ticket adds to its plaintext.
	Overhead = headerLen + tagLen
	// maxTicket bounds what Open tries to decrypt.
	maxTicket = 256 << 10
)

// Errors of Open; errors.Is tells them apart. ErrTooOld and ErrUnknownKey
// have a NotFound() bool method returning true: to tlsglue, a miss.
var (
	ErrTooOld     error = missError("ticketkeys: ticket older than the retention; its key is erased")
	ErrUnknownKey error = missError("ticketkeys: ticket sealed under a key this member does not hold")
	ErrMalformed        = errors.New("ticketkeys: not a ticket of this package")
	ErrCorrupt          = errors.New("ticketkeys: ticket does not authenticate")
)

type missError string

func (e missError) Error() string  { return string(e) }
func (e missError) NotFound() bool { return true }

// IsTicket reports whether b looks like a ticket of this package (by its
// length and version byte); Open decides.
func IsTicket(b []byte) bool { return len(b) >= Overhead && b[0] == TicketVersion }

// IsTicket is the function IsTicket, as a method for tlsglue.TicketKeys.
func (k *Keyring) IsTicket(b []byte) bool { return IsTicket(b) }

func aeadFor(secret *[KeyLen]byte, salt []byte) cipher.AEAD {
	mac := hmac.New(sha256.New, secret[:])
	mac.Write(salt)
	sub := mac.Sum(nil)
	block, err := aes.NewCipher(sub)
	clear(sub)
	if err != nil {
		panic("ticketkeys: aes: " + err.Error()) // impossible for 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("ticketkeys: gcm: " + err.Error())
	}
	return aead
}

var zeroNonce [12]byte

// Seal returns plaintext sealed under the current epoch's key (a local key
// if none is held yet, see the package doc).
func (k *Keyring) Seal(plaintext []byte) ([]byte, error) {
	key, _ := k.sealKey(k.o.Now())
	out := make([]byte, headerLen, headerLen+len(plaintext)+tagLen)
	out[0] = TicketVersion
	binary.BigEndian.PutUint64(out[1:9], key.Epoch)
	copy(out[9:13], key.ID[:])
	if _, err := rand.Read(out[13:headerLen]); err != nil {
		return nil, err
	}
	out = aeadFor(&key.Secret, out[13:headerLen]).Seal(out, zeroNonce[:], plaintext, out[:headerLen])
	clear(key.Secret[:])
	if key.Local {
		k.m.sealed.WithLabelValues("local").Inc()
	} else {
		k.m.sealed.WithLabelValues("ring").Inc()
	}
	return out, nil
}

// Open returns the plaintext of a ticket sealed by Seal on any member
// holding the same keys, or an error: ErrTooOld when its epoch's retention
// has passed, ErrUnknownKey, ErrMalformed or ErrCorrupt. Each outcome is
// counted in Metrics.
func (k *Keyring) Open(ticket []byte) ([]byte, error) {
	if !IsTicket(ticket) || len(ticket) > maxTicket {
		k.m.refused.WithLabelValues(RefusedCorrupt).Inc()
		return nil, ErrMalformed
	}
	e := binary.BigEndian.Uint64(ticket[1:9])
	var id [4]byte
	copy(id[:], ticket[9:13])
	now := k.o.Now()
	if !k.expiry(e).After(now) {
		k.m.refused.WithLabelValues(RefusedTooOld).Inc()
		return nil, ErrTooOld
	}
	key, ok := k.lookup(e, id)
	if !ok {
		k.m.refused.WithLabelValues(RefusedUnknownKey).Inc()
		return nil, ErrUnknownKey
	}
	pt, err := aeadFor(&key.Secret, ticket[13:headerLen]).Open(nil, zeroNonce[:], ticket[headerLen:], ticket[:headerLen])
	clear(key.Secret[:])
	if err != nil {
		k.m.refused.WithLabelValues(RefusedCorrupt).Inc()
		return nil, ErrCorrupt
	}
	k.m.opened.WithLabelValues(ageLabel(int64(k.epochAt(now)) - int64(e))).Inc()
	return pt, nil
}
