// Test helpers: a map-backed handler, members on loopback with test
// certificates, a log buffer, and waiting for conditions.

package transport

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/transport/transporttest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mapStore is a trivial Handler over a map.
type mapStore struct {
	mu    sync.Mutex
	m     map[string][]byte
	calls atomic.Int64
	// block, if set, is called first; tests use it to stall or panic.
	block atomic.Pointer[func(ctx context.Context, req *Request)]
}

func newMapStore() *mapStore { return &mapStore{m: make(map[string][]byte)} }

// put stores v under k as a handler would (the race detector does not see
// the network's ordering between a test and a member's handler).
func (s *mapStore) put(k string, v []byte) {
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

func (s *mapStore) setBlock(f func(ctx context.Context, req *Request)) { s.block.Store(&f) }

func (s *mapStore) ServeMember(ctx context.Context, req *Request) *Response {
	s.calls.Add(1)
	if b := s.block.Load(); b != nil {
		(*b)(ctx, req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req.Op {
	case OpGet, OpTake:
		v, ok := s.m[string(req.Key)]
		if !ok {
			return &Response{Status: StatusNotFound}
		}
		if req.Op == OpTake {
			delete(s.m, string(req.Key))
		}
		return &Response{Status: StatusOK, Value: v, TTL: time.Minute}
	case OpSet:
		s.m[string(req.Key)] = req.Value
	case OpDelete:
		delete(s.m, string(req.Key))
	case OpPutMany:
		for _, e := range req.Entries {
			s.m[string(e.Key)] = e.Value
		}
	}
	return &Response{Status: StatusOK}
}

// logBuf collects a member's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type member struct {
	*QUIC
	store *mapStore
	logs  *logBuf
}

// startMember listens on addr (default 127.0.0.1:0) with a certificate of
// ca, trusting ca, serving a fresh mapStore. edit may adjust the config.
func startMember(t testing.TB, ca *transporttest.CA, edit func(*QUICConfig)) *member {
	t.Helper()
	m := &member{store: newMapStore(), logs: &logBuf{}}
	cfg := QUICConfig{
		Addr:   "127.0.0.1:0",
		TLS:    ca.MemberTLS(t, "127.0.0.1"),
		Logger: newTextLogger(m.logs),
	}
	if edit != nil {
		edit(&cfg)
	}
	tr, err := NewQUIC(cfg, m.store)
	if err != nil {
		t.Fatal(err)
	}
	m.QUIC = tr
	t.Cleanup(func() { tr.Close() })
	return m
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testingGOMAXPROCS() int { return runtime.GOMAXPROCS(0) }
