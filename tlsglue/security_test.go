// security_test.go: forged and malformed handles, tampered and swapped
// stored values, and the SNI / ALPN / Label binding.

package tlsglue

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"testing"
)

// withTicket returns a copy of a client session that presents ticket.
func withTicket(t *testing.T, cs *tls.ClientSessionState, ticket []byte) *tls.ClientSessionState {
	t.Helper()
	_, state, err := cs.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	// NewResumptionState sets the ticket on the state it is given: copy it.
	b, err := state.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if state, err = tls.ParseSessionState(b); err != nil {
		t.Fatal(err)
	}
	out, err := tls.NewResumptionState(ticket, state)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// offer dials s offering exactly the session cs.
func offer(t *testing.T, s *server, v uint16, sni string, cs *tls.ClientSessionState, alpn ...string) (tls.ConnectionState, error) {
	cfg := clientConfig(t, v)
	cfg.ServerName = sni
	cfg.ClientSessionCache = newFixedCache(cs)
	cfg.NextProtos = alpn
	return tryDial(s.addr, cfg)
}

// TestForgedHandles: random, truncated, over-long and wrong-version tickets
// get a full handshake without error; only well-formed ones are looked up.
func TestForgedHandles(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 2, Options{})
			real := session(t, srv[0], ver.v, testSNI)
			b := srv[1]
			random := make([]byte, handleV2Len)
			rand.Read(random)
			random[0] = handleV2
			randomV1 := bytes.Clone(random[:handleV1Len])
			randomV1[0] = handleV1
			wrongVersion := bytes.Clone(random)
			wrongVersion[0] = 3
			v1Byte, v2Byte := bytes.Clone(random), bytes.Clone(randomV1)
			v1Byte[0], v2Byte[0] = handleV1, handleV2
			cases := []struct {
				name   string
				ticket []byte
				result lookupResult
			}{
				{"random handle", random, lrMiss},
				{"random v1 handle", randomV1, lrMiss},
				{"wrong version", wrongVersion, lrMalformed},
				{"v1 byte, v2 length", v1Byte, lrMalformed},
				{"v2 byte, v1 length", v2Byte, lrMalformed},
				{"short", random[:handleV2Len-1], lrMalformed},
				{"long", append(bytes.Clone(random), 0), lrMalformed},
				{"junk", bytes.Repeat([]byte{0xa5}, 200), lrMalformed},
			}
			for _, c := range cases {
				lookups := store.Gets.Load()
				before := value(b.m.lookups[c.result])
				cs, err := offer(t, b, ver.v, testSNI, withTicket(t, real, c.ticket))
				if err != nil {
					t.Fatalf("%s: handshake failed: %v", c.name, err)
				}
				if cs.DidResume {
					t.Fatalf("%s: resumed", c.name)
				}
				if got := value(b.m.lookups[c.result]) - before; got != 1 {
					t.Errorf("%s: %s count +%v, want +1", c.name, lookupResults[c.result], got)
				}
				wantLookups := int64(0)
				if c.result != lrMalformed {
					wantLookups = 1
				}
				if got := store.Gets.Load() - lookups; got != wantLookups {
					t.Errorf("%s: %d store lookups, want %d", c.name, got, wantLookups)
				}
			}
			if errs := b.handshakeErrors(); len(errs) > 0 {
				t.Errorf("server errors: %v", errs)
			}
			// The genuine ticket still resumes.
			if cs, err := offer(t, b, ver.v, testSNI, real); err != nil || !cs.DidResume {
				t.Fatalf("genuine ticket: resumed=%v err=%v", cs.DidResume, err)
			}
		})
	}
}

// TestTamperedValues: a flipped bit anywhere in a stored value, or a value
// moved under another handle's key, is a full handshake counted "corrupt".
func TestTamperedValues(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 2, Options{})
			s1 := session(t, srv[0], ver.v, testSNI)
			s2 := session(t, srv[0], ver.v, testSNI)
			if store.Len() != 2 {
				t.Fatalf("store has %d entries, want 2", store.Len())
			}
			// Swap the two values: each now sits under the other's key.
			var keys []string
			var vals [][]byte
			store.Each(func(k string, v []byte) []byte { keys = append(keys, k); vals = append(vals, v); return v })
			store.Each(func(k string, v []byte) []byte {
				if k == keys[0] {
					return vals[1]
				}
				return vals[0]
			})
			for i, cs := range []*tls.ClientSessionState{s1, s2} {
				st, err := offer(t, srv[1], ver.v, testSNI, cs)
				if err != nil || st.DidResume {
					t.Fatalf("swapped %d: resumed=%v err=%v", i, st.DidResume, err)
				}
			}
			if got := value(srv[1].m.lookups[lrCorrupt]); got != 2 {
				t.Fatalf("corrupt = %v, want 2", got)
			}
			// Flip one bit at a few positions (version byte, body, tag).
			s3 := session(t, srv[0], ver.v, testSNI)
			var n int
			store.Each(func(k string, v []byte) []byte { n = len(v); return v })
			for _, pos := range []int{0, 1, n / 2, n - 1} {
				store.Each(func(k string, v []byte) []byte {
					v = bytes.Clone(v)
					v[pos] ^= 0x40
					return v
				})
				st, err := offer(t, srv[1], ver.v, testSNI, s3)
				if err != nil || st.DidResume {
					t.Fatalf("flip at %d: resumed=%v err=%v", pos, st.DidResume, err)
				}
				store.Each(func(k string, v []byte) []byte { v[pos] ^= 0x40; return v })
			}
			if got := value(srv[1].m.lookups[lrCorrupt]); got != 6 {
				t.Fatalf("corrupt = %v, want 6", got)
			}
			// Restored, the session resumes: the failures were the tampering.
			if st, err := offer(t, srv[1], ver.v, testSNI, s3); err != nil || !st.DidResume {
				t.Fatalf("restored: resumed=%v err=%v", st.DidResume, err)
			}
		})
	}
}

// TestBinding: a session issued for a.example does not resume under
// b.example, nor under another ALPN protocol or Label.
func TestBinding(t *testing.T) {
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			store := newMemStore()
			sopt := serverOpts{nextProtos: []string{"h2", "http/1.1"}}
			srv := newServers(t, store, 2, Options{Label: "tenant-1"}, sopt)
			other := newServers(t, store, 1, Options{Label: "tenant-2"}, sopt)[0]
			a, b := srv[0], srv[1]

			fc := newFixedCache(nil)
			cfg := clientConfig(t, ver.v)
			cfg.ServerName = "a.example"
			cfg.NextProtos = []string{"h2"}
			cfg.ClientSessionCache = fc
			dial(t, a.addr, cfg)
			a.flush(t)
			sess := fc.latest

			st, err := offer(t, b, ver.v, "b.example", sess, "h2")
			if err != nil || st.DidResume {
				t.Fatalf("SNI b.example: resumed=%v err=%v", st.DidResume, err)
			}
			if got := value(b.m.lookups[lrMismatch]); got != 1 {
				t.Fatalf("mismatch after SNI change = %v, want 1", got)
			}
			st, err = offer(t, b, ver.v, "a.example", sess, "http/1.1")
			if err != nil || st.DidResume {
				t.Fatalf("ALPN http/1.1: resumed=%v err=%v", st.DidResume, err)
			}
			if got := value(b.m.lookups[lrMismatch]); got != 2 {
				t.Fatalf("mismatch after ALPN change = %v, want 2", got)
			}
			st, err = offer(t, other, ver.v, "a.example", sess, "h2")
			if err != nil || st.DidResume {
				t.Fatalf("other label: resumed=%v err=%v", st.DidResume, err)
			}
			if got := value(other.m.lookups[lrMismatch]); got != 1 {
				t.Fatalf("mismatch under another label = %v, want 1", got)
			}
			st, err = offer(t, b, ver.v, "a.example", sess, "h2")
			if err != nil || !st.DidResume {
				t.Fatalf("same SNI, ALPN and label: resumed=%v err=%v", st.DidResume, err)
			}
			if got := value(b.m.full) + value(b.m.resumed); got != 3 {
				t.Errorf("B handshakes = %v, want 3", got)
			}
		})
	}
}
