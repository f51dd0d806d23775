// Package transport carries requests between ring members.
//
// A Transport sends a Request to another member and waits for its Response;
// it serves requests arriving from other members with a Handler. Two
// implementations share the interface: QUIC with mutual TLS for real
// clusters (see quic.go and wire.go), and an in-memory Network for fast unit
// tests and simulations (mem.go).
//
// The transport knows nothing of TLS sessions: keys and values are opaque
// bytes, bounded by the limits below.
//
// # Bounds
//
// Everything another member can make a QUIC transport hold is bounded, so
// that an authenticated but hostile or broken member cannot grow this one
// without limit:
//
//   - Frames: a request or answer frame is at most MaxFrameSize bytes
//     (a put_many at every limit, about 1.1 MiB); a longer length prefix
//     closes the connection before anything is allocated.
//   - Requests outstanding per incoming connection: at most
//     QUICConfig.MaxConcurrentRequests (default 256) read and not yet
//     answered, counting answers that wait for the caller's flow control.
//   - Bytes held per incoming connection: at most QUICConfig.MaxConnBytes
//     (default 8 MiB) of requests being served (each counted with room for
//     the largest answer its operation can have: a value of MaxValueSize
//     and a message of MaxMessageSize) and of answers waiting for flow
//     control. The bound is checked before each request is read, so a
//     connection's streams (at most 4) can each exceed it by one request
//     and its answer: at most MaxConnBytes + 4 x (MaxFrameSize + 67 KiB),
//     about 13 MiB with the defaults.
//   - At either bound the member stops reading the connection's requests;
//     the caller's writes then block on QUIC flow control (backpressure).
//     Unread requests wait in QUIC's receive buffer, bounded by the flow
//     control window this member advertises (quic-go's defaults: 6 MiB per
//     stream, 15 MiB per connection).
//   - Stalls: an answer that waits QUICConfig.StallTimeout (default 5s)
//     without the caller taking any of it cuts the caller off: its
//     connection is closed with application error code 2, counted in
//     tlsring_transport_slow_readers_total and logged. Other connections
//     are not affected.
//   - Logs: lines about what other parties cause (refused handshakes,
//     malformed frames, members cut off, handler panics) are sampled: at
//     most one per kind every LogInterval, with the number left unlogged;
//     the metrics count every event.
//
// Answers QUIC has taken but not yet sent stay in quic-go's send buffer,
// which the caller's flow-control window bounds (6 MiB per stream and 15
// MiB per connection for a quic-go caller).
package transport

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits every implementation enforces on what it sends and accepts.
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 255
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 64 << 10
	// MaxBatchEntries is the most entries one OpPutMany request carries.
	MaxBatchEntries = 512
	// MaxBatchBytes bounds the summed key and value bytes of one OpPutMany request.
	MaxBatchBytes = 1 << 20
	// MaxTTL is the longest TTL a request may carry.
	MaxTTL = 30 * 24 * time.Hour
)

// Op is a peer protocol operation.
type Op uint8

// Operations of the peer protocol.
const (
	// OpGet returns the value stored under Key, or StatusNotFound.
	OpGet Op = 1
	// OpSet stores Value under Key for TTL.
	OpSet Op = 2
	// OpTake returns the value under Key and removes it atomically: of two
	// concurrent takes of one key, exactly one gets the value.
	OpTake Op = 3
	// OpDelete removes Key; deleting a missing key is not an error.
	OpDelete Op = 4
	// OpPutMany stores every entry of Entries; used to hand entries to
	// their new owner and replica when membership changes.
	OpPutMany Op = 5
	// OpPing asks a member whether it is alive; it touches no data.
	OpPing Op = 6
	// OpSync asks a member to send the caller, named by its member address
	// in Key, every entry of which the caller holds a copy, as OpPutMany
	// requests of its own, and to answer once they were all delivered:
	// the state transfer of a member that starts or rejoins.
	OpSync Op = 7
)

// String names the operation for logs and metrics labels.
func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpSet:
		return "set"
	case OpTake:
		return "take"
	case OpDelete:
		return "delete"
	case OpPutMany:
		return "put_many"
	case OpPing:
		return "ping"
	case OpSync:
		return "sync"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Entry is one key, value and remaining lifetime.
type Entry struct {
	Key   []byte
	Value []byte
	TTL   time.Duration
}

// Request is one call from a member to another.
type Request struct {
	Op      Op
	Key     []byte        // OpGet, OpSet, OpTake, OpDelete; the caller's address for OpSync
	Value   []byte        // OpSet
	TTL     time.Duration // OpSet
	Entries []Entry       // OpPutMany
}

// Status is the outcome of a request.
type Status uint8

// Request outcomes.
const (
	// StatusOK means the request was served; Get and Take carry a value.
	StatusOK Status = 0
	// StatusNotFound means the key is not stored (or has expired).
	StatusNotFound Status = 1
	// StatusBadRequest means the request broke a limit or was malformed.
	StatusBadRequest Status = 2
	// StatusError means the member failed to serve a valid request.
	StatusError Status = 3
)

// String names the status for logs and metrics labels.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not_found"
	case StatusBadRequest:
		return "bad_request"
	case StatusError:
		return "error"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Response is a member's answer to a Request.
type Response struct {
	Status  Status
	Value   []byte        // OpGet, OpTake with StatusOK
	TTL     time.Duration // remaining lifetime of Value
	Message string        // human-readable cause with StatusBadRequest or StatusError
}

// Handler serves requests that other members send to this one. ctx carries
// the caller's remaining deadline; a handler should skip work once it has
// passed. The returned Response must not be nil.
type Handler interface {
	ServeMember(ctx context.Context, req *Request) *Response
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, req *Request) *Response

// ServeMember calls f(ctx, req).
func (f HandlerFunc) ServeMember(ctx context.Context, req *Request) *Response {
	return f(ctx, req)
}

// Transport sends requests to other members and serves theirs.
type Transport interface {
	// Call sends req to member (its address, as listed in the ring) and
	// waits for the response, ctx's deadline or ctx's cancellation, whichever
	// comes first. A non-nil error means no response arrived: the member is
	// unreachable, refused us, or the deadline passed. Call never retains req.
	Call(ctx context.Context, member string, req *Request) (*Response, error)
	// Close stops serving and closes all connections. Calls in flight
	// return ErrClosed.
	Close() error
}

// Errors a Transport returns from Call.
var (
	// ErrClosed means the transport was closed.
	ErrClosed = errors.New("transport: closed")
	// ErrUnreachable means the member could not be reached: no listener, a
	// refused handshake, or a lost connection.
	ErrUnreachable = errors.New("transport: member unreachable")
)

// Validate checks req against the protocol's limits. Implementations call
// it before sending and before serving, so a handler never sees a request
// that breaks a limit.
func (req *Request) Validate() error {
	switch req.Op {
	case OpGet, OpTake, OpDelete, OpSync:
		return checkKey(req.Key)
	case OpSet:
		if err := checkKey(req.Key); err != nil {
			return err
		}
		return checkValue(req.Value, req.TTL)
	case OpPutMany:
		if len(req.Entries) == 0 {
			return errors.New("transport: put_many with no entries")
		}
		if len(req.Entries) > MaxBatchEntries {
			return fmt.Errorf("transport: put_many with %d entries, limit %d", len(req.Entries), MaxBatchEntries)
		}
		total := 0
		for i := range req.Entries {
			e := &req.Entries[i]
			if err := checkKey(e.Key); err != nil {
				return err
			}
			if err := checkValue(e.Value, e.TTL); err != nil {
				return err
			}
			total += len(e.Key) + len(e.Value)
		}
		if total > MaxBatchBytes {
			return fmt.Errorf("transport: put_many of %d bytes, limit %d", total, MaxBatchBytes)
		}
		return nil
	case OpPing:
		return nil
	}
	return fmt.Errorf("transport: unknown operation %d", uint8(req.Op))
}

func checkKey(k []byte) error {
	if len(k) == 0 {
		return errors.New("transport: empty key")
	}
	if len(k) > MaxKeySize {
		return fmt.Errorf("transport: key of %d bytes, limit %d", len(k), MaxKeySize)
	}
	return nil
}

func checkValue(v []byte, ttl time.Duration) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("transport: value of %d bytes, limit %d", len(v), MaxValueSize)
	}
	if ttl <= 0 {
		return fmt.Errorf("transport: ttl %v must be positive", ttl)
	}
	if ttl > MaxTTL {
		return fmt.Errorf("transport: ttl %v exceeds limit %v", ttl, MaxTTL)
	}
	return nil
}
