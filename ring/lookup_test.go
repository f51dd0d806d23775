// lookup_test.go: the flat lookup against serialx's own answer, key by key.

package ring

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// checkAgainstHashring compares Owner, Owners and AppendOwners on k with
// serialx's GetNode and GetNodes for the given sizes.
func checkAgainstHashring(t *testing.T, r *Ring, k []byte, sizes []int) {
	t.Helper()
	want, _ := r.hr.GetNode(string(k))
	if got := r.Owner(k); got != want {
		t.Fatalf("%d members, key %x: Owner = %q, hashring says %q", r.Len(), k, got, want)
	}
	for _, n := range sizes {
		want, ok := r.hr.GetNodes(string(k), n)
		if !ok {
			t.Fatalf("%d members: hashring.GetNodes(%x, %d) failed", r.Len(), k, n)
		}
		if got := r.Owners(k, n); !slices.Equal(got, want) {
			t.Fatalf("%d members, key %x: Owners(%d) = %q, hashring says %q", r.Len(), k, n, got, want)
		}
		got := r.AppendOwners([]string{"prefix"}, k, n)
		if got[0] != "prefix" || !slices.Equal(got[1:], want) {
			t.Fatalf("%d members, key %x: AppendOwners(%d) = %q, want prefix then %q", r.Len(), k, n, got, want)
		}
	}
}

// TestLookupMatchesHashring: for 100,000 random keys (ordinary keys of
// random length and token-form keys) at 3, 100 and 1000 members, the flat
// lookup answers exactly what serialx's GetNode and GetNodes do, and so do
// token-form keys placed right at, just below and just above points.
func TestLookupMatchesHashring(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{3, 100, 1000} {
		r, err := New(members(size))
		if err != nil {
			t.Fatal(err)
		}
		sizes := []int{1, 2, 3}
		for i := range 100_000 {
			var k []byte
			if i%4 == 3 {
				var tok [TokenLen]byte
				var dig [TokenDigestLen]byte
				for j := range tok {
					tok[j] = byte(rng.Uint32())
				}
				tk := TokenKey(tok, dig)
				k = tk[:]
			} else {
				k = make([]byte, rng.IntN(40))
				for j := range k {
					k[j] = byte(rng.Uint32())
				}
			}
			checkAgainstHashring(t, r, k, sizes)
		}
		// Token-form keys on the boundaries: (point, 0) is below a point
		// whose low half is above 0, so the point itself owns it.
		for i := 0; i < len(r.points); i += max(1, len(r.points)/5000) {
			for _, d := range []uint64{0, 1, ^uint64(0)} { // at, above, below
				var tok [TokenLen]byte
				for j := range tok {
					tok[j] = byte((r.points[i] + d) >> (56 - 8*j))
				}
				tk := TokenKey(tok, [TokenDigestLen]byte{})
				checkAgainstHashring(t, r, tk[:], sizes)
			}
		}
		// Every member, and more than there are, for a few keys (the
		// walk past the small-set path).
		for i := range 20 {
			checkAgainstHashring(t, r, key(i), []int{min(size, 9), size})
		}
		if got := r.Owners(key(0), size+5); len(got) != size {
			t.Fatalf("%d members: Owners(k, %d) returned %d", size, size+5, len(got))
		}
	}
}

// TestLookupAllocations: AppendOwners into a slice with room allocates
// nothing; Owners allocates its result only.
func TestLookupAllocations(t *testing.T) {
	r, err := New(members(100))
	if err != nil {
		t.Fatal(err)
	}
	k := key(1)
	buf := make([]string, 0, 3)
	if a := testing.AllocsPerRun(100, func() { buf = r.AppendOwners(buf[:0], k, 3) }); a != 0 {
		t.Errorf("AppendOwners: %v allocations per call, want 0", a)
	}
	if a := testing.AllocsPerRun(100, func() { r.Owners(k, 2) }); a != 1 {
		t.Errorf("Owners: %v allocations per call, want 1", a)
	}
	if a := testing.AllocsPerRun(100, func() { r.Owner(k) }); a != 0 {
		t.Errorf("Owner: %v allocations per call, want 0", a)
	}
}
