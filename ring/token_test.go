// token_test.go: token-form keys are placed by their token, members own the
// tokens they are given, ownership follows membership changes as for any
// key, and every other key is placed exactly as plain serialx places it.

package ring

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/serialx/hashring"
)

func tokenKey(tok [TokenLen]byte, i int) []byte {
	var d [TokenDigestLen]byte
	copy(d[:], key(i))
	k := TokenKey(tok, d)
	return k[:]
}

// TestPlacementTokenOwned: a key carrying a token PlacementToken gave a
// member is owned by that member, for rings of 1 to 100 members and for
// the extreme random inputs.
func TestPlacementTokenOwned(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 100} {
		r, err := New(members(n))
		if err != nil {
			t.Fatal(err)
		}
		for mi, m := range r.Members() {
			if n == 100 && mi%10 != 0 {
				continue
			}
			for i := range 1000 {
				rnd := rng.Uint64()
				switch i {
				case 0:
					rnd = 0
				case 1:
					rnd = math.MaxUint64
				}
				tok, ok := r.PlacementToken(m, rnd)
				if !ok {
					t.Fatalf("%d members: no token for %s", n, m)
				}
				k := tokenKey(tok, i)
				if got := r.Owners(k, 2); got[0] != m {
					t.Fatalf("%d members: token %x issued for %s is owned by %v", n, tok, m, got)
				}
			}
		}
	}
}

func TestPlacementTokenUnknownMember(t *testing.T) {
	r, _ := New(members(3))
	if _, ok := r.PlacementToken("10.9.9.9:1", 1); ok {
		t.Fatal("token for a member not in the ring")
	}
}

// TestPlacementTokenSpread: one member's tokens spread over all its arcs,
// so their replicas spread over the other members as a random key's do
// (each of 9 others gets a fair share), and two draws rarely repeat.
func TestPlacementTokenSpread(t *testing.T) {
	r, _ := New(members(10))
	m := r.Members()[4]
	replicas := map[string]int{}
	seen := map[[TokenLen]byte]bool{}
	const draws = 9000
	for i := range draws {
		tok, _ := r.PlacementToken(m, rand.Uint64())
		seen[tok] = true
		replicas[r.Owners(tokenKey(tok, i), 2)[1]]++
	}
	if len(seen) < draws-1 {
		t.Errorf("%d distinct tokens in %d draws", len(seen), draws)
	}
	if len(replicas) != 9 {
		t.Fatalf("replicas on %d members, want 9: %v", len(replicas), replicas)
	}
	for o, c := range replicas {
		if c < draws/9/2 || c > draws/9*2 {
			t.Errorf("member %s holds %d of %d replicas (fair share %d)", o, c, draws, draws/9)
		}
	}
}

// TestTokenKeysFollowMembership: tokens issued under a ring of 20 move on a
// join as hashed keys do, only to the joiner and about 1/21 of them; on a
// leave, only the leaver's keys move.
func TestTokenKeysFollowMembership(t *testing.T) {
	const n = 20
	ms := members(n + 1)
	before, _ := New(ms[:n])
	after, _ := New(ms)
	joined := ms[n]
	var keys [][]byte
	for i := range 40000 {
		tok, _ := before.PlacementToken(ms[i%n], rand.Uint64())
		keys = append(keys, tokenKey(tok, i))
	}
	moved := 0
	for i, k := range keys {
		a, b := before.Owner(k), after.Owner(k)
		if a != ms[i%n] {
			t.Fatalf("key %d owned by %s before the join, issued for %s", i, a, ms[i%n])
		}
		if a != b {
			moved++
			if b != joined {
				t.Fatalf("key %d moved %s -> %s, not to the joining member", i, a, b)
			}
		}
	}
	frac := float64(moved) / float64(len(keys))
	t.Logf("join: %.3f of token keys changed owner (ideal %.3f)", frac, 1.0/(n+1))
	if frac < 0.5/(n+1) || frac > 1.6/(n+1) {
		t.Errorf("join moved %.3f of token keys, want about %.3f", frac, 1.0/(n+1))
	}
	// Member 3 leaves: keys it did not own stay put.
	left, _ := New(append(append([]string(nil), ms[:3]...), ms[4:n]...))
	for i, k := range keys {
		if a := before.Owner(k); a != ms[3] && left.Owner(k) != a {
			t.Fatalf("key %d moved from %s though only %s left", i, a, ms[3])
		}
	}
}

// TestTokenKeysBalance: token-form keys with random tokens spread over the
// members as evenly as hashed keys.
func TestTokenKeysBalance(t *testing.T) {
	r, _ := New(members(10))
	count := map[string]int{}
	const keys = 20000
	for i := range keys {
		var tok [TokenLen]byte
		binary.BigEndian.PutUint64(tok[:], rand.Uint64())
		count[r.Owner(tokenKey(tok, i))]++
	}
	for m, c := range count {
		if ratio := float64(c) / (keys / 10); ratio > 1.2 || ratio < 0.8 {
			t.Errorf("member %s owns %.2fx the mean of random token keys", m, ratio)
		}
	}
}

// TestOrdinaryKeysAsSerialx: every key not of the token form, including
// near misses (0xff keys one byte short or long, 25-byte keys with another
// first byte), is placed exactly as a plain serialx ring with its default
// MD5 hash places it.
func TestOrdinaryKeysAsSerialx(t *testing.T) {
	for _, n := range []int{3, 20} {
		r, _ := New(members(n))
		weights := map[string]int{}
		for _, m := range members(n) {
			weights[m] = Points
		}
		ref := hashring.NewWithWeights(weights)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range 5000 {
			k := make([]byte, 1+rng.IntN(40))
			for j := range k {
				k[j] = byte(rng.Uint32())
			}
			switch i % 4 {
			case 0:
				k = append([]byte{TokenMarker}, make([]byte, TokenKeyLen-2+2*rng.IntN(2))...) // 24 or 26 bytes
			case 1:
				k = append([]byte{byte(rng.IntN(TokenMarker))}, k...)[:min(len(k)+1, TokenKeyLen)]
			}
			if IsTokenKey(k) {
				continue
			}
			want, _ := ref.GetNodes(string(k), 2)
			if got := r.Owners(k, 2); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%d members, key %x: owners %v, serialx says %v", n, k, got, want)
			}
		}
	}
}

// TestGoldenTokenOwners pins where token-form keys go: fixed tokens
// (extremes and arbitrary values), and a 25-byte 0xff key.
func TestGoldenTokenOwners(t *testing.T) {
	var keys [][]byte
	for i, tokHex := range []string{
		"0000000000000000", "ffffffffffffffff", "8000000000000000", "7fffffffffffffff",
		"0123456789abcdef", "fedcba9876543210", "5555555555555555", "aaaaaaaaaaaaaaaa",
	} {
		var tok [TokenLen]byte
		hex.Decode(tok[:], []byte(tokHex))
		keys = append(keys, tokenKey(tok, i))
	}
	for i := range 24 {
		var tok [TokenLen]byte
		binary.BigEndian.PutUint64(tok[:], uint64(i)*0x0b0a0d0c0a0f0e0d)
		keys = append(keys, tokenKey(tok, 100+i))
	}
	keys = append(keys, bytes.Repeat([]byte{0xff}, TokenKeyLen))
	for _, k := range keys {
		if !IsTokenKey(k) {
			t.Fatalf("%x is not a token-form key", k)
		}
	}
	checkGolden(t, "token-owners.golden", goldenTable(keys))
}

func BenchmarkPlacementToken(b *testing.B) {
	for _, n := range []int{3, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r, _ := New(members(n))
			m := r.Members()[n/2]
			r.PlacementToken(m, 0) // builds the arc table
			b.ReportAllocs()
			var x byte
			for i := 0; b.Loop(); i++ {
				tok, _ := r.PlacementToken(m, uint64(i)*0x9e3779b97f4a7c15)
				x ^= tok[0]
			}
			_ = x
		})
	}
}

// BenchmarkPlacementTokenFirst is the first call after a ring change: the
// arc table's build.
func BenchmarkPlacementTokenFirst(b *testing.B) {
	r, _ := New(members(100))
	m := r.Members()[50]
	b.ReportAllocs()
	for b.Loop() {
		r.arcs[50].Store(nil)
		r.PlacementToken(m, 1)
	}
}
