// fuzz_test.go: UnwrapSession on arbitrary identities and stored values
// never errors or panics, resumes only values sealed under the identity,
// and (by default) never lets a session admit early data; the session
// header readers agree with crypto/tls.

package tlsglue

import (
	"bytes"
	"crypto/tls"
	"testing"
)

func FuzzUnwrap(f *testing.F) {
	// A genuine identity and the value stored for it, from a real handshake.
	store := newMemStore()
	srv := newServers(f, store, 1, Options{})
	sess := session(f, srv[0], tls.VersionTLS13, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		f.Fatal(err)
	}
	var genuine []byte
	store.Each(func(_ string, v []byte) []byte { genuine = bytes.Clone(v); return v })
	// The same session permitting early data, as quic-go issues them.
	hd, _ := parseHandle(ticket)
	sk, ak := hd.keys()
	state, err := open(&sk, &ak, genuine)
	if err != nil {
		f.Fatal(err)
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		f.Fatal(err)
	}
	ss.EarlyData = true
	if state, err = ss.Bytes(); err != nil {
		f.Fatal(err)
	}
	early := seal(&sk, &ak, state)

	f.Add(ticket, genuine)
	f.Add(ticket, early)
	f.Add(ticket, genuine[:len(genuine)-1])
	f.Add(ticket, append(bytes.Clone(genuine), 0))
	f.Add(ticket, []byte{})
	f.Add(ticket, []byte{valueVersion})
	f.Add(append([]byte{handleV1}, ticket[1:]...), genuine)
	f.Add(append([]byte{3}, ticket[1:]...), genuine)
	f.Add(ticket[:handleV2Len-1], genuine)
	f.Add(ticket[:handleV1Len], genuine)
	f.Add([]byte{}, []byte{})
	f.Add(bytes.Repeat([]byte{1}, handleV1Len), bytes.Repeat([]byte{1}, 80))
	f.Add(bytes.Repeat([]byte{2}, handleV2Len), bytes.Repeat([]byte{1}, 80))

	g, err := New(store, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	cfg := &tls.Config{}
	if err := g.Install(cfg); err != nil {
		f.Fatal(err)
	}
	cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}

	// Fuzz workers are separate processes with their own servers, so the
	// seeds' genuine pair is not this process's: the invariant is that only
	// a value that authenticates under the identity's keys resumes, and
	// that the pair this process made does.
	f.Fuzz(func(t *testing.T, identity, value []byte) {
		authentic := false
		if hd, ok := parseHandle(identity); ok {
			sk, ak := hd.keys()
			store.Set(t.Context(), sk.bytes(), value, DefaultLifetime)
			_, err := open(&sk, &ak, value)
			authentic = err == nil
		}
		ss, err := cfg.UnwrapSession(identity, cs)
		if err != nil {
			t.Fatalf("UnwrapSession error: %v", err)
		}
		if ss != nil && !authentic {
			t.Fatal("resumed a value that does not authenticate under the identity")
		}
		if ss != nil && ss.EarlyData {
			t.Fatal("a session that is not single-use admits early data")
		}
		if bytes.Equal(identity, ticket) && bytes.Equal(value, genuine) && ss == nil {
			t.Fatal("the genuine pair did not resume")
		}
	})
}

// FuzzOpen: any change to a sealed value, or opening it under another
// handle, fails.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("session state"), 0, byte(1), false)
	f.Add([]byte{}, 5, byte(0x80), false)
	f.Add(bytes.Repeat([]byte{7}, 1500), 700, byte(0), true)
	hd, other := newHandle(nil), newHandle(nil)
	f.Fuzz(func(t *testing.T, state []byte, pos int, flip byte, otherHandle bool) {
		sk, ak := hd.keys()
		sealed := seal(&sk, &ak, bytes.Clone(state))
		if len(sealed) > 0 && flip != 0 {
			pos = ((pos % len(sealed)) + len(sealed)) % len(sealed)
			sealed[pos] ^= flip
		}
		if otherHandle {
			sk, ak = other.keys()
		}
		got, err := open(&sk, &ak, sealed)
		if intact := flip == 0 && !otherHandle; intact != (err == nil) {
			t.Fatalf("intact=%v but open err=%v", intact, err)
		}
		if err == nil && !bytes.Equal(got, state) {
			t.Fatal("opened to different bytes")
		}
	})
}

// FuzzStateHeader: the readers of a serialized SessionState's header
// (createdAt, stateSuite) never panic, and on anything crypto/tls parses
// as a server's session they read what crypto/tls serializes.
func FuzzStateHeader(f *testing.F) {
	store := newMemStore()
	srv := newServers(f, store, 1, Options{})
	sess := session(f, srv[0], tls.VersionTLS13, testSNI)
	ticket, _, err := sess.ResumptionState()
	if err != nil {
		f.Fatal(err)
	}
	hd, _ := parseHandle(ticket)
	sk, ak := hd.keys()
	var state []byte
	store.Each(func(_ string, v []byte) []byte {
		state, err = open(&sk, &ak, v)
		return v
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(state)
	f.Add(state[:13])
	f.Add(state[:4])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		suite, okSuite := stateSuite(b)
		created, okCreated := createdAt(b)
		ss, err := tls.ParseSessionState(b)
		if err != nil {
			return
		}
		again, err := ss.Bytes()
		if err != nil || len(again) < 13 || again[2] != 1 {
			return // not a server's session
		}
		if s2, ok := stateSuite(again); okSuite && (!ok || s2 != suite) {
			t.Fatalf("stateSuite %#04x, but crypto/tls serializes %#04x (%v)", suite, s2, ok)
		}
		if c2, ok := createdAt(again); okCreated && (!ok || !c2.Equal(created)) {
			t.Fatalf("createdAt %v, but crypto/tls serializes %v (%v)", created, c2, ok)
		}
	})
}
