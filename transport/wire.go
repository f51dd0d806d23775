// The wire format of the QUIC peer protocol: how requests and responses are
// laid out as frames on a stream, and the bounded, allocation-aware codec
// that writes and reads them. Nothing here touches the network.
//
// # Streams
//
// A caller dials the member, opens one bidirectional QUIC stream and keeps
// it for the life of the connection. It writes request frames; the member
// writes response frames back on the same stream, in any order: every
// response carries the ID of the request it answers, so many requests are in
// flight at once. The first request on a new stream is an OpPing with ID 0
// that the transport answers itself (the handler never sees it); the caller
// waits for its answer before it uses the stream, so a member that refuses
// the caller's certificate is noticed at dial time rather than on the first
// real call.
//
// # Frames
//
// Every frame is a 4-byte length followed by that many bytes of body. All
// integers are unsigned big-endian unless marked otherwise.
//
//	offset size  field
//	0      4     body length n; 9 <= n <= MaxFrameSize
//	4      n     body
//
// Request body (version 1):
//
//	offset size  field
//	0      1     version, 1
//	1      8     request ID, chosen by the caller, unique among its requests in flight
//	9      1     operation: 1 get, 2 set, 3 take, 4 delete, 5 put_many, 6 ping, 7 sync
//	10     4     caller's remaining deadline in microseconds when the frame was
//	             written; 0 means no deadline. The member serves the request under
//	             this deadline and skips it if it has passed before serving.
//	14     8     ttl in nanoseconds (signed, 0 <= ttl <= MaxTTL); 0 when unused
//	22     1     key length k (0..MaxKeySize)
//	23     k     key
//	23+k   4     value length v (0..MaxValueSize)
//	27+k   v     value
//	27+k+v 2     entry count c (0..MaxBatchEntries); non-zero only for put_many
//	29+k+v ...   c entries, each:
//	               1  key length, then the key   (1..MaxKeySize)
//	               4  value length, then the value (0..MaxValueSize)
//	               8  ttl in nanoseconds (signed, 0 <= ttl <= MaxTTL)
//
// The body must end exactly after the last entry; the summed key and value
// bytes of the entries are at most MaxBatchBytes.
//
// Response body (version 1):
//
//	offset size  field
//	0      1     version, 1
//	1      8     ID of the request answered
//	9      1     status: 0 ok, 1 not found, 2 bad request, 3 error
//	10     8     ttl in nanoseconds (signed, 0 <= ttl <= MaxTTL): remaining lifetime of the value
//	18     4     value length v (0..MaxValueSize)
//	22     v     value
//	22+v   2     message length m (0..MaxMessageSize), UTF-8
//	24+v   m     message
//
// # Errors
//
// Every length is checked against its limit before anything is allocated or
// sliced. A request frame whose version or operation the member does not
// know, or whose body breaks a limit, is answered with StatusBadRequest and
// a message naming the cause; the stream stays usable because the length
// prefix still delimits the next frame. Versions after 1 keep the first
// nine bytes of the body (version and ID) so that such answers can always
// be addressed. A frame whose length prefix is out of bounds, or whose body
// is too short to hold a version and an ID, breaks the framing: the member
// logs the reason and closes the connection with application error code 1.
// A caller that receives a malformed response does the same.

package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Wire format constants.
const (
	// WireVersion is the version of the frame layout this package writes.
	WireVersion = 1
	// MaxMessageSize bounds Response.Message on the wire; longer messages
	// are truncated when sent.
	MaxMessageSize = 1024
	// MaxFrameSize is the largest frame body either side accepts: a
	// put_many request at every limit.
	MaxFrameSize = requestHeaderSize + 8 + 1 + 4 + 2 + MaxBatchEntries*(1+4+8) + MaxBatchBytes
)

const (
	frameLenSize       = 4
	idPrefixSize       = 1 + 8         // version + ID: every version keeps these
	requestHeaderSize  = 1 + 8 + 1 + 4 // version, ID, op, deadline
	responseHeaderSize = 1 + 8 + 1 + 8 // version, ID, status, ttl
	maxDeadlineMicros  = 1<<32 - 1
	pingID             = 0 // request ID of the transport's own dial-time ping
)

// requestFrame is a request as it travels: the Request plus the caller's
// request ID and remaining deadline.
type requestFrame struct {
	id       uint64
	deadline uint32 // microseconds; 0 = none
	req      Request
	expires  time.Time // set by the server when the frame arrived; not on the wire
	held     int       // bytes the server counts against the connection's budget; not on the wire
}

// responseFrame is a response as it travels.
type responseFrame struct {
	id   uint64
	resp Response
}

// wireError is a decoding failure. With hasID the frame was delimited well
// enough to answer it with StatusBadRequest; without, the framing is broken.
type wireError struct {
	id    uint64
	hasID bool
	msg   string
}

func (e *wireError) Error() string { return "transport: " + e.msg }

func badFrame(format string, args ...any) *wireError {
	return &wireError{msg: fmt.Sprintf(format, args...)}
}

// deadlineMicros converts a remaining time to the wire's deadline field:
// at least 1 microsecond for any positive or already-passed deadline (so it
// is not read as "none"), clamped to the field's range.
func deadlineMicros(remaining time.Duration) uint32 {
	us := remaining.Microseconds()
	if us < 1 {
		return 1
	}
	if us > maxDeadlineMicros {
		return maxDeadlineMicros
	}
	return uint32(us)
}

// requestSize is the encoded size of f's frame, length prefix included.
func requestSize(req *Request) int {
	n := frameLenSize + requestHeaderSize + 8 + 1 + len(req.Key) + 4 + len(req.Value) + 2
	for i := range req.Entries {
		n += 1 + len(req.Entries[i].Key) + 4 + len(req.Entries[i].Value) + 8
	}
	return n
}

// appendRequest appends the frame of a request to dst. The request must
// satisfy the wire limits (Request.Validate checks a stricter superset);
// a key or entry count beyond a field's range would be silently cut.
func appendRequest(dst []byte, id uint64, deadline uint32, req *Request) []byte {
	body := requestSize(req) - frameLenSize
	dst = binary.BigEndian.AppendUint32(dst, uint32(body))
	dst = append(dst, WireVersion)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = append(dst, byte(req.Op))
	dst = binary.BigEndian.AppendUint32(dst, deadline)
	dst = binary.BigEndian.AppendUint64(dst, uint64(req.TTL))
	dst = append(dst, byte(len(req.Key)))
	dst = append(dst, req.Key...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(req.Value)))
	dst = append(dst, req.Value...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(req.Entries)))
	for i := range req.Entries {
		e := &req.Entries[i]
		dst = append(dst, byte(len(e.Key)))
		dst = append(dst, e.Key...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Value)))
		dst = append(dst, e.Value...)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.TTL))
	}
	return dst
}

// truncMessage cuts a message to MaxMessageSize bytes.
func truncMessage(m string) string {
	if len(m) > MaxMessageSize {
		return m[:MaxMessageSize]
	}
	return m
}

// responseSize is the encoded size of a response frame, length prefix
// included, with the message already truncated.
func responseSize(resp *Response) int {
	return frameLenSize + responseHeaderSize + 4 + len(resp.Value) + 2 + len(truncMessage(resp.Message))
}

// appendResponse appends the frame of a response to dst. The value must be
// at most MaxValueSize bytes; the message is truncated to MaxMessageSize.
func appendResponse(dst []byte, id uint64, resp *Response) []byte {
	msg := truncMessage(resp.Message)
	body := responseSize(resp) - frameLenSize
	dst = binary.BigEndian.AppendUint32(dst, uint32(body))
	dst = append(dst, WireVersion)
	dst = binary.BigEndian.AppendUint64(dst, id)
	dst = append(dst, byte(resp.Status))
	dst = binary.BigEndian.AppendUint64(dst, uint64(resp.TTL))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(resp.Value)))
	dst = append(dst, resp.Value...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	dst = append(dst, msg...)
	return dst
}

// decoder reads fields from a frame body, checking every length against
// what is left before slicing. Byte slices it returns alias the body.
type decoder struct {
	b   []byte
	off int
	err *wireError
	id  uint64
	has bool
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = &wireError{id: d.id, hasID: d.has, msg: fmt.Sprintf(format, args...)}
	}
}

func (d *decoder) need(n int, what string) bool {
	if d.err != nil {
		return false
	}
	if n > len(d.b)-d.off {
		d.fail("frame ends inside %s", what)
		return false
	}
	return true
}

func (d *decoder) u8(what string) uint8 {
	if !d.need(1, what) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16(what string) uint16 {
	if !d.need(2, what) {
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) u32(what string) uint32 {
	if !d.need(4, what) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *decoder) u64(what string) uint64 {
	if !d.need(8, what) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// bytes returns the next n bytes (nil when n is 0), capacity-limited so an
// append by the receiver never writes into the rest of the frame.
func (d *decoder) bytes(n int, what string) []byte {
	if !d.need(n, what) || n == 0 {
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) ttl(what string) time.Duration {
	v := d.u64(what)
	if d.err == nil && v > uint64(MaxTTL) { // also catches negative values
		d.fail("%s of %d ns outside 0..%d", what, int64(v), int64(MaxTTL))
	}
	return time.Duration(v)
}

func (d *decoder) key(what, lenWhat string, min int) []byte {
	n := int(d.u8(lenWhat))
	if d.err == nil && n < min {
		d.fail("empty %s", what)
	}
	return d.bytes(n, what)
}

func (d *decoder) value(what, lenWhat string) []byte {
	n := d.u32(lenWhat)
	if d.err == nil && n > MaxValueSize {
		d.fail("%s of %d bytes, limit %d", what, n, MaxValueSize)
		return nil
	}
	return d.bytes(int(n), what)
}

func (d *decoder) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes after the end of the frame", len(d.b)-d.off)
	}
}

// knownOp reports whether op is an operation of wire version 1.
func knownOp(op Op) bool { return op >= OpGet && op <= lastOp }

// decodeRequest decodes a request frame body (without its length prefix).
// Key, Value and entries alias body. On error, a *wireError says whether
// the frame can still be answered (hasID) or broke the framing.
func decodeRequest(body []byte) (requestFrame, error) {
	var f requestFrame
	if len(body) < idPrefixSize {
		return f, badFrame("request frame of %d bytes is too short", len(body))
	}
	d := decoder{b: body}
	version := d.u8("version")
	f.id = d.u64("id")
	d.id, d.has = f.id, true
	if version != WireVersion {
		d.fail("unsupported wire version %d (this member speaks %d)", version, WireVersion)
		return f, d.err
	}
	f.req.Op = Op(d.u8("op"))
	f.deadline = d.u32("deadline")
	if d.err == nil && !knownOp(f.req.Op) {
		d.fail("unknown operation %d", uint8(f.req.Op))
	}
	f.req.TTL = d.ttl("ttl")
	f.req.Key = d.key("key", "key length", 0)
	f.req.Value = d.value("value", "value length")
	count := int(d.u16("entry count"))
	if d.err == nil && count > MaxBatchEntries {
		d.fail("%d entries, limit %d", count, MaxBatchEntries)
	}
	if d.err == nil && count > 0 {
		// Every entry takes at least 1+1+4+8 bytes: bound the allocation
		// by what the frame can actually hold.
		if count > (len(body)-d.off)/14 {
			d.fail("frame too short for %d entries", count)
		} else {
			f.req.Entries = make([]Entry, count)
			total := 0
			for i := 0; i < count && d.err == nil; i++ {
				e := &f.req.Entries[i]
				e.Key = d.key("entry key", "entry key length", 1)
				e.Value = d.value("entry value", "entry value length")
				e.TTL = d.ttl("entry ttl")
				total += len(e.Key) + len(e.Value)
			}
			if d.err == nil && total > MaxBatchBytes {
				d.fail("entries of %d bytes, limit %d", total, MaxBatchBytes)
			}
		}
	}
	d.end()
	if d.err != nil {
		return f, d.err
	}
	return f, nil
}

// decodeResponse decodes a response frame body (without its length
// prefix). Value aliases body; Message is a copy.
func decodeResponse(body []byte) (responseFrame, error) {
	var f responseFrame
	if len(body) < idPrefixSize {
		return f, badFrame("response frame of %d bytes is too short", len(body))
	}
	d := decoder{b: body}
	version := d.u8("version")
	f.id = d.u64("id")
	d.id, d.has = f.id, true
	if version != WireVersion {
		d.fail("unsupported wire version %d (this member speaks %d)", version, WireVersion)
		return f, d.err
	}
	f.resp.Status = Status(d.u8("status"))
	f.resp.TTL = d.ttl("ttl")
	f.resp.Value = d.value("value", "value length")
	n := int(d.u16("message length"))
	if d.err == nil && n > MaxMessageSize {
		d.fail("message of %d bytes, limit %d", n, MaxMessageSize)
	}
	if m := d.bytes(n, "message"); m != nil {
		f.resp.Message = string(m)
	}
	d.end()
	if d.err != nil {
		return f, d.err
	}
	return f, nil
}

// errFrameSize is wrapped by readFrame when a length prefix is out of
// bounds: the framing is broken.
var errFrameSize = errors.New("transport: frame length out of bounds")

// readFrame reads one frame from r into a newly allocated body (the
// receiver keeps it: decoded keys and values alias it). The length prefix
// is checked against its bounds before anything is allocated.
func readFrame(r io.Reader, hdr *[frameLenSize]byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < idPrefixSize || n > MaxFrameSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d..%d", errFrameSize, n, idPrefixSize, MaxFrameSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}
