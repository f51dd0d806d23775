// cluster_test.go: the resumption guarantees through real ring members:
// three peer.Peer members talking QUIC with mutual TLS on loopback, one TLS
// server in front of each, every server using its own member as its Store.

package tlsglue

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/transport/transporttest"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// clusterDeadline is the lookup deadline of the cluster tests that are
// about resumption, not latency: roomy enough for -race on a loaded 2-core
// machine, where a 3 ms default deadline times out now and then.
const clusterDeadline = 100 * time.Millisecond

// blackhole is a UDP address that swallows every packet: a member that
// dropped off the network without a word.
func blackhole(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr().String()
}

// newMembers starts n real members over QUIC; extra members (such as a
// blackhole) are in every member list but run nothing.
func newMembers(t testing.TB, n int, extra ...string) []*peer.Peer {
	t.Helper()
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, n)
	members := append(append([]string(nil), addrs...), extra...)
	peers := make([]*peer.Peer, n)
	for i, a := range addrs {
		p, err := peer.New(peer.Config{Self: a, Members: members, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[i] = p
	}
	// Connect the live members before any handshake needs them (the
	// extras never answer, so their warm-up errors are expected). A dial
	// can time out on a loaded machine while members start: warm up
	// again until every member answers, within 45 s (-race next to a CPU
	// hog has taken more than 10 s).
	deadline := time.Now().Add(45 * time.Second)
	for _, p := range peers {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := p.WarmUp(ctx)
			cancel()
			if err == nil || len(extra) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the transport's dial backoff
		}
	}
	return peers
}

// clusterServers puts one TLS server in front of each member.
func clusterServers(t testing.TB, members []*peer.Peer, opts Options, so ...serverOpts) []*server {
	t.Helper()
	var srv []*server
	for i, m := range members {
		var o serverOpts
		if len(so) > 0 {
			o = so[0]
			if conf := o.configure; conf != nil {
				o.configure = func(_ int, cfg *tls.Config) *tls.Config { return conf(i, cfg) }
			}
		}
		s := newServers(t, m, 1, opts, o)[0]
		s.name = string(rune('A' + i))
		srv = append(srv, s)
	}
	return srv
}

// TestClusterWalk: a Go client walking A, B, C, A resumes on every hop
// after the first, each server asking its own member.
func TestClusterWalk(t *testing.T) {
	srv := clusterServers(t, newMembers(t, 3), Options{Deadline: clusterDeadline})
	for _, ver := range versions {
		t.Run(ver.name, func(t *testing.T) {
			cfg := clientConfig(t, ver.v)
			for i, s := range []*server{srv[0], srv[1], srv[2], srv[0]} {
				cs := dial(t, s.addr, cfg)
				if want := i > 0; cs.DidResume != want {
					t.Fatalf("hop %d (%s): DidResume = %v, want %v", i, s.name, cs.DidResume, want)
				}
				s.flush(t)
			}
		})
	}
	for _, s := range srv {
		if errs := s.handshakeErrors(); len(errs) > 0 {
			t.Fatalf("%s: handshake errors: %v", s.name, errs)
		}
	}
}

// TestClusterManySessions: 200 fresh sessions issued on A resume on C at
// >= 99%.
func TestClusterManySessions(t *testing.T) {
	srv := clusterServers(t, newMembers(t, 3), Options{Deadline: clusterDeadline})
	a, c := srv[0], srv[2]
	const n = 200
	cfgs := make([]*tls.Config, n)
	for i := range cfgs {
		cfgs[i] = clientConfig(t, versions[i%2].v)
		dial(t, a.addr, cfgs[i])
	}
	a.flush(t)
	resumed := 0
	for i := range cfgs {
		if dial(t, c.addr, cfgs[i]).DidResume {
			resumed++
		}
	}
	t.Logf("resumed %d/%d on C through the ring", resumed, n)
	if resumed*100 < n*99 {
		t.Fatalf("resumed %d of %d (< 99%%)", resumed, n)
	}
}

// TestClusterSingleUseRace: a single-use session offered to B and C at once
// resumes on at most one, even though they ask different members. (On a
// loaded machine both may lose the race: see peer.Take.)
func TestClusterSingleUseRace(t *testing.T) {
	srv := clusterServers(t, newMembers(t, 3), Options{SingleUse: true, Deadline: clusterDeadline})
	won := 0
	for _, ver := range versions {
		for r := range 10 {
			sess := session(t, srv[0], ver.v, testSNI)
			resumed := raceOffer(t, srv[1:], ver.v, sess)
			if resumed == 1 {
				won++
			}
			if resumed > 1 {
				var counts []string
				for _, s := range srv[1:] {
					c := s.name + ":"
					for lr, name := range lookupResults {
						if v := value(s.m.lookups[lr]); v > 0 {
							c += fmt.Sprintf(" %s=%v", name, v)
						}
					}
					counts = append(counts, c)
				}
				t.Fatalf("%s round %d: %d servers resumed one single-use session; lookups so far %v", ver.name, r, resumed, counts)
			}
		}
	}
	t.Logf("one server resumed in %d of 20 races", won)
	if won == 0 {
		t.Fatal("no race had a winner")
	}
}

// TestClusterSilentMember: a fourth member that never answers (a blackhole
// address in every member list) costs no handshake more than the deadline
// (plus scheduling noise, see checkUnwrapTimes), and every session keeps a
// live copy that resumes. The deadline is 20 ms rather than the 3 ms
// default, so that -race on a busy machine does not time out lookups to
// live members.
func TestClusterSilentMember(t *testing.T) {
	const deadline = 20 * time.Millisecond
	members := newMembers(t, 3, blackhole(t))
	timers := make([]*unwrapTimer, 3)
	srv := clusterServers(t, members, Options{Deadline: deadline}, serverOpts{configure: func(i int, cfg *tls.Config) *tls.Config {
		timers[i] = &unwrapTimer{}
		return timers[i].layer(cfg)
	}})
	const n = 40
	var sessions []*tls.ClientSessionState
	for i := range n {
		sessions = append(sessions, session(t, srv[0], versions[i%2].v, testSNI))
	}
	resumed := 0
	for i, sess := range sessions {
		st, err := offer(t, srv[1+i%2], versions[i%2].v, testSNI, sess)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if st.DidResume {
			resumed++
		}
	}
	// A lookup that outran the deadline on a loaded machine is a full
	// handshake by design, not a lost session: what must not happen is a
	// miss (a session without a live copy) or a lookup that errs, and
	// timeouts must stay the exception, not the silent member's doing.
	var misses, timeouts, errs float64
	for _, s := range srv[1:] {
		misses += value(s.m.lookups[lrMiss])
		timeouts += value(s.m.lookups[lrTimeout])
		errs += value(s.m.lookups[lrError])
	}
	t.Logf("resumed %d/%d with a silent member; lookups missed %v, timed out %v, failed %v", resumed, n, misses, timeouts, errs)
	checkUnwrapTimes(t, deadline, timers[1:]...)
	if misses != 0 || errs != 0 {
		t.Errorf("%v lookups missed and %v failed; every session has a live copy", misses, errs)
	}
	if float64(resumed)+timeouts < n || timeouts > n/10 {
		t.Errorf("resumed %d of %d with %v lookups timed out; every session has a live copy and the silent member must not hold lookups", resumed, n, timeouts)
	}
}

// TestClusterLosesOneOfFive: five members, one TLS server on each; after a
// member is closed without handing anything off, every session issued
// before still resumes on the four live servers (each had a live copy),
// and no lookup outlasts the deadline.
func TestClusterLosesOneOfFive(t *testing.T) {
	members := newMembers(t, 5)
	timers := make([]*unwrapTimer, 5)
	srv := clusterServers(t, members, Options{Deadline: clusterDeadline}, serverOpts{configure: func(i int, cfg *tls.Config) *tls.Config {
		timers[i] = &unwrapTimer{}
		return timers[i].layer(cfg)
	}})
	const n = 100
	sessions := make([]*tls.ClientSessionState, n)
	for i := range sessions {
		sessions[i] = session(t, srv[i%5], versions[i%2].v, testSNI)
	}
	const dead = 2
	if err := members[dead].Close(); err != nil {
		t.Fatal(err)
	}
	live := []int{0, 1, 3, 4}
	resumed := 0
	for i, sess := range sessions {
		s := srv[live[i%len(live)]]
		st, err := offer(t, s, versions[i%2].v, testSNI, sess)
		if err != nil {
			t.Fatalf("session %d on %s: %v", i, s.name, err)
		}
		if st.DidResume {
			resumed++
		}
	}
	t.Logf("resumed %d/%d after losing member %d of 5", resumed, n, dead)
	if resumed != n {
		t.Errorf("resumed %d of %d; every session had a live copy", resumed, n)
	}
	var liveTimers []*unwrapTimer
	for _, i := range live {
		liveTimers = append(liveTimers, timers[i])
	}
	checkUnwrapTimes(t, clusterDeadline, liveTimers...)
}
