// placement_test.go: sessions are owned by the member that issued them,
// through real handshakes and a real 3-member QUIC ring, and still resume
// everywhere, also after the ring changes.

package tlsglue

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ring"
	"github.com/tlsring/tlsring/transport/transporttest"
)

// placementDeadline is the lookup deadline of the placement tests, which
// are about where sessions live, not how fast they are found: a loaded
// machine under -race stalls a lookup past clusterDeadline now and then.
const placementDeadline = time.Second

// *peer.Peer gives tlsglue its placement tokens.
var _ Placer = (*peer.Peer)(nil)

// placedSession is a session and the member whose server issued it.
type placedSession struct {
	sess   *tls.ClientSessionState
	v      uint16
	issuer int
	key    []byte // store key
}

// issueSessions gets n sessions from each server, alternating TLS
// versions, and returns them with their store keys.
func issueSessions(t *testing.T, srv []*server, n int) []placedSession {
	t.Helper()
	var out []placedSession
	for i, s := range srv {
		for j := range n {
			v := versions[j%2].v
			sess := session(t, s, v, testSNI)
			ticket, _, err := sess.ResumptionState()
			if err != nil {
				t.Fatal(err)
			}
			hd, ok := parseHandle(ticket)
			if !ok {
				t.Fatalf("ticket %x is not a handle", ticket)
			}
			sk, _ := hd.keys()
			out = append(out, placedSession{sess: sess, v: v, issuer: i, key: slices.Clone(sk.bytes())})
		}
	}
	return out
}

// resumeEverywhere offers every session to every server and fails on any
// that does not resume.
func resumeEverywhere(t *testing.T, srv []*server, sessions []placedSession) {
	t.Helper()
	for i, ps := range sessions {
		for _, s := range srv {
			cs, err := offer(t, s, ps.v, testSNI, ps.sess)
			if err != nil {
				t.Fatalf("session %d on %s: %v", i, s.name, err)
			}
			if !cs.DidResume {
				t.Fatalf("session %d (issued on %s) did not resume on %s; lookups there: %s",
					i, srv[ps.issuer].name, s.name, lookupCounts(s.glue))
			}
		}
	}
}

// TestClusterPlacement: every session a server issues is owned by that
// server's own member, which holds its copy locally; each resumes on all
// three servers.
func TestClusterPlacement(t *testing.T) {
	members := newMembers(t, 3)
	srv := clusterServers(t, members, Options{Deadline: placementDeadline})
	sessions := issueSessions(t, srv, 20)
	for i, ps := range sessions {
		issuer := members[ps.issuer]
		if !ring.IsTokenKey(ps.key) {
			t.Fatalf("session %d: store key %x is not of the token form", i, ps.key)
		}
		if o := issuer.Owners(ps.key); o[0] != issuer.Self() {
			t.Fatalf("session %d issued on %s is owned by %v", i, issuer.Self(), o)
		}
		if !issuer.HasLocal(ps.key) {
			t.Fatalf("session %d: its issuer %s holds no copy", i, issuer.Self())
		}
	}
	resumeEverywhere(t, srv, sessions)
}

// TestClusterPlacementRingChange: sessions issued by three members still
// resume on every server after a fourth joins (taking over part of their
// arcs, and with them some sessions) and after one of the first three
// leaves; sessions issued afterwards are owned by their issuer under the
// new ring.
func TestClusterPlacementRingChange(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 4)
	start := func(self string, members []string) *peer.Peer {
		p, err := peer.New(peer.Config{Self: self, Members: members, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	settle := func(ps []*peer.Peer) {
		t.Helper()
		for _, p := range ps {
			if err := p.WarmUp(ctx); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitRebalance(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var members []*peer.Peer
	for _, a := range addrs[:3] {
		members = append(members, start(a, addrs[:3]))
	}
	settle(members)
	srv := clusterServers(t, members, Options{Deadline: placementDeadline})
	sessions := issueSessions(t, srv, 16)

	// A fourth member joins.
	members = append(members, start(addrs[3], addrs))
	for _, p := range members[:3] {
		p.SetMembers(addrs)
	}
	settle(members)
	srv = append(srv, clusterServers(t, members[3:], Options{Deadline: placementDeadline})...)
	srv[3].name = "D"
	moved := 0
	for _, ps := range sessions {
		if members[0].Owners(ps.key)[0] == addrs[3] {
			moved++
		}
	}
	t.Logf("join: %d of %d sessions now owned by the joiner", moved, len(sessions))
	if moved == 0 {
		t.Error("no session moved to the joiner: placement ignores membership")
	}
	resumeEverywhere(t, srv, sessions)

	// Member B leaves, handing its entries off.
	if err := members[1].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	rest := slices.Delete(slices.Clone(addrs), 1, 2)
	for _, i := range []int{0, 2, 3} {
		members[i].SetMembers(rest)
	}
	live := []*peer.Peer{members[0], members[2], members[3]}
	settle(live)
	liveSrv := []*server{srv[0], srv[2], srv[3]}
	resumeEverywhere(t, liveSrv, sessions)

	// New sessions follow the new ring.
	for _, ps := range issueSessions(t, liveSrv, 6) {
		issuer := live[ps.issuer]
		if o := issuer.Owners(ps.key); o[0] != issuer.Self() {
			t.Fatalf("after the changes, a session issued on %s is owned by %v", issuer.Self(), o)
		}
	}
}
