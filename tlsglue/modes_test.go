// modes_test.go: the stateless and hybrid modes over real ring members:
// fleet keys agreed through peer.Peer over QUIC, a Go or openssl client
// resuming on B a ticket sealed on A, nowhere past the retention, and on a
// member restarted after the ticket was issued.

package tlsglue

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ticketkeys"
	"github.com/tlsring/tlsring/transport/transporttest"

	"github.com/tlsring/tlsring/internal/testenv"
)

// testClock is a settable clock for keyrings and tls.Config.Time.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

// keyring returns a Keyring over member p that holds the current key.
func keyring(t testing.TB, p *peer.Peer, clk *testClock, o ticketkeys.Options) *ticketkeys.Keyring {
	t.Helper()
	o.Now = clk.now
	o.Logger = quietLog
	k, err := ticketkeys.New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	refreshUntilHeld(t, k)
	return k
}

// refreshUntilHeld refreshes every keyring of ks in turn until each holds
// a ring key of the current epoch (the owner of the epoch's entry, one of
// them or an earlier keyring, makes it; the others then find it).
func refreshUntilHeld(t testing.TB, ks ...*ticketkeys.Keyring) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		held := 0
		var err error
		for _, k := range ks {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, e := k.Refresh(ctx)
			cancel()
			if keys := k.Keys(); e == nil && len(keys) > 0 && !keys[0].Local {
				held++
			} else if e != nil {
				err = e
			}
		}
		if held == len(ks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d keyrings hold no ring key after 20 s (last error %v)", len(ks)-held, len(ks), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// modeServers starts one server per member, each with its own keyring.
func modeServers(t testing.TB, members []*peer.Peer, clk *testClock, mode Mode, ko ticketkeys.Options) ([]*server, []*ticketkeys.Keyring) {
	t.Helper()
	var ks []*ticketkeys.Keyring
	for _, m := range members {
		o := ko
		o.Now = clk.now
		o.Logger = quietLog
		k, err := ticketkeys.New(m, o)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	refreshUntilHeld(t, ks...)
	var srv []*server
	for i, m := range members {
		s := newServers(t, m, 1, Options{Mode: mode, TicketKeys: ks[i], Deadline: clusterDeadline},
			serverOpts{time: clk.now})[0]
		s.name = string(rune('A' + i))
		srv = append(srv, s)
	}
	return srv, ks
}

func isStateless(cs *tls.ClientSessionState) bool {
	id, _, err := cs.ResumptionState()
	if err != nil {
		panic(err)
	}
	return ticketkeys.IsTicket(id)
}

// TestModesAcrossMembers: in each mode and version, a Go client resumes on
// B the session A issued, and the ticket is of the kind the mode says.
func TestModesAcrossMembers(t *testing.T) {
	members := newMembers(t, 2)
	for _, mode := range []Mode{Stateless, Hybrid, Stateful} {
		t.Run(mode.String(), func(t *testing.T) {
			clk := &testClock{}
			ko := ticketkeys.Options{Prefix: "k-" + mode.String() + "/"}
			var srv []*server
			if mode == Stateful {
				srv = clusterServers(t, members, Options{Deadline: clusterDeadline})
			} else {
				srv, _ = modeServers(t, members, clk, mode, ko)
			}
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				sess := session(t, srv[0], v, testSNI)
				wantStateless := mode == Stateless || (mode == Hybrid && v == tls.VersionTLS13)
				if got := isStateless(sess); got != wantStateless {
					t.Fatalf("%x: stateless ticket = %v, want %v", v, got, wantStateless)
				}
				cfg := clientConfig(t, v)
				cfg.ClientSessionCache = newFixedCache(sess)
				if cs := dial(t, srv[1].addr, cfg); !cs.DidResume {
					t.Fatalf("%x: B did not resume A's session", v)
				}
			}
		})
	}
}

// TestStatelessRetention: a ticket resumes through its retention on every
// member and on none after; a member restarted (new memory, new store)
// after the ticket was issued resumes it.
func TestStatelessRetention(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 2)
	start := func(i int) *peer.Peer {
		p, err := peer.New(peer.Config{Self: addrs[i], Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	members := []*peer.Peer{start(0), start(1)}
	for _, p := range members {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.WarmUp(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	clk := &testClock{}
	ko := ticketkeys.Options{Period: time.Hour, Retention: 2 * time.Hour}
	srv, _ := modeServers(t, members, clk, Stateless, ko)
	sess := session(t, srv[0], tls.VersionTLS13, testSNI)
	resumes := func(s *server) bool {
		cfg := clientConfig(t, tls.VersionTLS13)
		cfg.ClientSessionCache = newFixedCache(sess)
		return dial(t, s.addr, cfg).DidResume
	}
	if !resumes(srv[1]) {
		t.Fatal("B did not resume")
	}

	// Restart B: a new member process (empty store, state transfer from
	// A) with a new keyring (empty memory).
	members[1].Close()
	var b *peer.Peer
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := peer.New(peer.Config{Self: addrs[1], Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quietLog})
		if err == nil {
			b = p
			t.Cleanup(func() { p.Close() })
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	kb := keyring(t, b, clk, ko)
	b2 := newServers(t, b, 1, Options{Mode: Stateless, TicketKeys: kb, Deadline: clusterDeadline}, serverOpts{time: clk.now})[0]
	if !resumes(b2) {
		t.Fatal("restarted B did not resume a ticket issued before its restart")
	}

	// Past the retention (the end of the ticket's epoch plus 2 h), on
	// every member.
	clk.add(3*time.Hour + time.Minute)
	for i, s := range []*server{srv[0], b2} {
		if resumes(s) {
			t.Fatalf("server %d resumed a ticket older than the retention", i)
		}
	}
	if got := value(srv[0].m.lookups[lrMiss]); got != 1 {
		t.Fatalf("A misses = %v, want 1 (too old)", got)
	}
}

// TestOpenSSLStateless: openssl s_client resumes on B a stateless ticket
// from A, for TLS 1.3 and TLS 1.2.
func TestOpenSSLStateless(t *testing.T) {
	bin := testenv.Program(t, "openssl", "openssl")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, getPKI(t).caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	members := newMembers(t, 2)
	srv, _ := modeServers(t, members, &testClock{}, Stateless, ticketkeys.Options{})
	for _, ver := range []struct{ name, flag string }{{"TLS13", "-tls1_3"}, {"TLS12", "-tls1_2"}} {
		t.Run(ver.name, func(t *testing.T) {
			sess := filepath.Join(dir, ver.name+".sess")
			sClient := func(addr string, sessFlag string) string {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", addr, "-servername", testSNI,
					"-CAfile", caFile, "-verify_return_error", ver.flag, sessFlag, sess, "-ign_eof")
				cmd.Stdin = strings.NewReader("")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("s_client %s: %v\n%s", sessFlag, err, out)
				}
				return string(out)
			}
			if out := sClient(srv[0].addr, "-sess_out"); !strings.Contains(out, "New, TLSv1.") {
				t.Fatalf("first connection not new:\n%s", out)
			}
			if out := sClient(srv[1].addr, "-sess_in"); !strings.Contains(out, "Reused, TLSv1.") {
				t.Fatalf("openssl did not resume on B:\n%s", out)
			}
		})
	}
}

func TestModeOptions(t *testing.T) {
	if _, err := New(newMemStore(), Options{Mode: Stateless}); err == nil {
		t.Error("Stateless without TicketKeys accepted")
	}
	if _, err := New(newMemStore(), Options{Mode: 7}); err == nil {
		t.Error("unknown Mode accepted")
	}
	for _, m := range []Mode{Stateful, Stateless, Hybrid} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseMode("bogus"); err == nil {
		t.Error("ParseMode accepted bogus")
	}
}
