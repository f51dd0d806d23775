// server.go: the Server that answers memcached text-protocol clients from
// a Backend, with every size, count and wait bounded.

package memcache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
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
	DefaultMaxConns     = 1024
	// swallowLimit is the largest data block of a refused storage command
	// the server reads and discards to stay in sync; beyond it, it answers
	// and closes the connection.
	swallowLimit = 1 << 20
	writeTimeout = 10 * time.Second
)

// Server serves the memcached text protocol from Backend. Set the fields
// before calling Serve; zero values take the documented defaults.
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
	// IdleTimeout closes a connection that sends nothing for this long.
	// 0 = DefaultIdleTimeout (5 minutes).
	IdleTimeout time.Duration
	// MaxConns bounds open connections; more are answered "SERVER_ERROR
	// too many connections" and closed. 0 = DefaultMaxConns (1024).
	MaxConns int
	// Version is the answer to "version". "" = "tlsring".
	Version string
	// Logger receives connection errors at debug level. nil = slog.Default().
	Logger *slog.Logger
	// Metrics, if not nil, counts commands and connections.
	Metrics *Metrics
	// Now is the clock for absolute exptimes. nil = time.Now.
	Now func() time.Time

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
	start     time.Time
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("memcache: server closed")

func (s *Server) init() {
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
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
		if !s.track(c) {
			continue
		}
		s.wg.Go(func() {
			defer s.untrack(c)
			s.serveConn(c)
		})
	}
}

// track registers c, or refuses it when the server is closed or full.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if len(s.conns) >= s.maxConns() {
		s.Metrics.refused()
		c.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(c, "SERVER_ERROR too many connections\r\n")
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.Metrics.connOpened()
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.Metrics.connClosed()
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
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// deadliner is the part of net.Conn that serveConn uses when present.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// serveConn answers the commands read from rw until it ends, errs, says
// quit or breaks the protocol beyond repair.
func (s *Server) serveConn(rw io.ReadWriter) {
	dl, _ := rw.(deadliner)
	r := bufio.NewReaderSize(rw, MaxLineLen)
	w := bufio.NewWriterSize(rw, 4096)
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	var value []byte
	for {
		if r.Buffered() == 0 {
			// Answer pipelined commands together, then wait for more.
			if dl != nil {
				dl.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			if w.Flush() != nil {
				return
			}
			if dl != nil {
				dl.SetReadDeadline(time.Now().Add(idle))
			}
		}
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.Metrics.command("invalid", "client_error")
			w.WriteString("CLIENT_ERROR line too long\r\n")
			w.Flush()
			return
		}
		if err != nil {
			if len(line) > 0 && !errors.Is(err, io.EOF) {
				s.logger().Debug("memcached connection read failed", "err", err)
			}
			return
		}
		cmd, perr := ParseCommand(line)
		if perr != nil {
			var pe *Error
			errors.As(perr, &pe)
			s.Metrics.command("invalid", "client_error")
			w.Write(pe.Reply())
			continue
		}
		// The keys alias r's buffer, which the next read overwrites, and
		// a Backend may use a key after returning (peer's hedged reads
		// do): give it copies.
		for i, k := range cmd.Keys {
			cmd.Keys[i] = bytes.Clone(k)
		}
		if cmd.Storage {
			var keep bool
			value, keep = s.storage(r, w, &cmd, value)
			if !keep {
				w.Flush()
				return
			}
			continue
		}
		if !s.command(w, &cmd) {
			w.Flush()
			return
		}
	}
}

// storage reads the data block of a storage command and answers it. It
// returns the (reusable) value buffer and whether the connection can go on.
func (s *Server) storage(r *bufio.Reader, w *bufio.Writer, cmd *Command, buf []byte) ([]byte, bool) {
	maxValue := s.MaxValueSize
	if maxValue <= 0 {
		maxValue = DefaultMaxValueSize
	}
	reply := func(result, line string) {
		s.Metrics.command(cmd.Name, result)
		if !cmd.NoReply {
			w.WriteString(line)
		}
	}
	if cmd.Bytes > int64(maxValue) {
		if cmd.Bytes > swallowLimit {
			s.Metrics.command(cmd.Name, "client_error")
			w.WriteString("SERVER_ERROR object too large for cache\r\n")
			return buf, false
		}
		if _, err := io.CopyN(io.Discard, r, cmd.Bytes+2); err != nil {
			return buf, false
		}
		reply("too_large", "SERVER_ERROR object too large for cache\r\n")
		return buf, true
	}
	n := int(cmd.Bytes) + 2
	if cap(buf) < n {
		buf = make([]byte, n, max(n, 1024))
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, false
	}
	if buf[n-2] != '\r' || buf[n-1] != '\n' {
		// The client's framing is broken: we cannot find the next command.
		s.Metrics.command(cmd.Name, "client_error")
		w.WriteString("CLIENT_ERROR bad data chunk\r\n")
		return buf, false
	}
	if cmd.Name != "set" {
		reply("unsupported", "SERVER_ERROR "+cmd.Name+" is not supported by tlsring\r\n")
		return buf, true
	}
	if cmd.Flags != 0 {
		reply("client_error", "CLIENT_ERROR flags must be 0 (tlsring stores values as they are)\r\n")
		return buf, true
	}
	// The backend may keep the value: hand it a copy, reuse buf.
	value := append([]byte(nil), buf[:n-2]...)
	ctx, cancel := s.ctx()
	defer cancel()
	ttl, live := s.ttl(cmd.Exptime)
	var err error
	if live {
		err = s.Backend.Set(ctx, cmd.Keys[0], value, ttl)
	} else {
		// Already expired: memcached stores it unreachable; drop the key.
		err = s.Backend.Delete(ctx, cmd.Keys[0])
	}
	if err != nil {
		s.logger().Debug("memcached set failed", "err", err)
		reply("error", serverError(err))
		return buf, true
	}
	reply("stored", "STORED\r\n")
	return buf, true
}

// ttl converts a memcached exptime into a lifetime; live is false for a
// value that has already expired.
func (s *Server) ttl(exptime int64) (ttl time.Duration, live bool) {
	maxTTL := s.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	switch {
	case exptime == 0:
		ttl = s.DefaultTTL
		if ttl <= 0 {
			ttl = DefaultTTL
		}
	case exptime < 0:
		return 0, false
	case exptime <= RelativeExptimeLimit:
		ttl = time.Duration(exptime) * time.Second
	default:
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		secs := exptime - now().Unix()
		if secs <= 0 {
			return 0, false
		}
		if secs > int64(maxTTL/time.Second) {
			return maxTTL, true
		}
		ttl = time.Duration(secs) * time.Second
	}
	return min(ttl, maxTTL), true
}

func (s *Server) ctx() (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	return context.WithTimeout(context.Background(), t)
}

// serverError is the reply for a Backend error. The message is bounded
// and kept on one line.
func serverError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	b := []byte(msg)
	for i, c := range b {
		if c < ' ' || c == 0x7f {
			b[i] = ' '
		}
	}
	return "SERVER_ERROR " + string(b) + "\r\n"
}

// command answers a command without a data block; false ends the
// connection.
func (s *Server) command(w *bufio.Writer, cmd *Command) bool {
	switch cmd.Name {
	case "get", "gets":
		ctx, cancel := s.ctx()
		defer cancel()
		values := make([][]byte, len(cmd.Keys))
		found := make([]bool, len(cmd.Keys))
		hits := 0
		for i, k := range cmd.Keys {
			v, err := s.Backend.Get(ctx, k)
			if err != nil && !IsNotFound(err) {
				s.logger().Debug("memcached get failed", "err", err)
				s.Metrics.command(cmd.Name, "error")
				w.WriteString(serverError(err))
				return true
			}
			if err == nil {
				values[i], found[i] = v, true
				hits++
			}
		}
		for i, v := range values {
			if !found[i] {
				continue
			}
			w.WriteString("VALUE ")
			w.Write(cmd.Keys[i])
			w.WriteString(" 0 ")
			w.WriteString(strconv.Itoa(len(v)))
			if cmd.Name == "gets" {
				w.WriteString(" 0")
			}
			w.WriteString("\r\n")
			w.Write(v)
			w.WriteString("\r\n")
		}
		w.WriteString("END\r\n")
		if hits > 0 {
			s.Metrics.command(cmd.Name, "hit")
		} else {
			s.Metrics.command(cmd.Name, "miss")
		}
	case "delete":
		ctx, cancel := s.ctx()
		defer cancel()
		// Take tells whether the key was there and removes the copies;
		// of racing deletes at most one is told DELETED, which is what
		// Client.Take builds on. (A Delete after a NOT_FOUND Take, to
		// clear a copy the owner lost, would steal the copy a racing
		// winner is about to take, and both would lose.)
		_, err := s.Backend.Take(ctx, cmd.Keys[0])
		var result, line string
		switch {
		case err == nil:
			result, line = "deleted", "DELETED\r\n"
		case IsNotFound(err):
			result, line = "not_found", "NOT_FOUND\r\n"
		default:
			s.logger().Debug("memcached delete failed", "err", err)
			result, line = "error", serverError(err)
		}
		s.Metrics.command(cmd.Name, result)
		if !cmd.NoReply {
			w.WriteString(line)
		}
	case "version":
		v := s.Version
		if v == "" {
			v = "tlsring"
		}
		s.Metrics.command(cmd.Name, "ok")
		fmt.Fprintf(w, "VERSION %s\r\n", v)
	case "verbosity":
		s.Metrics.command(cmd.Name, "ok")
		if !cmd.NoReply {
			w.WriteString("OK\r\n")
		}
	case "stats":
		s.Metrics.command(cmd.Name, "ok")
		s.mu.Lock()
		conns := len(s.conns)
		s.mu.Unlock()
		fmt.Fprintf(w, "STAT pid %d\r\nSTAT uptime %d\r\nSTAT time %d\r\nSTAT version %s\r\nSTAT curr_connections %d\r\nEND\r\n",
			os.Getpid(), int64(time.Since(s.start).Seconds()), time.Now().Unix(), s.versionOr(), conns)
	case "quit":
		s.Metrics.command(cmd.Name, "ok")
		return false
	default:
		s.Metrics.command(cmd.Name, "unsupported")
		w.WriteString("SERVER_ERROR " + cmd.Name + " is not supported by tlsring\r\n")
	}
	return true
}

func (s *Server) versionOr() string {
	if s.Version == "" {
		return "tlsring"
	}
	return s.Version
}
