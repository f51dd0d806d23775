// handle_test.go: the two handle versions, their derived keys, placement
// tokens in new handles, and resumption of handles of the first version.

package tlsglue

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/tlsring/tlsring/ring"
)

// TestV1HandleKeysUnchanged: a v1 handle derives the keys it did before v2
// existed (vector computed by the v1-only code), so sessions it names are
// still found and still open.
func TestV1HandleKeysUnchanged(t *testing.T) {
	var h handle
	h[0] = handleV1
	for i := 1; i < handleV1Len; i++ {
		h[i] = byte(i * 7)
	}
	if got := hex.EncodeToString(h.bytes()); got != "01070e151c232a31383f464d545b626970" {
		t.Fatalf("handle bytes %s", got)
	}
	sk, ak := h.keys()
	if got, want := hex.EncodeToString(sk.bytes()), "e1f914e1e1338e50b802cd6f08bfbc97"; got != want {
		t.Errorf("v1 store key %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(ak[:]), "031bbf2d01e231ac3d4a4027992d304e"; got != want {
		t.Errorf("v1 AEAD key %s, want %s", got, want)
	}
}

type fixedPlacer struct {
	tok [ring.TokenLen]byte
	ok  bool
}

func (p fixedPlacer) PlacementToken() ([ring.TokenLen]byte, bool) { return p.tok, p.ok }

// TestV2Handle: a new handle carries the placer's token and 128 random
// bits; its store key is the token-form key of that token; flipping any
// byte of the handle, token included, changes both the digest and the AEAD
// key (HKDF over the whole handle).
func TestV2Handle(t *testing.T) {
	tok := [ring.TokenLen]byte{1, 2, 3, 4, 5, 6, 7, 8}
	h := newHandle(fixedPlacer{tok, true})
	b := h.bytes()
	if len(b) != handleV2Len || b[0] != handleV2 || !bytes.Equal(b[1:9], tok[:]) {
		t.Fatalf("handle %x: want version 2, token %x, %d bytes", b, tok, handleV2Len)
	}
	if p, ok := parseHandle(b); !ok || p != h {
		t.Fatalf("parseHandle(%x) = %x, %v", b, p, ok)
	}
	sk, ak := h.keys()
	k := sk.bytes()
	if !ring.IsTokenKey(k) || !bytes.Equal(k[1:9], tok[:]) {
		t.Fatalf("store key %x is not the token-form key of %x", k, tok)
	}
	for i := 1; i < handleV2Len; i++ {
		h2 := h
		h2[i] ^= 0x01
		sk2, ak2 := h2.keys()
		if bytes.Equal(sk2.bytes()[1+ring.TokenLen:], k[1+ring.TokenLen:]) || ak2 == ak {
			t.Errorf("flipping handle byte %d leaves a derived key unchanged", i)
		}
	}
	// Same 16 random bytes under v1 and v2 give unrelated keys.
	var v1 handle
	v1[0] = handleV1
	copy(v1[1:], b[1+ring.TokenLen:])
	sk1, ak1 := v1.keys()
	if bytes.Contains(k, sk1.bytes()) || ak1 == ak {
		t.Error("v1 and v2 handles with the same random part share keys")
	}
	// Random draws differ.
	if newHandle(fixedPlacer{tok, true}) == h {
		t.Error("two handles drawn alike")
	}
}

// TestV2HandleRandomToken: without a placer, or when it has no token, the
// token is random.
func TestV2HandleRandomToken(t *testing.T) {
	for _, p := range []Placer{nil, fixedPlacer{ok: false}} {
		seen := map[[ring.TokenLen]byte]bool{}
		for range 50 {
			h := newHandle(p)
			seen[[ring.TokenLen]byte(h[1:9])] = true
		}
		if len(seen) != 50 {
			t.Errorf("placer %v: %d distinct tokens in 50 handles", p, len(seen))
		}
	}
}

// TestV1HandleResumes: a session stored under a v1 handle (as members
// running the previous version store them) resumes, in TLS 1.2 and 1.3.
func TestV1HandleResumes(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 1, Options{})
			sess := session(t, srv[0], ver.v, testSNI)
			srv[0].flush(t)
			ticket, _, err := sess.ResumptionState()
			if err != nil {
				t.Fatal(err)
			}
			h2, ok := parseHandle(ticket)
			if !ok || h2[0] != handleV2 {
				t.Fatalf("issued ticket %x is not a v2 handle", ticket)
			}
			sk2, ak2 := h2.keys()
			stored, err := store.Get(t.Context(), sk2.bytes())
			if err != nil {
				t.Fatal(err)
			}
			state, err := open(&sk2, &ak2, stored)
			if err != nil {
				t.Fatal(err)
			}
			// Re-store the state as the v1 code would have.
			var h1 handle
			h1[0] = handleV1
			copy(h1[1:], ticket[1+ring.TokenLen:])
			sk1, ak1 := h1.keys()
			if err := store.Set(t.Context(), sk1.bytes(), seal(&sk1, &ak1, state), DefaultLifetime); err != nil {
				t.Fatal(err)
			}
			cs, err := offer(t, srv[0], ver.v, testSNI, withTicket(t, sess, h1.bytes()))
			if err != nil || !cs.DidResume {
				t.Fatalf("v1 handle: resumed=%v err=%v", cs.DidResume, err)
			}
		})
	}
}
