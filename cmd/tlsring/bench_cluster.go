// bench_cluster.go: what `tlsring bench` measures, all in the bench's own
// process: the TLS servers of every configuration, the three ring members
// and the tlsglue Glues, plus the memcached process it starts. Clients run
// elsewhere (bench_client.go).

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
	"github.com/tlsring/tlsring/cmd/internal/memcache"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/tlsglue"
)

// The configurations, in the order the report lists them.
const (
	cfgFull     = "full"
	cfgGo       = "go-tickets"
	cfgIdeal    = "ideal"
	cfgRing     = "tlsring"
	cfgSingle   = "tlsring-single"
	cfgMemcache = "memcached"
)

// benchConfigs describes each configuration.
var benchConfigs = []struct{ name, desc string }{
	{cfgFull, "full handshakes: one server, session tickets disabled"},
	{cfgGo, "crypto/tls's own tickets on one server (every client returns to it)"},
	{cfgIdeal, "3 servers, tlsglue over one shared in-process map (the ideal store)"},
	{cfgRing, "3 servers, each with its own tlsring member (QUIC, 3-member ring)"},
	{cfgSingle, "as tlsring, with tlsglue.Options.SingleUse"},
	{cfgMemcache, "3 servers, tlsglue over one shared memcached (TCP)"},
}

// benchMembers is the ring size of the tlsring configurations.
const benchMembers = 3

// benchVariant is a server setup: TLS version and certificate type.
type benchVariant struct {
	version uint16
	cert    certgen.KeyType
}

func (v benchVariant) String() string {
	name := "TLS 1.3"
	if v.version == tls.VersionTLS12 {
		name = "TLS 1.2"
	}
	if v.cert == certgen.RSA {
		return name + " RSA"
	}
	return name + " ECDSA"
}

// benchConfig is one configuration: its servers for each variant and the
// Glues (if any) whose writes a measurement waits for.
type benchConfig struct {
	name      string
	servers   map[benchVariant][]*benchServer
	glues     []*tlsglue.Glue
	memcached bool // the configuration's store is the memcached process
	skipped   string
}

// benchCluster is everything the bench runs in its own process.
type benchCluster struct {
	webCA     *certgen.CA
	memberTLS *tls.Config
	peers     []*peer.Peer
	mc        *memcachedProc // nil if not running
	configs   map[string]*benchConfig
	closers   []func()
}

// startBenchCluster starts the members, memcached (if wanted) and one set
// of servers per configuration and variant.
func startBenchCluster(ctx context.Context, o *benchOptions, log *slog.Logger, notice func(string, ...any)) (cl *benchCluster, err error) {
	cl = &benchCluster{configs: map[string]*benchConfig{}}
	started := cl
	defer func() {
		if err != nil {
			started.close() // cl is nil on the error returns
		}
	}()
	clusterCA, err := certgen.NewCA("tlsring bench cluster CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	memberCert, err := clusterCA.Issue(certgen.ECDSA, 24*time.Hour, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	cl.memberTLS = &tls.Config{
		Certificates: []tls.Certificate{memberCert.TLS()},
		RootCAs:      clusterCA.Pool(),
		ClientCAs:    clusterCA.Pool(),
		MinVersion:   tls.VersionTLS13,
	}
	if cl.webCA, err = certgen.NewCA("tlsring bench web CA", 24*time.Hour); err != nil {
		return nil, err
	}
	webCerts := map[certgen.KeyType]tls.Certificate{}
	for _, v := range o.variants() {
		if _, ok := webCerts[v.cert]; ok {
			continue
		}
		is, err := cl.webCA.Issue(v.cert, 24*time.Hour, "localhost", "127.0.0.1")
		if err != nil {
			return nil, err
		}
		webCerts[v.cert] = is.TLS()
	}

	want := map[string]bool{}
	for _, c := range o.configs {
		want[c] = true
	}
	if want[cfgMemcache] || o.transport {
		cl.mc, err = startMemcached(ctx, o.memcached)
		if err != nil {
			notice("%v; skipping the memcached rows", err)
			cl.mc = nil
		} else {
			cl.closers = append(cl.closers, cl.mc.stop)
		}
	}
	if want[cfgRing] || want[cfgSingle] {
		if cl.peers, err = startBenchMembers(benchMembers, cl.memberTLS, log); err != nil {
			return nil, fmt.Errorf("starting the ring members: %w", err)
		}
		cl.closers = append(cl.closers, func() {
			for _, p := range cl.peers {
				p.Close()
			}
		})
	}

	ideal := newMapStore()
	for _, name := range o.configs {
		bc := &benchConfig{name: name, servers: map[benchVariant][]*benchServer{}}
		cl.configs[name] = bc
		// stores are the Stores of the configuration's servers; nil: no tlsglue.
		var stores []tlsglue.Store
		var gopts tlsglue.Options
		switch name {
		case cfgIdeal:
			for range benchMembers {
				stores = append(stores, ideal)
			}
		case cfgRing, cfgSingle:
			for _, p := range cl.peers {
				stores = append(stores, p)
			}
			gopts.SingleUse = name == cfgSingle
		case cfgMemcache:
			if cl.mc == nil {
				bc.skipped = "memcached is not running (see the notice above)"
				continue
			}
			bc.memcached = true
			for range benchMembers {
				c := memcache.NewClient("tcp", cl.mc.addr)
				cl.closers = append(cl.closers, func() { c.Close() })
				stores = append(stores, c)
			}
		}
		for _, s := range stores {
			opts := gopts
			opts.Deadline = o.deadline
			opts.Logger = log
			g, err := tlsglue.New(s, opts)
			if err != nil {
				return nil, err
			}
			cl.closers = append(cl.closers, func() { g.Close() })
			bc.glues = append(bc.glues, g)
		}
		for _, v := range o.variants() {
			n := max(1, len(stores))
			for i := range n {
				conf := &tls.Config{
					Certificates:           []tls.Certificate{webCerts[v.cert]},
					MinVersion:             v.version,
					MaxVersion:             v.version,
					SessionTicketsDisabled: name == cfgFull,
				}
				if len(bc.glues) > 0 {
					if err := bc.glues[i].Install(conf); err != nil {
						return nil, err
					}
				}
				s, err := startBenchServer(conf)
				if err != nil {
					return nil, err
				}
				cl.closers = append(cl.closers, s.close)
				bc.servers[v] = append(bc.servers[v], s)
			}
		}
	}
	return cl, nil
}

// close stops everything, last started first.
func (cl *benchCluster) close() {
	for i := len(cl.closers) - 1; i >= 0; i-- {
		cl.closers[i]()
	}
	cl.closers = nil
}

// startBenchMembers starts n ring members on free loopback UDP ports (a
// port picked free can be taken before the member binds it; then it tries
// again with new ports).
func startBenchMembers(n int, conf *tls.Config, log *slog.Logger) ([]*peer.Peer, error) {
	var lastErr error
	for range 3 {
		names := make([]string, n)
		for i := range names {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			names[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
			c.Close()
		}
		var peers []*peer.Peer
		for _, name := range names {
			p, err := peer.New(peer.Config{Self: name, Members: names, TLS: conf, Logger: log})
			if err != nil {
				lastErr = err
				break
			}
			peers = append(peers, p)
		}
		if len(peers) == n {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, p := range peers {
				if err := p.WarmUp(ctx); err != nil {
					lastErr = err
					break
				}
			}
			if lastErr == nil {
				return peers, nil
			}
		}
		for _, p := range peers {
			p.Close()
		}
	}
	return nil, lastErr
}

// served is the number of connections the configuration's servers for v
// have finished with.
func (bc *benchConfig) served(v benchVariant) int64 {
	var n int64
	for _, s := range bc.servers[v] {
		n += s.served.Load()
	}
	return n
}

// settle waits until the servers for v have finished with n connections
// and every session write the Glues queued has landed, so that the work of
// the handshakes measured is all on the meter.
func (bc *benchConfig) settle(ctx context.Context, v benchVariant, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for bc.served(v) < n {
		if ctx.Err() != nil {
			return fmt.Errorf("the %s servers finished %d of %d connections in 10s", bc.name, bc.served(v), n)
		}
		time.Sleep(50 * time.Microsecond) // sleeping, not spinning: the wait is on the meter
	}
	for _, g := range bc.glues {
		if err := g.Flush(ctx); err != nil {
			return fmt.Errorf("flushing the %s session writes: %w", bc.name, err)
		}
	}
	return nil
}

// benchServer is a TLS server that handshakes, writes one byte and closes
// each connection, on a goroutine per connection.
type benchServer struct {
	l         net.Listener
	conf      *tls.Config
	wg        sync.WaitGroup
	served    atomic.Int64 // connections finished with, handshake failed or not
	closeOnce sync.Once
}

func startBenchServer(conf *tls.Config) (*benchServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &benchServer{l: l, conf: conf}
	s.wg.Go(s.serve)
	return s, nil
}

func (s *benchServer) addr() string { return s.l.Addr().String() }

func (s *benchServer) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		s.wg.Go(func() { s.handle(c) })
	}
}

func (s *benchServer) handle(c net.Conn) {
	defer s.served.Add(1)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(c, s.conf)
	if tc.Handshake() != nil {
		return
	}
	tc.Write([]byte{'.'})
	tc.Close()
}

func (s *benchServer) close() {
	s.closeOnce.Do(func() {
		s.l.Close()
		s.wg.Wait()
	})
}

// mapStore is the ideal shared store: a map in the servers' own process,
// no transport, no copies beyond one. Values are copied in and out, as any
// real store's are.
type mapStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newMapStore() *mapStore { return &mapStore{m: map[string][]byte{}} }

// errMapMiss is mapStore's miss.
var errMapMiss = fmt.Errorf("bench: %w", tlsglue.ErrNotFound)

func (s *mapStore) Get(_ context.Context, key []byte) ([]byte, error) {
	s.mu.RLock()
	v, ok := s.m[string(key)]
	s.mu.RUnlock()
	if !ok {
		return nil, errMapMiss
	}
	return append([]byte(nil), v...), nil
}

func (s *mapStore) Set(_ context.Context, key, value []byte, _ time.Duration) error {
	v := append([]byte(nil), value...)
	s.mu.Lock()
	s.m[string(key)] = v
	s.mu.Unlock()
	return nil
}

func (s *mapStore) Take(_ context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	v, ok := s.m[string(key)]
	delete(s.m, string(key))
	s.mu.Unlock()
	if !ok {
		return nil, errMapMiss
	}
	return v, nil
}

func (s *mapStore) Delete(_ context.Context, key []byte) error {
	s.mu.Lock()
	delete(s.m, string(key))
	s.mu.Unlock()
	return nil
}

var _ tlsglue.Store = (*mapStore)(nil)
