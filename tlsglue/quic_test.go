// quic_test.go: sessions resume across QUIC servers (raw quic-go and
// HTTP/3), whose stacks wrap WrapSession/UnwrapSession for their own data.

package tlsglue

import (
	"context"
	"crypto/tls"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// quicClientTLS returns a client Config for QUIC with a cache that signals
// every session it receives.
func quicClientTLS(t *testing.T, proto string) (*tls.Config, *signalCache) {
	sc := &signalCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), puts: make(chan struct{}, 4)}
	return &tls.Config{
		RootCAs:            getPKI(t).pool,
		ServerName:         testSNI,
		NextProtos:         []string{proto},
		ClientSessionCache: sc,
	}, sc
}

type signalCache struct {
	tls.ClientSessionCache
	puts chan struct{}
}

func (c *signalCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.puts <- struct{}{}:
		default:
		}
	}
}

// waitTicket waits for the client to have received a session ticket.
func (c *signalCache) waitTicket(t *testing.T) {
	t.Helper()
	select {
	case <-c.puts:
	case <-time.After(10 * time.Second):
		t.Fatal("no session ticket received")
	}
}

// installedConfigs returns n server Configs, each with its own certificate
// and Glue on store.
func installedConfigs(t *testing.T, store Store, n int, proto string) ([]*tls.Config, []*Glue) {
	cfgs := make([]*tls.Config, n)
	glues := make([]*Glue, n)
	for i := range cfgs {
		g, err := New(store, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		cfgs[i] = &tls.Config{Certificates: []tls.Certificate{getPKI(t).leaf(t, false)}, NextProtos: []string{proto}}
		if err := g.Install(cfgs[i]); err != nil {
			t.Fatal(err)
		}
		glues[i] = g
	}
	return cfgs, glues
}

func flushGlue(t testing.TB, g *Glue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQUICResume: a quic-go client resumes on server B the session that
// server A issued.
func TestQUICResume(t *testing.T) {
	const proto = "tlsglue-test"
	store := newMemStore()
	cfgs, glues := installedConfigs(t, store, 2, proto)
	walkQUIC(t, cfgs, glues, proto)
	if got := value(glues[1].m.lookups[lrHit]); got != 1 {
		t.Fatalf("B hits = %v, want 1", got)
	}
	if got := value(glues[1].m.resumed); got != 1 {
		t.Fatalf("B resumed = %v, want 1", got)
	}
}

// h3Layer mimics what quic-go's http3.Server does to the Config it is
// given (http3's configureTLSConfig; importing http3 would add qpack to
// go.sum): clone, wrap WrapSession to append its own Extra entry and
// UnwrapSession to read it back, and re-apply itself to whatever
// GetConfigForClient returns.
func h3Layer(cfg *tls.Config, seen *atomic.Int64) *tls.Config {
	cfg = cfg.Clone()
	wrap, unwrap := cfg.WrapSession, cfg.UnwrapSession
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, []byte("h3-test\x01settings"))
		return wrap(cs, ss)
	}
	cfg.UnwrapSession = func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := unwrap(id, cs)
		if ss != nil && slices.ContainsFunc(ss.Extra, func(e []byte) bool { return string(e) == "h3-test\x01settings" }) {
			seen.Add(1)
		}
		return ss, err
	}
	if gcfc := cfg.GetConfigForClient; gcfc != nil {
		cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := gcfc(chi)
			if c == nil || err != nil {
				return c, err
			}
			return h3Layer(c, seen), nil
		}
	}
	return cfg
}

// TestQUICLayeredResume: the same through an http3-style layer wrapping
// both hooks on top of tlsglue's: its Extra entry survives the round trip
// through the store, and tlsglue's per-handshake UnwrapSession is used.
func TestQUICLayeredResume(t *testing.T) {
	const proto = "h3"
	store := newMemStore()
	cfgs, glues := installedConfigs(t, store, 2, proto)
	var seen atomic.Int64
	layered := make([]*tls.Config, len(cfgs))
	for i, cfg := range cfgs {
		layered[i] = h3Layer(cfg, &seen)
	}
	walkQUIC(t, layered, glues, proto)
	if got := value(glues[1].m.lookups[lrHit]); got != 1 {
		t.Fatalf("B hits = %v, want 1", got)
	}
	if seen.Load() != 1 {
		t.Fatalf("the layer's Extra entry came back %d times, want 1", seen.Load())
	}
}

// walkQUIC serves each Config on a QUIC listener and connects one client to
// each in turn: the first connection is full, the second must resume the
// session the first issued.
func walkQUIC(t *testing.T, cfgs []*tls.Config, glues []*Glue, proto string) {
	t.Helper()
	addrs := make([]string, len(cfgs))
	for i, cfg := range cfgs {
		ln, err := quic.ListenAddr("127.0.0.1:0", cfg, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				go func() { <-c.Context().Done() }()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
	}
	ctls, cache := quicClientTLS(t, proto)
	for i, addr := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := quic.DialAddr(ctx, addr, ctls, &quic.Config{})
		cancel()
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if got, want := c.ConnectionState().TLS.DidResume, i == 1; got != want {
			t.Fatalf("connection %d: DidResume = %v, want %v", i, got, want)
		}
		cache.waitTicket(t)
		c.CloseWithError(0, "")
		flushGlue(t, glues[i])
	}
}
