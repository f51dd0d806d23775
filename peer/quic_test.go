package peer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// TestQUICCluster runs three members over real QUIC with mutual TLS on
// loopback: any member reads any write, a closed member's keys are served
// by their replica, and a process with a certificate from another CA can
// neither read nor write.
func TestQUICCluster(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 3)
	peers := make([]*Peer, 3)
	for i, a := range addrs {
		p, err := New(Config{Self: a, Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[i] = p
	}
	ctx := ctxT(t)
	for _, p := range peers {
		if err := p.WaitReady(ctx); err != nil { // state transfer done, ring reachable
			t.Fatal(err)
		}
	}
	for i := 0; i < 60; i++ {
		if err := peers[i%3].Set(ctx, key(i), []byte(fmt.Sprint("v", i)), time.Minute); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
	}
	for i := 0; i < 60; i++ {
		for j, p := range peers {
			v, err := p.Get(ctx, key(i))
			if err != nil || string(v) != fmt.Sprint("v", i) {
				t.Fatalf("member %d Get %d = %q, %v", j, i, v, err)
			}
		}
	}

	// An intruder: a member certificate from a foreign CA, the cluster's
	// member list. It can neither read nor write.
	foreign := transporttest.NewCA(t)
	iaddr := transporttest.FreeUDPAddrs(t, 1)[0]
	intruder, err := New(Config{Self: iaddr, Members: append([]string{iaddr}, addrs...), TLS: foreign.MemberTLS(t, "127.0.0.1"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	evil := []byte("evil")
	for i := 0; i < 20; i++ {
		owners := intruder.Owners(key(i))
		if owners[0] == iaddr && len(owners) > 1 && owners[1] == iaddr {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		if v, err := intruder.Take(sctx, key(i)); err == nil && owners[0] != iaddr {
			t.Fatalf("intruder took key %d: %q", i, v)
		}
		intruder.Set(sctx, key(i), evil, time.Minute) // may land only on itself
		cancel()
	}
	for i := 0; i < 20; i++ {
		v, err := peers[0].Get(ctx, key(i))
		if err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("after intruder: key %d = %q, %v", i, v, err)
		}
	}

	// Close member 0: its keys are still served through their replicas.
	peers[0].Close()
	for i := 0; i < 60; i++ {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := peers[1].Get(gctx, key(i))
		cancel()
		if err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("after close, key %d (owners %v) = %q, %v", i, peers[1].Owners(key(i)), v, err)
		}
	}
	if _, err := peers[2].Get(ctx, key(1000)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}
