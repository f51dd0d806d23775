// store.go: the Store interface tlsglue reads and writes sessions through,
// and the classification of its errors into lookup results.

package tlsglue

import (
	"context"
	"errors"
	"time"

	"github.com/tlsring/tlsring/ring"
)

// Store is a cluster-wide key/value store with TTLs; *peer.Peer satisfies it.
//
// Every method must return promptly once ctx is done: tlsglue bounds a lookup
// by cancelling its context and does not start a goroutine per lookup to
// guard against a Store that ignores it.
//
// A miss is reported by an error for which errors.Is(err, [ErrNotFound]) is
// true, or which (anywhere in its chain) has a method NotFound() bool
// returning true; a nil value with a nil error is a miss too. Any other error
// counts as a store error (or a timeout when the lookup's context is done).
// Either way the handshake falls back to a full handshake.
type Store interface {
	// Get returns the value stored under key.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key, value []byte, ttl time.Duration) error
	// Take returns the value stored under key and deletes it everywhere,
	// atomically: of two concurrent Takes of one key at most one gets it.
	Take(ctx context.Context, key []byte) ([]byte, error)
	// Delete removes key everywhere.
	Delete(ctx context.Context, key []byte) error
}

// Placer is an optional interface of a Store that places keys of the token
// form (ring.TokenKey) by their token, as a *peer.Peer does: PlacementToken
// returns a token that the member serving this TLS server owns under its
// current ring, so that the sessions this server issues are owned by its
// own member and their owner copy is written locally. tlsglue calls it once
// per issued session, on the handshake's goroutine, so it must be cheap and
// must not block; ok=false (say, mid-way through a membership change) makes
// tlsglue use a random token for that session. A Store without the method
// gets random tokens: its sessions spread over the ring like any key.
type Placer interface {
	PlacementToken() (token [ring.TokenLen]byte, ok bool)
}

// ErrNotFound may be returned (or wrapped) by a Store to report a miss.
var ErrNotFound = errors.New("tlsglue: session not found")

// notFounder is the optional interface by which a Store's own error values
// (such as peer.ErrNotFound) report a miss without tlsglue importing them.
type notFounder interface{ NotFound() bool }

// isNotFound reports whether err is a Store's way of saying "miss".
func isNotFound(err error) bool {
	if errors.Is(err, ErrNotFound) {
		return true
	}
	var nf notFounder
	return errors.As(err, &nf) && nf.NotFound()
}
