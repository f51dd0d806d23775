// client.go: a small memcached text-protocol client that implements
// tlsglue.Store, so TLS servers can keep their sessions in a tlsring
// member through its memcached face (or in any memcached).

package memcache

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Client defaults.
const (
	DefaultMaxIdle     = 16
	DefaultDialTimeout = time.Second
	// maxClientValue bounds a value the client accepts in an answer.
	maxClientValue = 1 << 20
)

// MaxClientKeyLen is the longest key Client accepts: base64url-encoded it
// fills MaxKeyLen.
const MaxClientKeyLen = MaxKeyLen / 4 * 3

// Client talks to one memcached-protocol server over a small pool of
// connections. Its methods are safe for concurrent use, honour their
// context's deadline and cancellation, and have the signatures of
// tlsglue.Store.
//
// Keys are binary (tlsglue's store keys are): Client sends them
// base64url-encoded (unpadded), so that any key fits the text protocol; a
// key "k" set through Client is the key base64url("k") to other clients.
// Values are stored as they are, with flags 0 and an exptime in seconds
// (rounded up).
//
// Take is a get followed by a delete. It is not atomic, but of several
// Takes racing for one key only the one whose delete answers DELETED
// returns the value, so with tlsring's face (whose delete is a ring-wide
// take) a value is taken at most once. Between the get and the delete a Set
// of the same key could be lost.
type Client struct {
	// Network and Addr name the server: "tcp" and "host:port", or "unix"
	// and a socket path.
	Network, Addr string
	// MaxIdle is how many idle connections are kept. 0 = DefaultMaxIdle.
	MaxIdle int
	// DialTimeout bounds a connection attempt (the context may shorten
	// it). 0 = DefaultDialTimeout.
	DialTimeout time.Duration

	mu     sync.Mutex
	idle   []*clientConn
	closed bool
}

// NewClient returns a Client for the server at addr on network.
func NewClient(network, addr string) *Client {
	return &Client{Network: network, Addr: addr}
}

type clientConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// ServerError is an error line the server answered: SERVER_ERROR,
// CLIENT_ERROR or ERROR. The connection stays usable.
type ServerError struct{ Line string }

// Error describes the answer.
func (e *ServerError) Error() string { return "memcache: server answered " + strconv.Quote(e.Line) }

// errClosed is returned by calls on a closed Client.
var errClosed = errors.New("memcache: client closed")

// ClientKey returns the protocol key Client uses for key: its unpadded
// base64url encoding. Other clients of the same server see the value under
// this key.
func ClientKey(key []byte) string { return base64.RawURLEncoding.EncodeToString(key) }

func encodeKey(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, errors.New("memcache: empty key")
	}
	if len(key) > MaxClientKeyLen {
		return nil, fmt.Errorf("memcache: key of %d bytes, limit %d", len(key), MaxClientKeyLen)
	}
	return base64.RawURLEncoding.AppendEncode(nil, key), nil
}

// Get returns the value stored under key, or ErrNotFound.
func (c *Client) Get(ctx context.Context, key []byte) ([]byte, error) {
	k, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = c.do(ctx, func(cc *clientConn) error {
		cc.w.WriteString("get ")
		cc.w.Write(k)
		cc.w.WriteString("\r\n")
		if err := cc.w.Flush(); err != nil {
			return err
		}
		var err error
		v, err = readValue(cc.r, k)
		return err
	})
	return v, err
}

// readValue reads the answer to "get k": at most one VALUE and END.
func readValue(r *bufio.Reader, k []byte) ([]byte, error) {
	var v []byte
	found := false
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, err
		}
		if string(line) == "END" {
			if !found {
				return nil, ErrNotFound
			}
			return v, nil
		}
		f := bytes.Fields(line)
		if len(f) < 4 || string(f[0]) != "VALUE" || found {
			return nil, answerError(line)
		}
		if !bytes.Equal(f[1], k) {
			return nil, fmt.Errorf("memcache: answer for key %q, asked %q", f[1], k)
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 || n > maxClientValue {
			return nil, fmt.Errorf("memcache: bad VALUE line %q", line)
		}
		v = make([]byte, n+2)
		if _, err := io.ReadFull(r, v); err != nil {
			return nil, err
		}
		if v[n] != '\r' || v[n+1] != '\n' {
			return nil, errors.New("memcache: value not followed by CRLF")
		}
		v, found = v[:n], true
	}
}

// Set stores value under key for ttl (rounded up to whole seconds).
func (c *Client) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	k, err := encodeKey(key)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("memcache: ttl %v must be positive", ttl)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	if secs > RelativeExptimeLimit {
		secs = time.Now().Unix() + secs
	}
	return c.do(ctx, func(cc *clientConn) error {
		fmt.Fprintf(cc.w, "set %s 0 %d %d\r\n", k, secs, len(value))
		cc.w.Write(value)
		cc.w.WriteString("\r\n")
		if err := cc.w.Flush(); err != nil {
			return err
		}
		line, err := readLine(cc.r)
		if err != nil {
			return err
		}
		if string(line) != "STORED" {
			return answerError(line)
		}
		return nil
	})
}

// Delete removes key; a missing key is not an error.
func (c *Client) Delete(ctx context.Context, key []byte) error {
	_, err := c.delete(ctx, key)
	return err
}

// delete removes key and reports whether it was there.
func (c *Client) delete(ctx context.Context, key []byte) (bool, error) {
	k, err := encodeKey(key)
	if err != nil {
		return false, err
	}
	var deleted bool
	err = c.do(ctx, func(cc *clientConn) error {
		cc.w.WriteString("delete ")
		cc.w.Write(k)
		cc.w.WriteString("\r\n")
		if err := cc.w.Flush(); err != nil {
			return err
		}
		line, err := readLine(cc.r)
		if err != nil {
			return err
		}
		switch string(line) {
		case "DELETED":
			deleted = true
		case "NOT_FOUND":
		default:
			return answerError(line)
		}
		return nil
	})
	return deleted, err
}

// Take gets key and deletes it; see Client for what it guarantees.
func (c *Client) Take(ctx context.Context, key []byte) ([]byte, error) {
	v, err := c.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	deleted, err := c.delete(ctx, key)
	if err != nil {
		return nil, err
	}
	if !deleted {
		return nil, ErrNotFound // another Take won
	}
	return v, nil
}

// Close closes the idle connections; calls made after Close fail.
// Connections in use are closed when their call ends.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cc := range idle {
		cc.c.Close()
	}
	return nil
}

func answerError(line []byte) error {
	if len(line) > 200 {
		line = line[:200]
	}
	return &ServerError{Line: string(line)}
}

// readLine reads one "\r\n"-terminated line, without it, bounded by
// MaxLineLen.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("memcache: answer line too long")
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// do runs fn on a pooled connection under ctx. Connections that saw an
// I/O or framing error, or whose call ctx cut short, are closed; those
// that got a ServerError or ErrNotFound go back to the pool.
func (c *Client) do(ctx context.Context, fn func(*clientConn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		cc, reused, err := c.get(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = c.doOn(ctx, cc, fn)
		// A pooled connection the server closed while idle (it restarted,
		// say) fails at once: try again on a new one. Every operation is
		// safe to repeat.
		if reused && attempt == 0 && ctx.Err() == nil && isStale(err) {
			continue
		}
		return err
	}
}

// isStale reports whether err is what a connection closed by the server
// gives.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// doOn runs fn on cc and puts cc back in the pool or closes it.
func (c *Client) doOn(ctx context.Context, cc *clientConn, fn func(*clientConn) error) error {
	deadline, _ := ctx.Deadline() // zero: none
	cc.c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { cc.c.SetDeadline(time.Unix(1, 0)) })
	err := fn(cc)
	cut := !stop()
	var se *ServerError
	reusable := !cut && (err == nil || errors.As(err, &se) || errors.Is(err, ErrNotFound))
	if reusable {
		c.put(cc)
		return err
	}
	cc.c.Close()
	if err == nil {
		return nil
	}
	// The connection's deadline may fire a moment before ctx's own timer.
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && !deadline.IsZero() && !time.Now().Before(deadline) {
		return fmt.Errorf("memcache: %w", context.DeadlineExceeded)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("memcache: %w", ctxErr)
	}
	return err
}

// get returns an idle connection (reused) or, if there is none or fresh
// is set, a new one.
func (c *Client) get(ctx context.Context, fresh bool) (cc *clientConn, reused bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, errClosed
	}
	if n := len(c.idle); n > 0 && !fresh {
		cc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cc, true, nil
	}
	c.mu.Unlock()
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, c.Network, c.Addr)
	if err != nil {
		return nil, false, err
	}
	return &clientConn{c: conn, r: bufio.NewReaderSize(conn, MaxLineLen), w: bufio.NewWriter(conn)}, false, nil
}

func (c *Client) put(cc *clientConn) {
	max := c.MaxIdle
	if max <= 0 {
		max = DefaultMaxIdle
	}
	c.mu.Lock()
	if c.closed || len(c.idle) >= max {
		c.mu.Unlock()
		cc.c.Close()
		return
	}
	c.idle = append(c.idle, cc)
	c.mu.Unlock()
}
