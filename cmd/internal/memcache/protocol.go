// Package memcache is tlsring's memcached text-protocol face: a parser for
// the command lines of the subset of the protocol that TLS session caches
// use (get, gets, set, delete, version, stats, verbosity, quit), a Server
// that answers them from a Backend (a *peer.Peer in `tlsring peer`), and a
// small Client that implements tlsglue.Store over that face.
//
// It lets non-Go TLS terminators (Apache's mod_socache_memcache, OpenResty
// with lua-resty-memcached, ...) use a tlsring member as a sidecar session
// cache. Keys are passed to the Backend as the bytes the client sent.
//
// Differences from memcached, all documented where they apply: flags must
// be 0 (values are stored as they are, so that Go and memcached users of
// the ring see the same bytes); gets returns a CAS unique of 0 and cas is
// not supported; add, replace, append, prepend, cas, incr, decr, touch and
// flush_all answer SERVER_ERROR; in a get of several keys, a key whose
// lookup fails after a value was sent is answered as a miss.
//
// # Bounds
//
// The face has no authentication: whoever can connect can read and write
// sessions. Listen makes a Unix socket with file permissions (0660 by
// default) and warns about TCP addresses beyond loopback. Whatever clients
// do, the Server keeps these bounds (defaults in parentheses):
//
//   - Connections: at most Server.MaxConns (1024). A source (an IPv4
//     address or an IPv6 /64) holds at most Server.MaxConnsPerSource (half
//     of MaxConns), so no one source can lock others out. When full, a new
//     connection closes the one that has waited longest for a command (at
//     least ReclaimIdle, 1 s) from the source with the most connections;
//     only if none is idle is it refused. A connection that sends no
//     command for Server.IdleTimeout (5 min) is closed.
//   - Replies: a connection runs one command at a time and reads nothing
//     more while replies are unsent, so a client that does not read stops
//     being read (backpressure). A get writes each value as it is fetched:
//     a connection holds at most one value (Server.MaxValueSize, 64 KiB)
//     plus 4 KiB of buffered replies, however many keys and commands it
//     pipelines.
//   - Stalls: a client that takes none of its replies for
//     Server.StallTimeout (10 s), or does not send the data block of a set
//     within it, is cut off, counted
//     (tlsring_memcached_stalled_clients_total) and logged.
//   - Memory: per connection, a 4 KiB read buffer, a 4 KiB write buffer,
//     one value in flight (64 KiB; a set's value is read into a buffer the
//     Backend keeps) and the keys of one command (at most 64 of 250 bytes):
//     under 96 KiB, so under 96 MiB for 1024 connections, besides what the
//     Backend stores. Kernel socket buffers are set to 128 KiB (send) and
//     64 KiB (receive), which Linux doubles.
//   - Input: a command line is at most MaxLineLen (4 KiB), a key MaxKeyLen
//     (250 bytes), a get MaxKeysPerGet (64) keys, a value MaxValueSize; a
//     larger data block up to 1 MiB is read and discarded, a larger one
//     closes the connection.
//   - Logs: refusals, reclaims and stalls log at most one line of each
//     kind per 10 s, with the number left out; metrics count every one.
//
// protocol.go holds the command-line parser; it does no I/O.
package memcache

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Protocol limits.
const (
	// MaxKeyLen is the longest key, as in memcached.
	MaxKeyLen = 250
	// MaxLineLen bounds a command line, "\r\n" included.
	MaxLineLen = 4096
	// MaxKeysPerGet bounds the keys of one get or gets.
	MaxKeysPerGet = 64
	// RelativeExptimeLimit is the largest exptime read as seconds from now;
	// larger values are absolute Unix times (memcached semantics).
	RelativeExptimeLimit = 30 * 24 * 60 * 60
)

// Command is one parsed command line.
type Command struct {
	// Name is the command as sent: "get", "gets", "set", "delete",
	// "version", "stats", "verbosity", "quit", or one of the storage and
	// other commands that are recognised but not supported.
	Name string
	// Keys holds the keys of get and gets (one or more) and the key of
	// set and delete. They alias the parsed line.
	Keys [][]byte
	// Flags, Exptime and Bytes are the fields of a storage command.
	Flags   uint32
	Exptime int64
	Bytes   int64
	// NoReply asks for no answer (storage commands, delete, verbosity).
	NoReply bool
	// Storage is true for commands followed by a data block of Bytes
	// bytes and "\r\n" (set, add, replace, append, prepend, cas).
	Storage bool
}

// Error is a protocol error, answered to the client as Kind followed by
// Msg ("ERROR" carries no message).
type Error struct {
	Kind string // "ERROR" (unknown command) or "CLIENT_ERROR"
	Msg  string
}

// Error returns the reply line without its "\r\n".
func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Kind
	}
	return e.Kind + " " + e.Msg
}

// Reply returns the protocol line for e, "\r\n" included.
func (e *Error) Reply() []byte { return []byte(e.Error() + "\r\n") }

var errUnknown = &Error{Kind: "ERROR"}

func clientError(format string, args ...any) *Error {
	return &Error{Kind: "CLIENT_ERROR", Msg: fmt.Sprintf(format, args...)}
}

// ParseCommand parses one command line, with or without its trailing
// "\r\n" or "\n". It returns an *Error for anything it cannot accept; it
// never panics and allocates little (keys alias line).
func ParseCommand(line []byte) (Command, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > MaxLineLen-2 {
		return Command{}, clientError("line too long")
	}
	var toks [MaxKeysPerGet + 2][]byte
	n := 0
	for rest := line; ; {
		i := 0
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		rest = rest[i:]
		if len(rest) == 0 {
			break
		}
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		if n == len(toks) {
			return Command{}, clientError("too many tokens")
		}
		toks[n] = rest[:j]
		n++
		rest = rest[j:]
	}
	if n == 0 {
		return Command{}, errUnknown
	}
	args := toks[1:n]
	c := Command{Name: string(toks[0])}
	switch c.Name {
	case "get", "gets":
		if len(args) == 0 {
			return Command{}, errUnknown // memcached answers ERROR too
		}
		if len(args) > MaxKeysPerGet {
			return Command{}, clientError("too many keys (at most %d)", MaxKeysPerGet)
		}
		for _, k := range args {
			if err := checkKey(k); err != nil {
				return Command{}, err
			}
		}
		c.Keys = append(make([][]byte, 0, len(args)), args...)
		return c, nil
	case "set", "add", "replace", "append", "prepend", "cas":
		c.Storage = true
		want := 4
		if c.Name == "cas" {
			want = 5
		}
		if len(args) == want+1 && string(args[want]) == "noreply" {
			c.NoReply = true
			args = args[:want]
		}
		if len(args) != want {
			return Command{}, errUnknown
		}
		if err := checkKey(args[0]); err != nil {
			return Command{}, err
		}
		flags, err := strconv.ParseUint(string(args[1]), 10, 32)
		if err != nil {
			return Command{}, clientError("bad command line format")
		}
		exp, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return Command{}, clientError("bad command line format")
		}
		size, err := strconv.ParseInt(string(args[3]), 10, 64)
		if err != nil || size < 0 {
			return Command{}, clientError("bad data chunk")
		}
		c.Keys = [][]byte{args[0]}
		c.Flags, c.Exptime, c.Bytes = uint32(flags), exp, size
		return c, nil
	case "delete":
		if len(args) >= 2 && string(args[len(args)-1]) == "noreply" {
			c.NoReply = true
			args = args[:len(args)-1]
		}
		// memcached accepts a legacy "delete <key> 0".
		if len(args) == 2 && string(args[1]) == "0" {
			args = args[:1]
		}
		if len(args) != 1 {
			return Command{}, clientError("bad command line format.  Usage: delete <key> [noreply]")
		}
		if err := checkKey(args[0]); err != nil {
			return Command{}, err
		}
		c.Keys = [][]byte{args[0]}
		return c, nil
	case "verbosity":
		if len(args) >= 1 && string(args[len(args)-1]) == "noreply" {
			c.NoReply = true
			args = args[:len(args)-1]
		}
		if len(args) != 1 {
			return Command{}, errUnknown
		}
		return c, nil
	case "version", "quit", "flush_all", "stats":
		return c, nil
	case "incr", "decr", "touch", "gat", "gats":
		return c, nil // recognised, answered as unsupported
	}
	return Command{}, errUnknown
}

// checkKey accepts keys of 1 to MaxKeyLen bytes without control
// characters or spaces.
func checkKey(k []byte) error {
	if len(k) == 0 {
		return clientError("empty key")
	}
	if len(k) > MaxKeyLen {
		return clientError("key longer than %d bytes", MaxKeyLen)
	}
	for _, b := range k {
		if b <= ' ' || b == 0x7f {
			return clientError("key contains a control character")
		}
	}
	return nil
}

// IsNotFound reports whether err means "no such key": errors.Is(err,
// ErrNotFound), or an error in err's chain with a NotFound() bool method
// returning true (such as peer.ErrNotFound).
func IsNotFound(err error) bool {
	if errors.Is(err, ErrNotFound) {
		return true
	}
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}

// ErrNotFound is the miss error of Client; it has a NotFound() bool method
// so that tlsglue recognises it.
var ErrNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string  { return "memcache: key not found" }
func (notFound) NotFound() bool { return true }
