// placement.go: the placement tokens this member hands to tlsglue, so that a
// session it issues is owned by itself (its copy is the local one).

package peer

import (
	"math/rand/v2"

	"github.com/tlsring/tlsring/ring"
)

// PlacementToken returns a placement token this member owns under the
// current ring: a token-form key carrying it (ring.TokenKey) has this member
// as its owner, until a membership change moves the token's arc, after which
// the key simply belongs to the token's new owner like any other key.
// tlsglue calls it for every session it issues (it implements tlsglue's
// Placer). ok is false when this member is not in its own ring.
//
// It neither allocates nor locks: the token is drawn from math/rand/v2
// (a token is not a secret) over the arc table the ring caches for this
// member, built on the first call after each membership change (about
// 0.1 ms at 100 members).
func (p *Peer) PlacementToken() (token [ring.TokenLen]byte, ok bool) {
	return p.core.Ring().PlacementToken(p.self, rand.Uint64())
}
