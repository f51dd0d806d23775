// Tests of the frame reader the calling side's callers share: a frame cut
// by read timeouts at any byte is resumed whole, and reads the same as an
// uninterrupted readFrame.

package transport

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// choppyReader returns data in chunks whose sizes come from sched, and a
// timeout error before a chunk whenever the schedule says so.
type choppyReader struct {
	data    []byte
	sched   []byte
	i       int
	timeout bool // the last read timed out: the next one delivers
}

func (r *choppyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	var s byte = 7
	if len(r.sched) > 0 {
		s = r.sched[r.i%len(r.sched)]
		r.i++
	}
	if s%4 == 0 && !r.timeout {
		r.timeout = true
		return 0, fmt.Errorf("read: %w", os.ErrDeadlineExceeded)
	}
	r.timeout = false
	n := min(len(p), len(r.data), 1+int(s)/4)
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readAllFrames reads frames until an error, retrying timeouts; it
// returns the frames and the final error.
func readAllFrames(t *testing.T, r *frameReader) ([][]byte, error) {
	var frames [][]byte
	for range 100000 {
		body, err := r.next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return frames, err
		}
		frames = append(frames, body)
	}
	t.Fatal("no end")
	return nil, nil
}

func frameStream(bodies ...[]byte) []byte {
	var b []byte
	for _, body := range bodies {
		b = append(b, byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		b = append(b, body...)
	}
	return b
}

func checkFrameReader(t *testing.T, data, sched []byte) {
	// The reference: readFrame on the bytes without interruptions.
	var want [][]byte
	var wantErr error
	ref := bytes.NewReader(data)
	var hdr [frameLenSize]byte
	for {
		body, err := readFrame(ref, &hdr)
		if err != nil {
			wantErr = err
			break
		}
		want = append(want, body)
	}
	r := &frameReader{br: bufio.NewReaderSize(&choppyReader{data: data, sched: sched}, 16)}
	got, err := readAllFrames(t, r)
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: %x, want %x", i, got[i], want[i])
		}
	}
	for _, class := range []error{io.EOF, io.ErrUnexpectedEOF, errFrameSize} {
		if errors.Is(err, class) != errors.Is(wantErr, class) {
			t.Fatalf("final error %v, readFrame's %v", err, wantErr)
		}
	}
}

func TestFrameReaderResumesAfterTimeouts(t *testing.T) {
	good := appendRequest(nil, 7, 0, &Request{Op: OpSet, Key: []byte("key"), Value: bytes.Repeat([]byte{1}, 300), TTL: time.Second})
	stream := append(append(bytes.Clone(good), good...), frameStream([]byte("123456789"))...)
	for _, sched := range [][]byte{nil, {0, 1}, {4, 8, 5}, {0, 0, 0, 13}, {255}} {
		checkFrameReader(t, stream, sched)
		checkFrameReader(t, stream[:len(stream)-3], sched)                            // cut inside a body
		checkFrameReader(t, stream[:len(good)+2], sched)                              // cut inside a header
		checkFrameReader(t, append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff), sched) // bad length
	}
}

func FuzzFrameReader(f *testing.F) {
	good := appendRequest(nil, 7, 0, &Request{Op: OpGet, Key: []byte("k")})
	f.Add(append(bytes.Clone(good), good...), []byte{0, 5, 9})
	f.Add(good[:len(good)-1], []byte{1})
	f.Add([]byte{0, 0, 0, 1, 9}, []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, data, sched []byte) {
		if len(data) > 1<<16 {
			return
		}
		checkFrameReader(t, data, sched)
	})
}
