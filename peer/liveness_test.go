package peer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer/membership"
	"github.com/tlsring/tlsring/transport"
)

var _ membership.Liveness = (*Peer)(nil)

// TestExternalLiveness: with Config.ExternalLiveness, failed calls mark no
// one down; MemberDown does (readiness shows why, writes for the member
// wait as delayed writes) and MemberUp delivers them.
func TestExternalLiveness(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ExternalLiveness = true })
	p := c.peers[c.names[0]]
	other := c.names[1]
	p.health.failed(other, transport.ErrUnreachable)
	if p.health.isDown(other) {
		t.Fatal("a failed call marked a member down although liveness is external")
	}
	p.MemberDown(other, errors.New("gossip: suspect"))
	if !p.health.isDown(other) {
		t.Fatal("MemberDown did not mark the member down")
	}
	if why := p.Readiness().Unreachable[other]; !strings.Contains(why, "gossip: suspect") {
		t.Fatalf("readiness gives %q for the member marked down", why)
	}
	p.health.ok(other) // an answer does not overrule the source
	if !p.health.isDown(other) {
		t.Fatal("an answer marked the member up although liveness is external")
	}
	p.MemberDown(p.Self(), errors.New("self")) // ignored
	if p.health.isDown(p.Self()) {
		t.Fatal("a member marked itself down")
	}

	// A write for the member marked down waits as a delayed write.
	ctx := ctxT(t)
	var k []byte
	for i := 0; ; i++ {
		k = key(i)
		if o := p.Owners(k); o[0] == other || o[1] == other {
			break
		}
	}
	if err := p.Set(ctx, k, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if c.peers[other].HasLocal(k) {
		t.Fatal("the write reached a member marked down")
	}
	p.MemberUp(other)
	if p.health.isDown(other) {
		t.Fatal("MemberUp did not mark the member up")
	}
	waitFor(t, func() bool { return c.peers[other].HasLocal(k) }, "the delayed write to reach the member marked up")
}

// TestLivenessFeedsProbes: without ExternalLiveness, MemberDown marks a
// member down and the member's own probe marks it up again once it
// answers.
func TestLivenessFeedsProbes(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.ProbeInterval = 10 * time.Millisecond })
	p := c.peers[c.names[0]]
	other := c.names[1]
	p.MemberDown(other, errors.New("gossip: suspect"))
	if !p.health.isDown(other) {
		t.Fatal("MemberDown did not mark the member down")
	}
	waitFor(t, func() bool { return !p.health.isDown(other) }, "the probe to find the member answering")
}
