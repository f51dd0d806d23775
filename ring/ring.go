// Package ring places keys on ring members by consistent hashing.
//
// A Ring is an immutable snapshot built from the full member list; a
// membership change builds a new Ring off the hot path and the caller
// publishes it atomically (see peer). Lookups never lock.
//
// The ring is built on github.com/serialx/hashring with Points virtual
// points per member. serialx gives one point per member by default, which
// leaves the busiest member holding 2-7x the mean; with 160 points the
// busiest member holds about 1.1x the mean at 10 members and under 1.3x at
// 100 (TestBalance). serialx's in-place update races with readers, so this
// package never mutates a built ring. Lookups do not go through serialx's
// GetNodes (an interface-keyed search and a map, five allocations): New
// copies the circle serialx built into flat arrays that Owners searches
// (lookup.go), placing every key exactly where serialx would.
package ring

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/serialx/hashring"
)

// Points is the number of virtual points each member gets on the circle.
const Points = 160

// Ring is an immutable consistent-hash ring. It is safe for concurrent use.
type Ring struct {
	hr      *hashring.HashRing
	members []string // sorted, distinct

	// circle is serialx's circle, flat, for the lookup (lookup.go).
	circle circle
	// points holds the circle positions of every virtual point (the high
	// 64 bits of each, in unsigned order), sorted (it is circle.hi);
	// token.go derives each member's arcs from them.
	points []uint64
	// arcs caches each member's arc table (index as in members), built on
	// the member's first PlacementToken call.
	arcs []atomic.Pointer[arcTable]
}

// New builds a ring over members. Member names must be non-empty and
// distinct; their order does not matter: two processes given the same set
// build rings that place every key identically.
func New(members []string) (*Ring, error) {
	if len(members) == 0 {
		return nil, errors.New("ring: no members")
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	weights := make(map[string]int, len(sorted))
	for i, m := range sorted {
		if m == "" {
			return nil, errors.New("ring: empty member name")
		}
		if m[0] == TokenMarker {
			return nil, fmt.Errorf("ring: member name %q starts with byte %#x, which marks token-form keys", m, TokenMarker)
		}
		if i > 0 && sorted[i-1] == m {
			return nil, fmt.Errorf("ring: member %q listed twice", m)
		}
		weights[m] = Points
	}
	// serialx hashes each virtual point's name ("member-j") once, while it
	// builds the circle; hashKey records those points, and whose they are,
	// for the lookup and for token.go.
	pts := make([]point, 0, len(sorted)*Points)
	var stray string // a point name that names no member (cannot happen)
	last := -1       // serialx names one member's points in a row
	record := true
	hashKey := func(b []byte) hashring.HashKey {
		k := keyPosition(b)
		if record {
			m := last
			if i := bytes.LastIndexByte(b, '-'); i <= 0 {
				stray = string(b)
			} else if m < 0 || sorted[m] != string(b[:i]) {
				var found bool
				if m, found = slices.BinarySearch(sorted, string(b[:i])); !found {
					stray, m = string(b), 0
				}
				last = m
			}
			p := k.(*hashring.Int64PairHashKey)
			pts = append(pts, point{uint64(p.High) ^ 1<<63, uint64(p.Low) ^ 1<<63, uint32(max(m, 0))})
		}
		return k
	}
	// serialx keeps the map it is given; weights is ours and never touched again.
	hr := hashring.NewWithHashAndWeights(weights, hashKey)
	record = false // from here on hashKey only places keys (Ring is published after this write)
	if stray != "" || len(pts) != len(sorted)*Points {
		return nil, fmt.Errorf("ring: serialx built %d points (want %d), one named %q: this package does not match its serialx/hashring version", len(pts), len(sorted)*Points, stray)
	}
	c := newCircle(pts)
	return &Ring{hr: hr, members: sorted, circle: c, points: c.hi, arcs: make([]atomic.Pointer[arcTable], len(sorted))}, nil
}

// Members returns the ring's members in sorted order. The caller must not
// modify the returned slice.
func (r *Ring) Members() []string { return r.members }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Contains reports whether m is a member.
func (r *Ring) Contains(m string) bool {
	_, ok := slices.BinarySearch(r.members, m)
	return ok
}

// Owners returns the members responsible for key: its owner first, then the
// next distinct members clockwise, up to n of them (owner and replica for
// n=2). With fewer than n members it returns every member, owner first.
// It returns nil for n <= 0. The slice is new on every call (one
// allocation); AppendOwners reuses the caller's.
func (r *Ring) Owners(key []byte, n int) []string {
	if n <= 0 {
		return nil
	}
	n = min(n, len(r.members))
	return r.appendOwners(make([]string, 0, n), r.circle.search(keyPair(key)), n)
}

// AppendOwners appends Owners(key, n) to dst and returns the extended
// slice. It does not allocate when dst has room for them and n <= 8.
func (r *Ring) AppendOwners(dst []string, key []byte, n int) []string {
	if n <= 0 {
		return dst
	}
	return r.appendOwners(dst, r.circle.search(keyPair(key)), min(n, len(r.members)))
}

// Owner returns the member that owns key.
func (r *Ring) Owner(key []byte) string {
	return r.members[r.circle.owner[r.circle.search(keyPair(key))]]
}
