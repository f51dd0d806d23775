// Tests of the wire codec: round trips of valid frames, rejection of
// malformed ones, and fuzz targets for both decoders.

package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func randBytes(r *rand.Rand, max int) []byte {
	n := r.IntN(max + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randRequest(r *rand.Rand) Request {
	req := Request{Op: Op(1 + r.IntN(6))}
	switch req.Op {
	case OpGet, OpTake, OpDelete:
		req.Key = randBytes(r, MaxKeySize)
	case OpSet:
		req.Key = randBytes(r, MaxKeySize)
		req.Value = randBytes(r, 2048)
		req.TTL = time.Duration(r.Int64N(int64(MaxTTL)))
	case OpPutMany:
		req.Entries = make([]Entry, 1+r.IntN(20))
		for i := range req.Entries {
			req.Entries[i] = Entry{Key: append([]byte{1}, randBytes(r, 100)...), Value: randBytes(r, 500), TTL: time.Duration(r.Int64N(int64(MaxTTL)))}
		}
	}
	if len(req.Key) == 0 && req.Op != OpPutMany && req.Op != OpPing {
		req.Key = []byte{'k'}
	}
	return req
}

func TestRequestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		req := randRequest(r)
		id, dl := r.Uint64(), r.Uint32()
		frame := appendRequest(nil, id, dl, &req)
		if len(frame) != requestSize(&req) {
			t.Fatalf("request %d: size %d, predicted %d", i, len(frame), requestSize(&req))
		}
		if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-frameLenSize {
			t.Fatalf("request %d: length prefix %d for %d bytes", i, n, len(frame)-frameLenSize)
		}
		f, err := decodeRequest(frame[frameLenSize:])
		if err != nil {
			t.Fatalf("request %d (%v): %v", i, req.Op, err)
		}
		if f.id != id || f.deadline != dl || !reflect.DeepEqual(f.req, req) {
			t.Fatalf("request %d: decoded %+v, sent %+v", i, f.req, req)
		}
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		resp := Response{Status: Status(r.IntN(4)), Value: randBytes(r, 4096), TTL: time.Duration(r.Int64N(int64(MaxTTL)))}
		if m := randBytes(r, 100); m != nil {
			resp.Message = string(m)
		}
		id := r.Uint64()
		frame := appendResponse(nil, id, &resp)
		if len(frame) != responseSize(&resp) {
			t.Fatalf("response %d: size %d, predicted %d", i, len(frame), responseSize(&resp))
		}
		f, err := decodeResponse(frame[frameLenSize:])
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if f.id != id || !reflect.DeepEqual(f.resp, resp) {
			t.Fatalf("response %d: decoded %+v, sent %+v", i, f.resp, resp)
		}
	}
	// Long messages are cut to the limit, not refused.
	long := Response{Status: StatusError, Message: string(bytes.Repeat([]byte("x"), 3*MaxMessageSize))}
	f, err := decodeResponse(appendResponse(nil, 1, &long)[frameLenSize:])
	if err != nil || len(f.resp.Message) != MaxMessageSize {
		t.Fatalf("long message: %v, %d bytes", err, len(f.resp.Message))
	}
}

func TestMaxFrameSizeHoldsTheLargestBatch(t *testing.T) {
	per := MaxBatchBytes / MaxBatchEntries
	req := Request{Op: OpPutMany, Entries: make([]Entry, MaxBatchEntries)}
	for i := range req.Entries {
		req.Entries[i] = Entry{Key: bytes.Repeat([]byte{'k'}, MaxKeySize), Value: make([]byte, per-MaxKeySize), TTL: MaxTTL}
	}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	frame := appendRequest(nil, 1, 1, &req)
	if len(frame)-frameLenSize > MaxFrameSize {
		t.Fatalf("largest valid batch is %d bytes, MaxFrameSize %d", len(frame)-frameLenSize, MaxFrameSize)
	}
	if _, err := decodeRequest(frame[frameLenSize:]); err != nil {
		t.Fatal(err)
	}
}

func TestReadFrameChecksLengthFirst(t *testing.T) {
	var hdr [frameLenSize]byte
	for _, n := range []uint32{0, idPrefixSize - 1, MaxFrameSize + 1, 1<<32 - 1} {
		b := binary.BigEndian.AppendUint32(nil, n)
		if _, err := readFrame(bytes.NewReader(b), &hdr); err == nil {
			t.Errorf("length %d accepted", n)
		}
	}
	b := binary.BigEndian.AppendUint32(nil, 100) // promises more than follows
	if _, err := readFrame(bytes.NewReader(append(b, 1, 2, 3)), &hdr); err == nil {
		t.Error("short frame accepted")
	}
}

func TestDecodeAliasesAreCapped(t *testing.T) {
	frame := appendRequest(nil, 1, 0, &Request{Op: OpSet, Key: []byte("key"), Value: []byte("value"), TTL: time.Second})
	f, err := decodeRequest(frame[frameLenSize:])
	if err != nil {
		t.Fatal(err)
	}
	_ = append(f.req.Key, "XXXXX"...) // must not overwrite the value
	if string(f.req.Value) != "value" {
		t.Fatalf("append to key clobbered value: %q", f.req.Value)
	}
}

func requestSeeds() [][]byte {
	var seeds [][]byte
	r := rand.New(rand.NewPCG(5, 6))
	for range 12 {
		req := randRequest(r)
		seeds = append(seeds, appendRequest(nil, r.Uint64(), r.Uint32(), &req)[frameLenSize:])
	}
	seeds = append(seeds,
		appendRequest(nil, 0, 0, &Request{Op: OpPing})[frameLenSize:],
		[]byte{1, 0, 0, 0, 0, 0, 0, 0, 9},                 // header only
		[]byte{2, 0, 0, 0, 0, 0, 0, 0, 9, 1},              // unknown version
		[]byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 77, 0, 0, 0, 0}, // unknown op
	)
	return seeds
}

// FuzzDecodeRequest: no input panics the decoder, and any input it
// accepts re-encodes to the same bytes (so decode(encode(x)) == x on the
// decoder's whole range).
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := decodeRequest(body)
		if err != nil {
			if we, ok := err.(*wireError); !ok || (!we.hasID && len(body) >= idPrefixSize) {
				t.Fatalf("error %v (%T) for a frame with an ID", err, err)
			}
			return
		}
		enc := appendRequest(nil, fr.id, fr.deadline, &fr.req)
		if !bytes.Equal(enc[frameLenSize:], body) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", body, enc[frameLenSize:])
		}
		fr2, err := decodeRequest(enc[frameLenSize:])
		if err != nil || !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("second decode: %v %+v != %+v", err, fr2, fr)
		}
		if fr.req.Validate() == nil && requestSize(&fr.req) != len(body)+frameLenSize {
			t.Fatalf("requestSize %d for %d bytes", requestSize(&fr.req), len(body)+frameLenSize)
		}
	})
}

// FuzzDecodeResponse: as FuzzDecodeRequest, for responses.
func FuzzDecodeResponse(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		resp := Response{Status: Status(r.IntN(5)), Value: randBytes(r, 1500), TTL: time.Duration(r.Int64N(int64(MaxTTL))), Message: string(randBytes(r, 40))}
		f.Add(appendResponse(nil, r.Uint64(), &resp)[frameLenSize:])
	}
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := decodeResponse(body)
		if err != nil {
			return
		}
		enc := appendResponse(nil, fr.id, &fr.resp)
		if !bytes.Equal(enc[frameLenSize:], body) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", body, enc[frameLenSize:])
		}
		fr2, err := decodeResponse(enc[frameLenSize:])
		if err != nil || !reflect.DeepEqual(fr, fr2) {
			t.Fatalf("second decode: %v %+v != %+v", err, fr2, fr)
		}
	})
}

// chunkReader returns data in chunks whose sizes come from sched, as a
// stream delivers it.
type chunkReader struct {
	data  []byte
	sched []byte
	i     int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 7
	if len(r.sched) > 0 {
		n = 1 + int(r.sched[r.i%len(r.sched)])
		r.i++
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzReadFrame: readFrame on a stream that arrives in arbitrary chunks
// returns the frames the bytes hold, in order, then an error of the right
// kind: io.EOF at a frame boundary, io.ErrUnexpectedEOF inside a frame,
// errFrameSize for a length out of bounds (before allocating it).
func FuzzReadFrame(f *testing.F) {
	good := appendRequest(nil, 7, 0, &Request{Op: OpGet, Key: []byte("k")})
	f.Add(append(bytes.Clone(good), good...), []byte{0, 5, 9})
	f.Add(good[:len(good)-1], []byte{1})
	f.Add([]byte{0, 0, 0, 9, 1, 2}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{0})
	f.Add([]byte{0, 0, 0, 1, 9}, []byte{3})
	f.Fuzz(func(t *testing.T, data, sched []byte) {
		r := &chunkReader{data: data, sched: sched}
		var hdr [frameLenSize]byte
		off := 0
		for {
			body, err := readFrame(r, &hdr)
			rest := len(data) - off
			if err != nil {
				switch {
				case rest == 0:
					if err != io.EOF {
						t.Fatalf("at the end: %v, want EOF", err)
					}
				case rest < frameLenSize:
					if err != io.ErrUnexpectedEOF {
						t.Fatalf("%d bytes left: %v, want unexpected EOF", rest, err)
					}
				default:
					n := int(binary.BigEndian.Uint32(data[off:]))
					if n < idPrefixSize || n > MaxFrameSize {
						if !errors.Is(err, errFrameSize) {
							t.Fatalf("length %d: %v, want a frame size error", n, err)
						}
					} else if rest-frameLenSize < n && err != io.ErrUnexpectedEOF {
						t.Fatalf("%d of %d body bytes: %v, want unexpected EOF", rest-frameLenSize, n, err)
					}
				}
				return
			}
			n := int(binary.BigEndian.Uint32(data[off:]))
			if len(body) != n || !bytes.Equal(body, data[off+frameLenSize:off+frameLenSize+n]) {
				t.Fatalf("frame at %d: %d bytes, want %d", off, len(body), n)
			}
			off += frameLenSize + n
		}
	})
}
