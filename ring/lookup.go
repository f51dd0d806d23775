// lookup.go: the owner lookup. serialx builds the circle; New copies it into
// flat sorted arrays (positions and member indexes) that Owners searches
// with no interface, map or allocation. A key lands where serialx would put
// it: the same hash (keyPosition), the same order of points, the same walk
// to the next distinct members (TestLookupMatchesHashring).

package ring

import (
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"math/bits"
	"slices"
)

// circle is serialx's sorted circle as three parallel arrays, ordered by
// (hi, lo) unsigned, which is serialx's signed (High, Low) order.
type circle struct {
	hi    []uint64 // High half of each point, as an unsigned position
	lo    []uint64 // Low half, likewise
	owner []uint32 // index into Ring.members

	// bucket narrows the search: the points with hi>>shift == k are
	// bucket[k] to bucket[k+1]-1. With about one point per bucket a lookup
	// touches a few cache lines instead of a binary search's dozen over a
	// megabyte at 1000 members.
	bucket []uint32
	shift  uint
}

// index builds bucket over the sorted points.
func (c *circle) index() {
	b := max(bits.Len(uint(len(c.hi)))-1, 1)
	c.shift = uint(64 - b)
	c.bucket = make([]uint32, 1<<b+1)
	p := 0
	for k := range c.bucket {
		for p < len(c.hi) && c.hi[p]>>c.shift < uint64(k) {
			p++
		}
		c.bucket[k] = uint32(p)
	}
}

// point is one virtual point as New records it.
type point struct {
	hi, lo uint64
	owner  uint32
}

// newCircle sorts pts into a circle and indexes it.
func newCircle(pts []point) circle {
	slices.SortFunc(pts, func(a, b point) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		return cmp.Compare(a.lo, b.lo)
	})
	c := circle{hi: make([]uint64, len(pts)), lo: make([]uint64, len(pts)), owner: make([]uint32, len(pts))}
	for i, p := range pts {
		c.hi[i], c.lo[i], c.owner[i] = p.hi, p.lo, p.owner
	}
	c.index()
	return c
}

// keyPair is keyPosition without an allocation, as unsigned (hi, lo): a
// token-form key at (token, 0), any other key at the MD5 of the whole key
// (two little-endian halves, sign bit flipped so unsigned order is
// serialx's signed order).
func keyPair(key []byte) (hi, lo uint64) {
	if IsTokenKey(key) {
		return binary.BigEndian.Uint64(key[1:]), 0
	}
	sum := md5.Sum(key)
	return binary.LittleEndian.Uint64(sum[:8]) ^ 1<<63, binary.LittleEndian.Uint64(sum[8:]) ^ 1<<63
}

// search returns the index of the point that owns (hi, lo): the first point
// strictly above it, or the first point of the circle past the last.
func (c *circle) search(hi, lo uint64) int {
	// Points before bucket k sit below (hi, lo), points from bucket k+1
	// on above it: the answer is in [i, j].
	k := hi >> c.shift
	i, j := int(c.bucket[k]), int(c.bucket[k+1])
	for i < j {
		h := int(uint(i+j) >> 1)
		if p := c.hi[h]; p < hi || p == hi && c.lo[h] <= lo {
			i = h + 1
		} else {
			j = h
		}
	}
	if i == len(c.hi) {
		return 0
	}
	return i
}

// appendOwners appends to dst the members of the first n distinct owners
// walking clockwise from point pos; 0 < n <= len(r.members). It allocates
// only for n above 8.
func (r *Ring) appendOwners(dst []string, pos, n int) []string {
	c := &r.circle
	if n == 1 {
		return append(dst, r.members[c.owner[pos]])
	}
	var small [8]uint32
	var seen []bool
	got := small[:0]
	if n > len(small) {
		seen = make([]bool, len(r.members))
	}
	found := 0
	for range len(c.owner) {
		m := c.owner[pos]
		if pos++; pos == len(c.owner) {
			pos = 0
		}
		if seen != nil {
			if seen[m] {
				continue
			}
			seen[m] = true
		} else {
			if slices.Contains(got, m) {
				continue
			}
			got = append(got, m)
		}
		dst = append(dst, r.members[m])
		if found++; found == n {
			break
		}
	}
	return dst
}
