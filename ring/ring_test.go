package ring

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

func members(n int) []string {
	ms := make([]string, n)
	for i := range ms {
		ms[i] = fmt.Sprintf("10.0.%d.%d:7946", i/250, i%250+1)
	}
	return ms
}

// key returns a pseudo-random key derived from i, like a session handle's
// derived store key.
func key(i int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	s := sha256.Sum256(b[:])
	return s[:16]
}

func TestNewRejectsBadMembers(t *testing.T) {
	for _, ms := range [][]string{nil, {}, {""}, {"a", "b", "a"}, {"a", "\xffb"}} {
		if _, err := New(ms); err == nil {
			t.Errorf("New(%q) succeeded, want error", ms)
		}
	}
}

func TestOwnersDistinctAndClamped(t *testing.T) {
	r, err := New(members(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		for n := -1; n <= 5; n++ {
			got := r.Owners(key(i), n)
			want := max(0, min(n, 3))
			if len(got) != want {
				t.Fatalf("Owners(key %d, %d) = %v, want %d members", i, n, got, want)
			}
			seen := map[string]bool{}
			for _, m := range got {
				if seen[m] || !r.Contains(m) {
					t.Fatalf("Owners(key %d, %d) = %v: duplicate or unknown member", i, n, got)
				}
				seen[m] = true
			}
			if n >= 1 && got[0] != r.Owner(key(i)) {
				t.Fatalf("Owners(key %d)[0] = %s, Owner = %s", i, got[0], r.Owner(key(i)))
			}
		}
	}
	// The replica for n=2 is a prefix of n=3: a bigger n only adds members.
	for i := 0; i < 100; i++ {
		a, b := r.Owners(key(i), 2), r.Owners(key(i), 3)
		if a[0] != b[0] || a[1] != b[1] {
			t.Fatalf("Owners(2)=%v is not a prefix of Owners(3)=%v", a, b)
		}
	}
}

func TestSingleMember(t *testing.T) {
	r, err := New([]string{"only:1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Owners(key(1), 2); len(got) != 1 || got[0] != "only:1" {
		t.Fatalf("Owners = %v, want [only:1]", got)
	}
}

func TestOrderDoesNotMatter(t *testing.T) {
	ms := members(20)
	rev := make([]string, len(ms))
	for i, m := range ms {
		rev[len(ms)-1-i] = m
	}
	a, _ := New(ms)
	b, _ := New(rev)
	for i := 0; i < 2000; i++ {
		if x, y := a.Owners(key(i), 2), b.Owners(key(i), 2); strings.Join(x, ",") != strings.Join(y, ",") {
			t.Fatalf("key %d: %v vs %v", i, x, y)
		}
	}
}

// loadRatio returns the busiest member's share of keys over the mean.
func loadRatio(r *Ring, keys int) float64 {
	count := map[string]int{}
	for i := 0; i < keys; i++ {
		count[r.Owner(key(i))]++
	}
	busiest := 0
	for _, c := range count {
		busiest = max(busiest, c)
	}
	return float64(busiest) / (float64(keys) / float64(r.Len()))
}

func TestBalance(t *testing.T) {
	for _, tc := range []struct {
		members int
		limit   float64
	}{{3, 1.15}, {10, 1.2}, {100, 1.3}} {
		r, _ := New(members(tc.members))
		ratio := loadRatio(r, 2000*tc.members)
		t.Logf("%d members: busiest holds %.3fx the mean", tc.members, ratio)
		if ratio > tc.limit {
			t.Errorf("%d members: busiest member holds %.3fx the mean, limit %.2fx", tc.members, ratio, tc.limit)
		}
	}
}

// TestMinimalMovement checks that a join or leave moves about 1/N of the
// keys' owners, and only to or from the member that changed.
func TestMinimalMovement(t *testing.T) {
	const n, keys = 20, 40000
	ms := members(n + 1)
	before, _ := New(ms[:n])
	after, _ := New(ms) // ms[n] joins
	joined := ms[n]
	moved := 0
	for i := 0; i < keys; i++ {
		a, b := before.Owner(key(i)), after.Owner(key(i))
		if a != b {
			moved++
			if b != joined {
				t.Fatalf("key %d moved %s -> %s, not to the joining member", i, a, b)
			}
		}
	}
	frac := float64(moved) / keys
	t.Logf("join of member %d: %.3f of keys changed owner (ideal %.3f)", n+1, frac, 1.0/(n+1))
	if frac < 0.5/(n+1) || frac > 1.6/(n+1) {
		t.Errorf("join moved %.3f of keys, want about %.3f", frac, 1.0/(n+1))
	}
	// Leaving is the reverse: only the leaver's keys move.
	for i := 0; i < keys; i++ {
		a, b := after.Owner(key(i)), before.Owner(key(i))
		if a != b && a != joined {
			t.Fatalf("key %d moved %s -> %s though %s stayed", i, a, b, a)
		}
	}
}

func benchmarkOwners(b *testing.B, n int) {
	r, _ := New(members(n))
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = key(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Owners(keys[i&1023], 2)
	}
}

func BenchmarkOwners3(b *testing.B)    { benchmarkOwners(b, 3) }
func BenchmarkOwners100(b *testing.B)  { benchmarkOwners(b, 100) }
func BenchmarkOwners1000(b *testing.B) { benchmarkOwners(b, 1000) }

// BenchmarkAppendOwners1000 is Owners1000 into a reused slice.
func BenchmarkAppendOwners1000(b *testing.B) {
	r, _ := New(members(1000))
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = key(i)
	}
	buf := make([]string, 0, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = r.AppendOwners(buf[:0], keys[i&1023], 2)
	}
}

func BenchmarkNew1000(b *testing.B) {
	ms := members(1000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := New(ms); err != nil {
			b.Fatal(err)
		}
	}
}
