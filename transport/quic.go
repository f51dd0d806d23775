// The QUIC transport: configuration, the one UDP socket a member listens
// and dials on, mutual TLS with the cluster CA, and shutdown. Outgoing
// calls live in quic_client.go, serving incoming ones in quic_server.go,
// the frame writer both share in stream.go and the frame layout in wire.go.

package transport

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// ALPN is the application protocol the QUIC transport negotiates; a peer
// speaking anything else is refused during the handshake.
const ALPN = "tlsring/1"

// Application error codes the QUIC transport closes connections with.
const (
	codeNoError       quic.ApplicationErrorCode = 0 // orderly close
	codeProtocolError quic.ApplicationErrorCode = 1 // malformed frame
	codeSlowReader    quic.ApplicationErrorCode = 2 // answers not read within QUICConfig.StallTimeout
	codeUnauthorized  quic.ApplicationErrorCode = 3 // QUICConfig.Authorize refuses the member now
)

// QUICConfig configures a QUIC transport. Only Addr and TLS are required;
// every other field has a documented zero-value default (the Default*
// constants); a negative one is an error.
type QUICConfig struct {
	// Addr is the UDP "host:port" to listen on, which is also this member's
	// name in the ring. Port 0 picks a free port: read it back with
	// (*QUIC).Addr.
	Addr string
	// TLS holds this member's certificate (Certificates) and the cluster CA
	// (RootCAs to verify members we call, ClientCAs to verify members that
	// call us). It is cloned, never modified: the transport sets ALPN, TLS
	// 1.3 and mandatory client certificates on its clones. Members are
	// dialled with ServerName set to the host part of their address, so
	// their certificates need the matching IP or DNS SAN.
	TLS *tls.Config
	// Logger receives connection events and refusals; nil = slog.Default().
	Logger *slog.Logger
	// Authorize, if set, decides whether the member at the other end of a
	// connection, whose certificate chains to the cluster CA, may talk to
	// this one at all: it is asked on every handshake, dialling and
	// accepting, and again for live connections by Reauthorize. An error
	// refuses the connection (logged, sampled, and counted as a refusal).
	// nil = every certificate of the cluster CA is a member.
	Authorize func(leaf *x509.Certificate) error

	// DialTimeout bounds connecting to a member, handshake and first
	// round trip included; 0 = DefaultDialTimeout (1s). Calls wait for a dial at most until
	// their own deadline; the dial goes on in the background.
	DialTimeout time.Duration
	// MinBackoff is how long calls to a member fail at once with
	// ErrUnreachable after a dial to it failed; it doubles with each
	// further failure up to MaxBackoff and resets on success. The first
	// call after the backoff dials afresh.
	// 0 = DefaultMinBackoff (50ms).
	MinBackoff time.Duration
	// MaxBackoff caps the backoff; 0 = DefaultMaxBackoff (2s).
	MaxBackoff time.Duration
	// RedialWait is how long a call waits for a new connection to a
	// member whose last connection broke or whose last dial failed: long
	// enough for a handshake with a member that restarted, short enough
	// that calls to one that is gone fail fast. A call on a connection
	// the member closed or reset (it stopped or restarted) is retried
	// once on a new connection within this wait. 0 = DefaultRedialWait (50ms).
	RedialWait time.Duration
	// KeepAlive is how often an idle connection is probed;
	// 0 = DefaultKeepAlive (2s).
	KeepAlive time.Duration
	// IdleTimeout closes a connection that heard nothing for this long
	// (keep-alives included): the member is then considered gone.
	// 0 = DefaultIdleTimeout (10s).
	IdleTimeout time.Duration
	// MaxConcurrentRequests bounds the requests of one incoming
	// connection that are outstanding: read and being served, or answered
	// with the answer waiting for the caller's flow control. At the bound
	// further requests wait unread, which pushes back on the caller
	// through QUIC flow control. 0 = DefaultMaxConcurrentRequests (256).
	MaxConcurrentRequests int
	// MaxConnBytes bounds the bytes one incoming connection makes this
	// member hold: requests being served, each with room for the largest
	// answer its operation can have, and answers waiting for the caller's
	// flow control (a caller that sends requests without reading their
	// answers). At the bound the member stops reading that connection's
	// requests until answers leave. 0 = DefaultMaxConnBytes (8 MiB).
	MaxConnBytes int
	// StallTimeout is how long a waiting answer may wait for the caller
	// to read: a caller that takes none of it for this long is cut off
	// (its connection closed with application error code 2), counted in
	// tlsring_transport_slow_readers_total and logged (sampled).
	// 0 = DefaultStallTimeout (5s).
	StallTimeout time.Duration
	// StatelessResetKey lets a restarted member reset connections its
	// previous incarnation held, so callers notice at their next packet
	// instead of waiting for the idle timeout. It must survive restarts:
	// nil = derived (SHA-256) from the private key of the first
	// certificate and the listening address, or random if the key cannot
	// be marshalled.
	StatelessResetKey *[32]byte
	// Metrics, if not nil, counts calls and connections; see NewMetrics.
	// Several transports may share one Metrics.
	Metrics *Metrics
}

// Defaults of QUICConfig's zero values.
const (
	DefaultDialTimeout           = time.Second
	DefaultMinBackoff            = 50 * time.Millisecond
	DefaultMaxBackoff            = 2 * time.Second
	DefaultRedialWait            = 50 * time.Millisecond
	DefaultKeepAlive             = 2 * time.Second
	DefaultIdleTimeout           = 10 * time.Second
	DefaultMaxConcurrentRequests = 256
	DefaultMaxConnBytes          = 8 << 20
	DefaultStallTimeout          = 5 * time.Second
)

// withDefaults checks c, naming the field that is wrong, and returns it
// with every zero field set to its default (a MaxBackoff below MinBackoff
// is raised to it).
func (c QUICConfig) withDefaults() (QUICConfig, error) {
	switch {
	case c.TLS == nil || len(c.TLS.Certificates) == 0:
		return c, errors.New("transport: QUICConfig.TLS needs this member's certificate")
	case c.TLS.RootCAs == nil || c.TLS.ClientCAs == nil:
		return c, errors.New("transport: QUICConfig.TLS needs the cluster CA in RootCAs and ClientCAs")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"DialTimeout", int64(c.DialTimeout)}, {"MinBackoff", int64(c.MinBackoff)}, {"MaxBackoff", int64(c.MaxBackoff)},
		{"RedialWait", int64(c.RedialWait)}, {"KeepAlive", int64(c.KeepAlive)}, {"IdleTimeout", int64(c.IdleTimeout)},
		{"MaxConcurrentRequests", int64(c.MaxConcurrentRequests)}, {"MaxConnBytes", int64(c.MaxConnBytes)},
		{"StallTimeout", int64(c.StallTimeout)},
	} {
		if f.v < 0 {
			return c, fmt.Errorf("transport: QUICConfig.%s is negative; use 0 for the default", f.name)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.MinBackoff = cmp.Or(c.MinBackoff, DefaultMinBackoff)
	c.MaxBackoff = max(cmp.Or(c.MaxBackoff, DefaultMaxBackoff), c.MinBackoff)
	c.RedialWait = cmp.Or(c.RedialWait, DefaultRedialWait)
	c.KeepAlive = cmp.Or(c.KeepAlive, DefaultKeepAlive)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.MaxConcurrentRequests = cmp.Or(c.MaxConcurrentRequests, DefaultMaxConcurrentRequests)
	c.MaxConnBytes = cmp.Or(c.MaxConnBytes, DefaultMaxConnBytes)
	c.StallTimeout = cmp.Or(c.StallTimeout, DefaultStallTimeout)
	return c, nil
}

// QUIC is a Transport over QUIC with mutual TLS. One UDP socket both
// listens and dials; each member this one calls gets one connection with
// one long-lived stream that carries many requests at once.
type QUIC struct {
	cfg     QUICConfig
	log     *slog.Logger
	h       Handler
	addr    string
	udp     *net.UDPConn
	tr      *quic.Transport
	ln      *quic.Listener
	qconf   *quic.Config
	tlsConf *tls.Config // client-side base, ServerName set per member
	metrics *Metrics

	ctx    context.Context // canceled by Close: ends dials and handlers
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport started

	// Log lines about what remote parties cause, sampled (logsample.go).
	refusedLog, malformedLog, slowLog, panicLog sampledLog
	// Answer bytes waiting for callers' flow control, all incoming
	// connections together, and the most there ever were; tests read them.
	queued, queuedPeak atomic.Int64

	mu      sync.Mutex
	closed  bool
	remotes map[string]*remoteConn  // outgoing, by member address
	inbound map[*quic.Conn]struct{} // incoming connections
	done    chan struct{}           // closed by Close
}

var _ Transport = (*QUIC)(nil)

// ListenQUIC listens on cfg.Addr and serves incoming requests with h. The
// Transport it returns is a *QUIC; NewQUIC returns it as such.
func ListenQUIC(cfg QUICConfig, h Handler) (Transport, error) {
	t, err := NewQUIC(cfg, h)
	if err != nil {
		return nil, err // a nil interface, not a nil *QUIC in one
	}
	return t, nil
}

// NewQUIC is ListenQUIC returning the concrete type, for callers that
// want Addr (the real address after listening on port 0).
func NewQUIC(cfg QUICConfig, h Handler) (*QUIC, error) {
	if h == nil {
		return nil, errors.New("transport: ListenQUIC needs a handler")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	uaddr, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen address %q: %w", cfg.Addr, err)
	}
	udp, err := net.ListenUDP("udp", uaddr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	t := &QUIC{
		cfg:     cfg,
		log:     cfg.Logger,
		h:       h,
		addr:    realAddr(cfg.Addr, udp.LocalAddr().(*net.UDPAddr)),
		udp:     udp,
		metrics: cfg.Metrics,
		remotes: make(map[string]*remoteConn),
		inbound: make(map[*quic.Conn]struct{}),
		done:    make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.log = t.log.With("member", t.addr)
	key := cfg.StatelessResetKey
	if key == nil {
		key = deriveResetKey(cfg.TLS.Certificates[0], t.addr)
	}
	t.tr = &quic.Transport{Conn: udp, StatelessResetKey: (*quic.StatelessResetKey)(key)}
	t.qconf = &quic.Config{
		HandshakeIdleTimeout:  cfg.DialTimeout,
		MaxIdleTimeout:        cfg.IdleTimeout,
		KeepAlivePeriod:       cfg.KeepAlive,
		MaxIncomingStreams:    4, // callers use one; a few spare for reconnect races
		MaxIncomingUniStreams: -1,
	}
	t.tlsConf = t.clientTLS(cfg.TLS)
	ln, err := t.tr.Listen(t.serverTLS(cfg.TLS), t.qconf)
	if err != nil {
		t.tr.Close()
		udp.Close()
		return nil, fmt.Errorf("transport: %w", err)
	}
	t.ln = ln
	t.wg.Add(1)
	go t.acceptLoop()
	t.log.Debug("transport listening")
	return t, nil
}

// realAddr is the member's name: the configured host with the port the
// socket actually got, so ":0" and "127.0.0.1:0" read back usefully.
func realAddr(configured string, got *net.UDPAddr) string {
	host, _, err := net.SplitHostPort(configured)
	if err != nil || host == "" {
		return got.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(got.Port))
}

func deriveResetKey(cert tls.Certificate, addr string) *[32]byte {
	var key [32]byte
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		rand.Read(key[:])
		return &key
	}
	h := sha256.New()
	h.Write([]byte("tlsring stateless reset key v1\x00"))
	h.Write([]byte(addr))
	h.Write([]byte{0})
	h.Write(der)
	copy(key[:], h.Sum(nil))
	return &key
}

// Addr returns this member's address with the real port.
func (t *QUIC) Addr() string { return t.addr }

// serverTLS is the listening side's TLS (ServerTLS with our ALPN): every
// refusal is logged, sampled, and counted.
func (t *QUIC) serverTLS(base *tls.Config) *tls.Config {
	return ServerTLS(base, ALPN, t.authorize, func(remote string, err error) {
		t.refusedLog.log(t.log, slog.LevelWarn, "refused member connection", "remote", remote, "reason", err)
		t.metrics.refused()
	})
}

// clientTLS is the dialling side's TLS (ClientTLS with our ALPN),
// completed per member with its ServerName.
func (t *QUIC) clientTLS(base *tls.Config) *tls.Config {
	return ClientTLS(base, ALPN, func(cs tls.ConnectionState) error {
		// crypto/tls has verified the chain and the host name by now.
		if err := t.authorize(cs); err != nil {
			t.refusedLog.log(t.log, slog.LevelWarn, "refused to talk to member", "member", cs.ServerName, "reason", err)
			t.metrics.refused()
			return err
		}
		return nil
	})
}

// authorize applies QUICConfig.Authorize to the peer's leaf certificate.
func (t *QUIC) authorize(cs tls.ConnectionState) error {
	if t.cfg.Authorize == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	if err := t.cfg.Authorize(cs.PeerCertificates[0]); err != nil {
		return fmt.Errorf("transport: member not authorized: %w", err)
	}
	return nil
}

// Reauthorize asks QUICConfig.Authorize again about every live connection,
// incoming and outgoing, and closes those it now refuses: call it when the
// answers change (a member left the list, a certificate was retired).
func (t *QUIC) Reauthorize() {
	if t.cfg.Authorize == nil {
		return
	}
	t.mu.Lock()
	var conns []*quic.Conn
	for c := range t.inbound {
		conns = append(conns, c)
	}
	for _, p := range t.remotes {
		p.mu.Lock()
		if p.cur != nil {
			conns = append(conns, p.cur.conn)
		}
		p.mu.Unlock()
	}
	t.mu.Unlock()
	for _, c := range conns {
		if err := t.authorize(c.ConnectionState().TLS); err != nil {
			t.refusedLog.log(t.log, slog.LevelWarn, "closing connection of a member no longer authorized", "remote", c.RemoteAddr().String(), "reason", err)
			t.metrics.refused()
			c.CloseWithError(codeUnauthorized, "not authorized")
		}
	}
}

// Close stops serving, closes every connection and waits for the
// transport's goroutines. Calls in flight return ErrClosed; handlers in
// flight see their context canceled.
func (t *QUIC) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.cancel()
	peers := t.remotes
	t.remotes = nil
	inbound := t.inbound
	t.inbound = nil
	t.mu.Unlock()

	t.ln.Close()
	for _, p := range peers {
		p.close()
	}
	for c := range inbound {
		c.CloseWithError(codeNoError, "member closing")
	}
	t.tr.Close()
	err := t.udp.Close()
	t.wg.Wait()
	t.log.Debug("transport closed")
	return err
}

// go_ runs f on a goroutine the transport waits for in Close. It reports
// false, and runs nothing, once the transport is closed.
func (t *QUIC) go_(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// queuedAdd counts n answer bytes more (or fewer) waiting for flow control.
func (t *QUIC) queuedAdd(n int) {
	v := t.queued.Add(int64(n))
	for {
		peak := t.queuedPeak.Load()
		if v <= peak || t.queuedPeak.CompareAndSwap(peak, v) {
			break
		}
	}
	t.metrics.queuedBytes(n)
}
