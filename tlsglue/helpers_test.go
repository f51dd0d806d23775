// helpers_test.go: test fixtures: a CA and server certificates, in-memory
// stores (healthy, slow, silent, failing), TLS servers on loopback, clients.

package tlsglue

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tlsring/tlsring/internal/memstore"
	"github.com/tlsring/tlsring/transport/transporttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	writerIdle = 50 * time.Millisecond
	goleak.VerifyTestMain(m)
}

// testSNI is the name every test server answers to (and the Go clients'
// session cache key, so one cache entry walks across servers).
const testSNI = "tlsring.test"

// testPKI is the package's test CA (transporttest's, the repository's one
// test certificate generator) for the TLS servers' certificates.
type testPKI struct {
	ca    *transporttest.CA
	pool  *x509.CertPool
	caPEM []byte
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

// getPKI returns the package's test CA, made once.
func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		ca, err := transporttest.NewCAErr()
		if err != nil {
			panic(err)
		}
		pki = &testPKI{ca: ca, pool: ca.Pool, caPEM: ca.PEM()}
	})
	return pki
}

// leaf signs a server certificate for testSNI, a.example, b.example,
// localhost and 127.0.0.1 with a fresh key of the given kind.
func (p *testPKI) leaf(t testing.TB, rsaKey bool) tls.Certificate {
	t.Helper()
	hosts := []string{testSNI, "a.example", "b.example", "localhost", "127.0.0.1"}
	if rsaKey {
		return p.ca.RSACert(t, hosts...)
	}
	return p.ca.MemberCert(t, hosts...)
}

// memStore is the repository's test store (internal/memstore): a map with
// TTLs and knobs that make it slow, silent or failing.
type memStore = memstore.Store

func newMemStore() *memStore { return memstore.New(nil) }

// server is one TLS server on loopback with its own Config, certificate,
// Glue and Metrics.
type server struct {
	name string
	addr string
	cfg  *tls.Config
	glue *Glue
	m    *Metrics
	ln   net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	errs  []error
	state []tls.ConnectionState
}

// serverOpts tunes newServers beyond Options.
type serverOpts struct {
	rsa        bool
	time       func() time.Time // Config.Time, set before Install
	nextProtos []string
	// configure runs on each Config after Install (to wrap hooks, etc.) and
	// returns the Config to serve with.
	configure func(i int, cfg *tls.Config) *tls.Config
}

// newServers starts n servers sharing store, each with its own Config and
// certificate (signed by the test CA), and Install'd with opts. Swap the
// store to run the same tests against real peers.
func newServers(t testing.TB, store Store, n int, opts Options, so ...serverOpts) []*server {
	t.Helper()
	var sopt serverOpts
	if len(so) > 0 {
		sopt = so[0]
	}
	p := getPKI(t)
	servers := make([]*server, n)
	for i := range servers {
		s := &server{name: string(rune('A' + i))}
		o := opts
		s.m = NewMetrics(nil)
		o.Metrics = s.m
		g, err := New(store, o)
		if err != nil {
			t.Fatal(err)
		}
		s.glue = g
		s.cfg = &tls.Config{
			Certificates: []tls.Certificate{p.leaf(t, sopt.rsa)},
			NextProtos:   sopt.nextProtos,
			Time:         sopt.time,
		}
		if err := g.Install(s.cfg); err != nil {
			t.Fatal(err)
		}
		if sopt.configure != nil {
			s.cfg = sopt.configure(i, s.cfg)
		}
		s.ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = s.ln.Addr().String()
		s.wg.Add(1)
		go s.serve()
		t.Cleanup(func() {
			s.ln.Close()
			s.wg.Wait()
			g.Close()
		})
		servers[i] = s
	}
	return servers
}

// serve accepts connections: handshake, write "hello\n", close. Writing
// application data makes a TLS 1.3 client (Go or openssl) read the
// NewSessionTicket sent before it.
func (s *server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Server(c, s.cfg)
			defer tc.Close() // sends close_notify (openssl wants it)
			err := tc.Handshake()
			if err == nil {
				_, err = tc.Write([]byte("hello\n"))
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.errs = append(s.errs, err)
			} else {
				s.state = append(s.state, tc.ConnectionState())
			}
		}()
	}
}

// flush waits until the server's session writes have landed.
func (s *server) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.glue.Flush(ctx); err != nil {
		t.Fatalf("flush %s: %v", s.name, err)
	}
}

// handshakeErrors returns the server-side handshake errors so far.
func (s *server) handshakeErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// clientConfig returns a client Config trusting the test CA for version v
// (0 = default) with its own LRU session cache.
func clientConfig(t testing.TB, v uint16) *tls.Config {
	return &tls.Config{
		RootCAs:            getPKI(t).pool,
		ServerName:         testSNI,
		MinVersion:         v,
		MaxVersion:         v,
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
	}
}

// dial connects to addr, completes the handshake, reads the server's line
// (which also processes a TLS 1.3 NewSessionTicket) and closes.
func dial(t testing.TB, addr string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	cs, err := tryDial(addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return cs
}

func tryDial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if line != "hello\n" {
		return tls.ConnectionState{}, errors.New("unexpected greeting " + line)
	}
	return c.ConnectionState(), nil
}

// fixedCache is a ClientSessionCache that offers one session for every
// server name and keeps whatever is Put last in latest.
type fixedCache struct {
	mu     sync.Mutex
	offer  *tls.ClientSessionState
	latest *tls.ClientSessionState
	puts   chan struct{}
}

func newFixedCache(offer *tls.ClientSessionState) *fixedCache {
	return &fixedCache{offer: offer, puts: make(chan struct{}, 16)}
}

func (c *fixedCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offer, c.offer != nil
}

func (c *fixedCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	c.latest = cs
	c.mu.Unlock()
	select {
	case c.puts <- struct{}{}:
	default:
	}
}

// session runs one handshake with a fresh client against s and returns the
// session it received (waiting for it to land in the store).
func session(t testing.TB, s *server, v uint16, sni string) *tls.ClientSessionState {
	t.Helper()
	fc := newFixedCache(nil)
	cfg := clientConfig(t, v)
	cfg.ServerName = sni
	cfg.ClientSessionCache = fc
	dial(t, s.addr, cfg)
	s.flush(t)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.latest == nil {
		t.Fatal("no session received")
	}
	return fc.latest
}
