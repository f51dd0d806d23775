// early_test.go: the early-data policy and the accounting of offered early
// data, driven through the hooks directly (the HTTP/3 tests in
// zerortt_test.go check the same against real quic-go servers).

package tlsglue

import (
	"crypto/tls"
	"testing"
)

// earlySession returns a server-side TLS 1.3 session state that permits
// early data, as quic-go issues them: a real session from a TCP handshake
// against s, opened from store, with EarlyData set.
func earlySession(t *testing.T, s *server, store *memStore) *tls.SessionState {
	t.Helper()
	cs := session(t, s, tls.VersionTLS13, testSNI)
	ticket, _, err := cs.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	hd, ok := parseHandle(ticket)
	if !ok {
		t.Fatalf("ticket %x is not a handle", ticket)
	}
	sk, ak := hd.keys()
	sealed, _, ok := store.Peek(sk.bytes())
	if !ok {
		t.Fatal("session not in the store")
	}
	state, err := open(&sk, &ak, sealed)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		t.Fatal(err)
	}
	ss.EarlyData = true
	ss.Extra = nil // WrapSession adds the binding again
	return ss
}

// issueEarly stores a session permitting early data through s's hooks and
// returns its handle.
func issueEarly(t *testing.T, s *server, store *memStore) []byte {
	t.Helper()
	ss := earlySession(t, s, store)
	id, err := s.cfg.WrapSession(tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}, ss)
	if err != nil {
		t.Fatal(err)
	}
	s.flush(t)
	return id
}

// TestEarlyDataPolicy: only a single-use session, or any session with
// ReplayableEarlyData, leaves UnwrapSession still permitting early data;
// sessions from the UnwrapSession tlsglue falls back to are not single-use.
func TestEarlyDataPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want bool
	}{
		{"default", Options{}, false},
		{"SingleUse", Options{SingleUse: true}, true},
		{"ReplayableEarlyData", Options{ReplayableEarlyData: true}, true},
		{"both", Options{SingleUse: true, ReplayableEarlyData: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 1, tc.opts)
			id := issueEarly(t, srv[0], store)
			cs := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13}
			for _, shared := range []bool{false, true} {
				unwrap := srv[0].cfg.UnwrapSession // NoHandshakeContext's path
				if !shared {
					c, err := srv[0].cfg.GetConfigForClient(&tls.ClientHelloInfo{Extensions: []uint16{extensionEarlyData}})
					if err != nil || c == nil {
						t.Fatalf("GetConfigForClient = %v, %v", c, err)
					}
					unwrap = c.UnwrapSession
				}
				if tc.opts.SingleUse && shared {
					id = issueEarly(t, srv[0], store) // the first was taken
				}
				ss, err := unwrap(id, cs)
				if err != nil || ss == nil {
					t.Fatalf("shared=%v: unwrap = %v, %v", shared, ss, err)
				}
				if ss.EarlyData != tc.want {
					t.Errorf("shared=%v: EarlyData = %v, want %v", shared, ss.EarlyData, tc.want)
				}
			}
		})
	}
}

// TestEarlyDataPolicyFallback: a session that the previously installed
// UnwrapSession resolves keeps early data only with ReplayableEarlyData,
// with or without SingleUse (tlsglue cannot take it).
func TestEarlyDataPolicyFallback(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want bool
	}{
		{"default", Options{}, false},
		{"SingleUse", Options{SingleUse: true}, false},
		{"ReplayableEarlyData", Options{ReplayableEarlyData: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			src := newServers(t, store, 1, Options{})
			legacy := earlySession(t, src[0], store)
			g, err := New(store, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			cfg := &tls.Config{UnwrapSession: func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
				ss := *legacy
				return &ss, nil
			}}
			if err := g.Install(cfg); err != nil {
				t.Fatal(err)
			}
			c, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{Extensions: []uint16{extensionEarlyData}})
			ss, err := c.UnwrapSession([]byte("a stateless ticket of before"), tls.ConnectionState{})
			if err != nil || ss == nil {
				t.Fatalf("unwrap = %v, %v", ss, err)
			}
			if ss.EarlyData != tc.want {
				t.Errorf("EarlyData = %v, want %v", ss.EarlyData, tc.want)
			}
		})
	}
}

// TestEarlyDataAccounting: each handshake offering early data is counted
// once at VerifyConnection, as accepted or refused for the first reason
// that applies; handshakes not offering it are not counted.
func TestEarlyDataAccounting(t *testing.T) {
	resumed := tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13, DidResume: true}
	for _, tc := range []struct {
		name    string
		opts    Options
		offered bool
		id      string // "good", "gone", "junk"
		clear   bool   // a layer above clears EarlyData after tlsglue's unwrap
		cs      func(tls.ConnectionState) tls.ConnectionState
		want    string // "accepted", a reason, or "" for not counted
	}{
		{name: "accepted", opts: Options{SingleUse: true}, offered: true, id: "good", want: "accepted"},
		{name: "not offered", opts: Options{SingleUse: true}, id: "good", want: ""},
		{name: "taken already", opts: Options{SingleUse: true}, offered: true, id: "gone", want: EarlyRefusedNoSession},
		{name: "malformed", opts: Options{SingleUse: true}, offered: true, id: "junk", want: EarlyRefusedNoSession},
		{name: "not single-use", opts: Options{}, offered: true, id: "good", want: EarlyRefusedReplayable},
		{name: "opted in", opts: Options{ReplayableEarlyData: true}, offered: true, id: "good", want: "accepted"},
		{name: "quic-go refuses", opts: Options{SingleUse: true}, offered: true, id: "good", clear: true, want: EarlyRefusedQUIC},
		{name: "other suite", opts: Options{SingleUse: true}, offered: true, id: "good", want: EarlyRefusedTLS,
			cs: func(cs tls.ConnectionState) tls.ConnectionState {
				if cs.CipherSuite == tls.TLS_CHACHA20_POLY1305_SHA256 {
					cs.CipherSuite = tls.TLS_AES_128_GCM_SHA256
				} else {
					cs.CipherSuite = tls.TLS_CHACHA20_POLY1305_SHA256
				}
				return cs
			}},
		{name: "not resumed", opts: Options{SingleUse: true}, offered: true, id: "good", want: EarlyRefusedTLS,
			cs: func(cs tls.ConnectionState) tls.ConnectionState { cs.DidResume = false; return cs }},
		{name: "HelloRetryRequest", opts: Options{SingleUse: true}, offered: true, id: "good", want: EarlyRefusedTLS,
			cs: func(cs tls.ConnectionState) tls.ConnectionState { cs.HelloRetryRequest = true; return cs }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			srv := newServers(t, store, 1, tc.opts)
			s := srv[0]
			var id []byte
			switch tc.id {
			case "good", "gone":
				id = issueEarly(t, s, store)
				if tc.id == "gone" {
					store.Take(t.Context(), func() []byte { hd, _ := parseHandle(id); sk, _ := hd.keys(); return sk.bytes() }())
				}
			case "junk":
				id = []byte("not a handle")
			}
			chi := &tls.ClientHelloInfo{}
			if tc.offered {
				chi.Extensions = []uint16{43, extensionEarlyData, 41}
			}
			c, err := s.cfg.GetConfigForClient(chi)
			if err != nil || c == nil {
				t.Fatalf("GetConfigForClient = %v, %v", c, err)
			}
			ss, _ := c.UnwrapSession(id, tls.ConnectionState{ServerName: testSNI, Version: tls.VersionTLS13})
			if ss != nil && tc.clear {
				ss.EarlyData = false
			}
			cs := resumed
			if ss != nil {
				// Negotiated: the session's own suite (unless tc.cs says otherwise).
				b, _ := ss.Bytes()
				cs.CipherSuite, _ = stateSuite(b)
			}
			if tc.cs != nil {
				cs = tc.cs(cs)
			}
			if err := c.VerifyConnection(cs); err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{"offered": value(s.m.earlyOffered), "accepted": value(s.m.earlyAccepted)}
			for i, r := range earlyRefusals {
				got[r] = value(s.m.earlyRefused[i])
			}
			want := map[string]float64{"offered": 0, "accepted": 0}
			for _, r := range earlyRefusals {
				want[r] = 0
			}
			if tc.want != "" {
				want["offered"] = 1
				want[tc.want] = 1
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %v, want %v (all: %v)", k, got[k], w, got)
				}
			}
		})
	}
}
