package peer

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
)

// TestOutsiderCertificateRefused: a certificate the cluster CA signed for
// a host outside the member list gets nothing and changes nothing, and a
// member's certificate retired through Config.Authorize loses its live
// connections at Reauthorize.
func TestOutsiderCertificateRefused(t *testing.T) {
	ca := transporttest.NewCA(t)
	addrs := transporttest.FreeUDPAddrs(t, 3)
	var retired atomic.Pointer[[]byte] // DER of a retired certificate
	deny := func(leaf *x509.Certificate) error {
		if d := retired.Load(); d != nil && bytes.Equal(*d, leaf.Raw) {
			return errors.New("retired")
		}
		return nil
	}
	peers := make([]*Peer, 2)
	for i, a := range addrs[:2] {
		p, err := New(Config{Self: a, Members: addrs[:2], TLS: ca.MemberTLS(t, "127.0.0.1"), Logger: quiet, Authorize: deny})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[i] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, p := range peers {
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	k := key(1)
	if err := peers[0].Set(ctx, k, []byte("secret"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// The outsider: a genuine cluster certificate, but for 127.0.0.2, a
	// host no member address names; it lists the members as its ring.
	outsider, err := New(Config{Self: addrs[2], Members: addrs, TLS: ca.MemberTLS(t, "127.0.0.2"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	for i := 0; i < 3; i++ {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		if v, err := outsider.Get(sctx, k); err == nil {
			t.Fatalf("the outsider read %q", v)
		}
		scancel()
	}
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	outsider.Delete(sctx, k)
	scancel()
	if v, err := peers[1].Get(ctx, k); err != nil || string(v) != "secret" {
		t.Fatalf("after the outsider's delete: %q, %v", v, err)
	}
	if rd := outsider.Readiness(); rd.Ready {
		t.Fatalf("the outsider says it is ready: %v", rd)
	}

	// A member certificate retired while connected: Reauthorize closes its
	// connections, and it is refused from then on.
	third := transporttest.FreeUDPAddrs(t, 1)[0]
	all := append(addrs[:2:2], third)
	for _, p := range peers {
		p.SetMembers(all)
	}
	cert := ca.MemberCert(t, "127.0.0.1")
	m, err := New(Config{Self: third, Members: all, TLS: ca.TLSFor(cert), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var k2 []byte // a key the retired member holds no copy of
	for i := 100; k2 == nil; i++ {
		if o := m.Owners(key(i)); o[0] != third && o[1] != third {
			k2 = key(i)
		}
	}
	if err := peers[0].Set(ctx, k2, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, k2); err != nil {
		t.Fatalf("a member before its certificate is retired: %v", err)
	}
	retired.Store(&cert.Certificate[0])
	for _, p := range peers {
		p.Reauthorize()
	}
	waitFor(t, func() bool {
		gctx, gcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer gcancel()
		_, err := m.Get(gctx, k2)
		return err != nil
	}, "the retired member to be refused")
}
