// token.go: token-form keys, placed by the placement token they carry, and
// the tokens a member owns.
//
// A token-form key is TokenMarker, an 8-byte placement token, then a 16-byte
// digest (TokenKeyLen bytes in all). The ring places it at the circle
// position the token names, read as a big-endian number (not hashed), so a
// member that wants to own a new key picks a token inside one of its own
// arcs: PlacementToken. Ownership is still decided by consistent hashing:
// after a membership change the key belongs to whoever owns that position
// in the new ring, exactly as a hashed key at that position would.
//
// Every other key, of any other length or first byte, is placed by the MD5
// of the whole key as before. Session store keys of the first handle format
// are 16 bytes; memcached-face keys may hold any byte but control
// characters, so a 25-byte memcached key starting with 0xff (not valid
// UTF-8, no client's key scheme produces it) would be placed by its bytes
// 1-8: deterministically, on every member alike, so nothing is lost, only
// its spread is then up to its writer.

package ring

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/serialx/hashring"
)

const (
	// TokenMarker is the first byte of a token-form key. Member names must
	// not start with it.
	TokenMarker = 0xff
	// TokenLen is the length of a placement token.
	TokenLen = 8
	// TokenDigestLen is the length of the digest that ends a token-form key.
	TokenDigestLen = 16
	// TokenKeyLen is the length of a token-form key.
	TokenKeyLen = 1 + TokenLen + TokenDigestLen
)

// IsTokenKey reports whether key has the token form: TokenKeyLen bytes
// starting with TokenMarker.
func IsTokenKey(key []byte) bool { return len(key) == TokenKeyLen && key[0] == TokenMarker }

// TokenKey returns the token-form key carrying token and digest.
func TokenKey(token [TokenLen]byte, digest [TokenDigestLen]byte) [TokenKeyLen]byte {
	var k [TokenKeyLen]byte
	k[0] = TokenMarker
	copy(k[1:], token[:])
	copy(k[1+TokenLen:], digest[:])
	return k
}

// md5Key is serialx's default hash: MD5, its 16 bytes read as two
// little-endian int64s, compared as signed (High, Low) pairs.
var md5Key = func() hashring.HashFunc {
	f, err := hashring.NewHash(md5.New).Use(hashring.NewInt64PairHashKey)
	if err != nil {
		panic("ring: " + err.Error())
	}
	return f
}()

// keyPosition is the ring's hash: a token-form key sits at its token's
// position, (token, 0) in the unsigned order position uses; any other key
// at the MD5 of the whole key.
func keyPosition(b []byte) hashring.HashKey {
	if IsTokenKey(b) {
		t := binary.BigEndian.Uint64(b[1:])
		return &hashring.Int64PairHashKey{High: int64(t ^ 1<<63), Low: math.MinInt64}
	}
	return md5Key(b)
}

// position maps a key's High half to an unsigned circle position that
// sorts as the signed key does.
func position(k hashring.HashKey) uint64 {
	return uint64(k.(*hashring.Int64PairHashKey).High) ^ 1<<63
}

// arcTable is one member's share of the circle as token ranges: arc i holds
// the tokens start[i], start[i]+1, ... (wrapping), cum[i]-cum[i-1] of them.
type arcTable struct {
	start []uint64
	cum   []uint64 // cumulative arc lengths; cum[len-1] is the total
}

// buildArcs computes member's arcs. A token t belongs to the member's point
// at high position h when t lies strictly between the previous point's high
// position and h: then (t, 0) is above every earlier point and below this
// one whatever their low halves. Points whose high half another point
// shares (a 2^-64 chance each) give no arc. It returns an empty table if
// the member's points are not where serialx put them, which
// TestPlacementTokenOwned would catch.
func (r *Ring) buildArcs(member string) *arcTable {
	t := &arcTable{start: make([]uint64, 0, Points), cum: make([]uint64, 0, Points)}
	var total uint64
	for j := range Points {
		h := position(md5Key([]byte(member + "-" + strconv.Itoa(j))))
		i, found := slices.BinarySearch(r.points, h)
		if !found {
			return &arcTable{}
		}
		if i+1 < len(r.points) && r.points[i+1] == h || i > 0 && r.points[i-1] == h {
			continue
		}
		prev := r.points[(i+len(r.points)-1)%len(r.points)]
		n := h - prev - 1 // wraps correctly below the first point
		if n == 0 {
			continue
		}
		total += n
		t.start = append(t.start, prev+1)
		t.cum = append(t.cum, total)
	}
	return t
}

// token maps rnd uniformly onto the member's arcs.
func (t *arcTable) token(rnd uint64) [TokenLen]byte {
	x, _ := bits.Mul64(rnd, t.cum[len(t.cum)-1]) // uniform in [0, total)
	i, _ := slices.BinarySearch(t.cum, x+1)      // first arc with cum > x
	off := x
	if i > 0 {
		off -= t.cum[i-1]
	}
	var tok [TokenLen]byte
	binary.BigEndian.PutUint64(tok[:], t.start[i]+off)
	return tok
}

// PlacementToken returns a token that member owns under r: every token-form
// key carrying it has member as its owner (Owners(key, n)[0]) for as long
// as r is the ring. rnd picks the token, uniformly over the member's share
// of the circle, so pass a uniformly random value; the token's position
// then reveals the member and nothing else. ok is false when member is not
// in r.
//
// The first call for a member builds its arc table (one MD5 and one binary
// search per virtual point, tens of microseconds) and caches it in r;
// later calls neither allocate nor lock. A new ring (membership change)
// starts with an empty cache, so tokens always follow the current ring.
func (r *Ring) PlacementToken(member string, rnd uint64) (token [TokenLen]byte, ok bool) {
	i, found := slices.BinarySearch(r.members, member)
	if !found {
		return token, false
	}
	t := r.arcs[i].Load()
	if t == nil {
		t = r.buildArcs(member)
		r.arcs[i].CompareAndSwap(nil, t)
	}
	if len(t.cum) == 0 {
		return token, false
	}
	return t.token(rnd), true
}
