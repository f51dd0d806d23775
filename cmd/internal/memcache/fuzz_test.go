// Fuzzing of the whole connection handler: arbitrary client bytes must
// never crash the server, and every answer must be well-formed.

package memcache

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// mapBackend is an in-memory Backend.
type mapBackend struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *mapBackend) Get(_ context.Context, k []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[string(k)]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

func (b *mapBackend) Set(_ context.Context, k, v []byte, ttl time.Duration) error {
	if ttl <= 0 || len(k) == 0 || len(k) > MaxKeyLen || len(v) > DefaultMaxValueSize {
		panic("backend got a value outside the limits")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[string(k)] = v
	return nil
}

func (b *mapBackend) Take(ctx context.Context, k []byte) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[string(k)]
	if !ok {
		return nil, ErrNotFound
	}
	delete(b.m, string(k))
	return v, nil
}

func (b *mapBackend) Delete(_ context.Context, k []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, string(k))
	return nil
}

type pipe struct {
	io.Reader
	io.Writer
}

// statClock matches the stats lines that change with the clock.
var statClock = regexp.MustCompile(`STAT (uptime|time) [0-9]+\r\n`)

// replyWords are the first words of every line a server may send, VALUE
// data blocks aside.
var replyWords = [][]byte{[]byte("VALUE "), []byte("END"), []byte("STORED"), []byte("DELETED"), []byte("NOT_FOUND"),
	[]byte("ERROR"), []byte("CLIENT_ERROR "), []byte("SERVER_ERROR "), []byte("VERSION "), []byte("OK"), []byte("STAT ")}

func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"get a\r\n",
		"set a 0 0 1\r\nx\r\nget a b\r\ngets a\r\ndelete a\r\ndelete a noreply\r\n",
		"set k 0 -1 3 noreply\r\nabc\r\nversion\r\nstats\r\nquit\r\n",
		"set k 0 0 2\r\nabc\r\n",
		"set k 1 0 1\r\nx\r\nadd k 0 0 1\r\ny\r\ncas k 0 0 1 5\r\nz\r\nincr k 1\r\n",
		"set k 0 0 70000\r\n",
		"get \x00\r\nbogus\nverbosity\r\n",
		// A half-close after an unterminated line: the replies before it
		// used to be dropped.
		"set a 0 0 1\r\nx\r\nget a\r\nversion",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// The answer must not depend on how the input arrives: whole, or
		// one byte per read (which lets the server flush after every
		// command). A reply dropped at EOF shows as a difference.
		run := func(r io.Reader) []byte {
			s := &Server{Backend: &mapBackend{m: map[string][]byte{}}, Logger: quiet}
			var out bytes.Buffer
			s.serveConn(pipe{r, &out}, nil)
			return statClock.ReplaceAll(out.Bytes(), []byte("STAT $1 N\r\n"))
		}
		whole := run(bytes.NewReader(in))
		if trickled := run(iotest.OneByteReader(bytes.NewReader(in))); !bytes.Equal(whole, trickled) {
			t.Fatalf("answer to the whole input:\n%q\ndiffers from the answer to it one byte at a time:\n%q", whole, trickled)
		}
		// Walk the answer: lines of known kinds, VALUE blocks of the
		// announced size.
		rest := whole
		for len(rest) > 0 {
			i := bytes.Index(rest, []byte("\r\n"))
			if i < 0 {
				t.Fatalf("unterminated answer line %q", rest)
			}
			line := rest[:i]
			rest = rest[i+2:]
			known := false
			for _, w := range replyWords {
				if bytes.HasPrefix(line, w) || bytes.Equal(line, bytes.TrimSpace(w)) {
					known = true
				}
			}
			if !known {
				t.Fatalf("unexpected answer line %q", line)
			}
			if bytes.HasPrefix(line, []byte("VALUE ")) {
				f := bytes.Fields(line)
				var n int
				for _, c := range f[3] {
					n = n*10 + int(c-'0')
				}
				if len(rest) < n+2 || rest[n] != '\r' || rest[n+1] != '\n' {
					t.Fatalf("VALUE block of %d bytes malformed", n)
				}
				rest = rest[n+2:]
			}
		}
	})
}
