// server.go: the Server that answers memcached text-protocol clients from
// a Backend, its accept loop, and who it admits: at most MaxConns
// connections, MaxConnsPerSource from one source, idle ones reclaimed when
// full. conn.go serves one connection.

package memcache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Backend is what the Server stores into; *peer.Peer satisfies it. A miss
// is an error for which IsNotFound is true.
type Backend interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Set(ctx context.Context, key, value []byte, ttl time.Duration) error
	Take(ctx context.Context, key []byte) ([]byte, error)
	Delete(ctx context.Context, key []byte) error
}

// Server defaults, used for zero fields.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultMaxTTL       = 30 * 24 * time.Hour
	DefaultMaxValueSize = 64 << 10
	DefaultTimeout      = 250 * time.Millisecond
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultStallTimeout = 10 * time.Second
	DefaultMaxConns     = 1024
	// ReclaimIdle is how long a connection must have waited for a command
	// before a full Server may close it to admit a new one.
	ReclaimIdle = time.Second
	// swallowLimit is the largest data block of a refused storage command
	// the server reads and discards to stay in sync; beyond it, it answers
	// and closes the connection.
	swallowLimit = 1 << 20
	// readBufferSize and writeBufferSize are a connection's buffers: a
	// command line is read whole, and replies are sent once this many
	// bytes are pending (or when the client's input runs dry).
	readBufferSize  = MaxLineLen
	writeBufferSize = 4 << 10
	// socketSendBuffer and socketReceiveBuffer bound the kernel buffers of
	// a TCP connection (Linux doubles them): a client that stops reading
	// pins at most this much kernel memory besides what Server holds.
	socketSendBuffer    = 128 << 10
	socketReceiveBuffer = 64 << 10
)

// Server serves the memcached text protocol from Backend. Set the fields
// before calling Serve; zero values take the documented defaults. See the
// package documentation for the bounds it keeps.
type Server struct {
	// Backend stores the values. Required.
	Backend Backend
	// DefaultTTL is the lifetime of values set with exptime 0 (which means
	// "never expires" to memcached; the ring needs a bound).
	// 0 = DefaultTTL (5 minutes).
	DefaultTTL time.Duration
	// MaxTTL caps every lifetime. 0 = DefaultMaxTTL (30 days, the ring's
	// limit).
	MaxTTL time.Duration
	// MaxValueSize bounds a value; larger ones get "SERVER_ERROR object
	// too large for cache". 0 = DefaultMaxValueSize (64 KiB, the ring's
	// limit).
	MaxValueSize int
	// Timeout bounds the Backend calls of one command.
	// 0 = DefaultTimeout (250 ms).
	Timeout time.Duration
	// IdleTimeout closes a connection that sends no command for this long.
	// 0 = DefaultIdleTimeout (5 minutes).
	IdleTimeout time.Duration
	// StallTimeout cuts off a client that stalls in the middle of a
	// command: one that takes none of its replies for this long (it
	// stopped reading), or does not send the data block of a set within
	// this long of its command line. 0 = DefaultStallTimeout (10 s).
	StallTimeout time.Duration
	// MaxConns bounds open connections. When it is reached, a new
	// connection closes the connection that has waited longest for a
	// command (at least ReclaimIdle), from the source with the most
	// connections; if none has, the new one is answered "SERVER_ERROR too
	// many connections" and closed. 0 = DefaultMaxConns (1024).
	MaxConns int
	// MaxConnsPerSource bounds the connections from one source: an IPv4
	// address, or an IPv6 /64. More are answered "SERVER_ERROR too many
	// connections from your address" and closed. Unix-socket clients are
	// not limited by source. 0 = half of MaxConns (at least 1), so that no
	// single source can fill the Server; < 0 = no per-source limit.
	MaxConnsPerSource int
	// Version is the answer to "version". "" = "tlsring".
	Version string
	// Logger receives connection errors at debug level, and refusals,
	// reclaims and stalls at warn level, at most one line of each kind
	// per 10 s. nil = slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts commands and connections.
	Metrics *Metrics
	// Now is the clock for absolute exptimes. nil = time.Now.
	Now func() time.Time

	// reclaimIdle overrides ReclaimIdle in tests.
	reclaimIdle time.Duration

	defaultsOnce sync.Once
	effective    *Server // the fields with defaults filled in (settings)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sources   map[netip.Prefix]int // open connections by source
	closed    bool
	wg        sync.WaitGroup
	start     time.Time

	refuseLog, reclaimLog, stallLog logLimiter
}

// conn is an open connection as the Server tracks it.
type conn struct {
	c      net.Conn
	source netip.Prefix // invalid for clients without an IP (Unix sockets)
	// idleSince is when the connection started waiting for a command with
	// no input buffered (Unix nanoseconds), 0 while it is busy.
	idleSince atomic.Int64
	// reclaimed is set, under Server.mu, when the Server closed the
	// connection to admit another; it no longer counts.
	reclaimed bool
}

func (cn *conn) setIdle(idle bool) {
	if cn == nil {
		return
	}
	if idle {
		cn.idleSince.Store(time.Now().UnixNano())
	} else {
		cn.idleSince.Store(0)
	}
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("memcache: server closed")

func (s *Server) init() {
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.sources = map[netip.Prefix]int{}
		s.start = time.Now()
	}
}

// Serve accepts connections on l and serves each in its own goroutine
// until Close. It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	if s.Backend == nil {
		l.Close()
		return errors.New("memcache: Server.Backend is nil")
	}
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetWriteBuffer(socketSendBuffer)
			tc.SetReadBuffer(socketReceiveBuffer)
		}
		cn := s.track(c)
		if cn == nil {
			continue
		}
		s.wg.Go(func() {
			defer s.untrack(cn)
			s.serveConn(c, cn)
		})
	}
}

// sourceOf is the source a connection counts against: its IPv4 address or
// its IPv6 /64; invalid when it has no IP address.
func sourceOf(a net.Addr) netip.Prefix {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip := ta.AddrPort().Addr().Unmap()
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.WithZone("").Prefix(bits)
	return p
}

// track admits c and registers it, or refuses it (closing it) and
// returns nil.
func (s *Server) track(c net.Conn) *conn {
	cn := &conn{c: c, source: sourceOf(c.RemoteAddr())}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return nil
	}
	if limit := s.settings().MaxConnsPerSource; limit > 0 && cn.source.IsValid() && s.sources[cn.source] >= limit {
		s.refuse(c, reasonPerSource, "SERVER_ERROR too many connections from your address\r\n")
		return nil
	}
	if len(s.conns) >= s.settings().MaxConns && !s.reclaimLocked() {
		s.refuse(c, reasonMaxConns, "SERVER_ERROR too many connections\r\n")
		return nil
	}
	s.conns[cn] = struct{}{}
	s.sources[cn.source]++
	s.Metrics.connOpened()
	return cn
}

// refuse answers c with reply and closes it; s.mu is held.
func (s *Server) refuse(c net.Conn, reason, reply string) {
	s.Metrics.refused(reason)
	s.refuseLog.log(s.settings().Logger, slog.LevelWarn, "memcache: refused a connection (raise the limit if this is legitimate load)",
		"remote", c.RemoteAddr().String(), "reason", reason, "max_conns", s.settings().MaxConns, "max_conns_per_source", s.settings().MaxConnsPerSource)
	// The answer is small and the socket new: it fits the kernel buffer,
	// the deadline only guards against the impossible.
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	io.WriteString(c, reply)
	c.Close()
}

// reclaimLocked closes, to make room, the connection that has waited
// longest for a command (at least ReclaimIdle) among those of the source
// with the most connections. It reports whether it closed one. s.mu is
// held.
func (s *Server) reclaimLocked() bool {
	minIdle := ReclaimIdle
	if s.reclaimIdle > 0 {
		minIdle = s.reclaimIdle
	}
	cutoff := time.Now().Add(-minIdle).UnixNano()
	var victim *conn
	var victimSince int64
	victimCount := 0
	for cn := range s.conns {
		since := cn.idleSince.Load()
		if since == 0 || since > cutoff {
			continue
		}
		n := s.sources[cn.source]
		if victim == nil || n > victimCount || n == victimCount && since < victimSince {
			victim, victimSince, victimCount = cn, since, n
		}
	}
	if victim == nil {
		return false
	}
	s.removeLocked(victim)
	victim.reclaimed = true
	victim.c.Close()
	s.Metrics.reclaim()
	s.reclaimLog.log(s.settings().Logger, slog.LevelWarn, "memcache: face full: closed an idle connection to admit a new one",
		"remote", victim.c.RemoteAddr().String(), "idle", time.Since(time.Unix(0, victimSince)).Round(time.Millisecond), "max_conns", s.settings().MaxConns)
	return true
}

// removeLocked stops counting cn; s.mu is held.
func (s *Server) removeLocked(cn *conn) {
	delete(s.conns, cn)
	if s.sources[cn.source]--; s.sources[cn.source] <= 0 {
		delete(s.sources, cn.source)
	}
	s.Metrics.connClosed()
}

func (s *Server) untrack(cn *conn) {
	cn.c.Close()
	s.mu.Lock()
	if !cn.reclaimed {
		s.removeLocked(cn)
	}
	s.mu.Unlock()
}

// Close stops every Serve, closes every connection and waits for their
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for cn := range s.conns {
		cn.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// settings returns the Server's fields with every zero one set to its
// default, resolved once, at the first use (the fields must not change
// after Serve, as the Server's doc says).
func (s *Server) settings() *Server {
	s.defaultsOnce.Do(func() { s.effective = s.withDefaults() })
	return s.effective
}

// withDefaults returns a copy of s's settings (not its state) with every
// zero field set to its default. MaxConnsPerSource becomes 0 for "no
// limit" (it was negative) or its default, half of MaxConns (at least 1).
func (s *Server) withDefaults() *Server {
	c := &Server{
		Backend: s.Backend, DefaultTTL: s.DefaultTTL, MaxTTL: s.MaxTTL, MaxValueSize: s.MaxValueSize,
		Timeout: s.Timeout, IdleTimeout: s.IdleTimeout, StallTimeout: s.StallTimeout,
		MaxConns: s.MaxConns, MaxConnsPerSource: s.MaxConnsPerSource, Version: s.Version,
		Logger: s.Logger, Metrics: s.Metrics, Now: s.Now,
	}
	pos := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	c.DefaultTTL = pos(c.DefaultTTL, DefaultTTL)
	c.MaxTTL = pos(c.MaxTTL, DefaultMaxTTL)
	c.Timeout = pos(c.Timeout, DefaultTimeout)
	c.IdleTimeout = pos(c.IdleTimeout, DefaultIdleTimeout)
	c.StallTimeout = pos(c.StallTimeout, DefaultStallTimeout)
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.MaxConnsPerSource < 0:
		c.MaxConnsPerSource = 0
	case c.MaxConnsPerSource == 0:
		c.MaxConnsPerSource = max(1, c.MaxConns/2)
	}
	if c.Version == "" {
		c.Version = "tlsring"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
