// placement_test.go: a member's placement tokens make it the owner of the
// keys that carry them, and follow membership changes.

package peer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/transport"
)

// placementMembers starts n in-memory members named p0..p(n-1) among the
// first n of names.
func placementMembers(t *testing.T, net *transport.Network, names []string, n int) map[string]*Peer {
	t.Helper()
	peers := map[string]*Peer{}
	for _, name := range names[:n] {
		p, err := New(Config{Self: name, Members: names[:n], Logger: quiet, Listen: net.Listen})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[name] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range peers {
		if err := p.WarmUp(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return peers
}

// placedKey is the token-form key a session store key would be: token and
// a digest of i.
func placedKey(tok [ring.TokenLen]byte, i int) []byte {
	d := sha256.Sum256(fmt.Append(nil, i))
	k := ring.TokenKey(tok, [ring.TokenDigestLen]byte(d[:ring.TokenDigestLen]))
	return k[:]
}

// TestPlacementTokenOwnedByIssuer: keys written through a member with its
// own tokens are owned by it, with its own copy local; after a member
// joins, every key is still found, and the issuer's new tokens are its own
// under the new ring.
func TestPlacementTokenOwnedByIssuer(t *testing.T) {
	names := []string{"p0:7000", "p1:7000", "p2:7000", "p3:7000"}
	net := transport.NewNetwork()
	peers := placementMembers(t, net, names, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var keys [][]byte
	for i := range 300 {
		issuer := peers[names[i%3]]
		tok, ok := issuer.PlacementToken()
		if !ok {
			t.Fatalf("%s: no placement token", issuer.Self())
		}
		k := placedKey(tok, i)
		if o := issuer.Owners(k); o[0] != issuer.Self() {
			t.Fatalf("key %d issued by %s is owned by %v", i, issuer.Self(), o)
		}
		if err := issuer.Set(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if !issuer.HasLocal(k) {
			t.Fatalf("key %d: issuer %s holds no copy", i, issuer.Self())
		}
		keys = append(keys, k)
	}

	// p3 joins.
	p3, err := New(Config{Self: names[3], Members: names, Logger: quiet, Listen: net.Listen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p3.Close() })
	peers[names[3]] = p3
	for _, name := range names[:3] {
		peers[name].SetMembers(names)
	}
	for _, p := range peers {
		if err := p.WaitRebalance(ctx); err != nil {
			t.Fatal(err)
		}
	}
	moved := 0
	for i, k := range keys {
		if o := p3.Owners(k); o[0] != names[i%3] {
			moved++
			if o[0] != names[3] {
				t.Fatalf("key %d moved from its issuer %s to %s, not to the joiner", i, names[i%3], o[0])
			}
		}
		for _, p := range peers {
			if _, err := p.Get(ctx, k); err != nil {
				t.Fatalf("key %d from %s after the join: %v", i, p.Self(), err)
			}
		}
	}
	t.Logf("join: %d of %d placed keys moved to the joiner", moved, len(keys))
	if moved == 0 || moved > len(keys)/2 {
		t.Errorf("join moved %d of %d keys, want about a quarter", moved, len(keys))
	}
	for _, p := range peers {
		for i := range 100 {
			tok, ok := p.PlacementToken()
			if !ok {
				t.Fatalf("%s: no placement token after the join", p.Self())
			}
			if o := p.Owners(placedKey(tok, i)); o[0] != p.Self() {
				t.Fatalf("%s: token under the new ring owned by %v", p.Self(), o)
			}
		}
	}
}

// TestPlacementTokenNotInRing: a member whose ring no longer lists it has
// no token to give.
func TestPlacementTokenNotInRing(t *testing.T) {
	names := []string{"q0:7000", "q1:7000"}
	peers := placementMembers(t, transport.NewNetwork(), names, 2)
	p := peers[names[0]]
	p.SetMembers(names[1:])
	if tok, ok := p.PlacementToken(); ok {
		t.Fatalf("token %x from a member outside its ring", tok)
	}
}

func BenchmarkPlacementToken(b *testing.B) {
	net := transport.NewNetwork()
	names := []string{"b0:7000", "b1:7000", "b2:7000"}
	p, err := New(Config{Self: names[0], Members: names, Logger: quiet, Listen: net.Listen})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.PlacementToken()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := p.PlacementToken(); !ok {
				b.Fatal("no token")
			}
		}
	})
}
