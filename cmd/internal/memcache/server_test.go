// Tests of the Server over real TCP connections, backed by an in-memory
// three-member ring, and of Client against it.

package memcache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/transport"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newRing starts n in-memory members and returns them once they are ready.
func newRing(t *testing.T, n int) []*peer.Peer {
	t.Helper()
	network := transport.NewNetwork()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("m%d:7000", i)
	}
	peers := make([]*peer.Peer, n)
	for i, name := range names {
		p, err := peer.New(peer.Config{Self: name, Members: names, Logger: quiet, Listen: network.Listen})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		peers[i] = p
	}
	// Until its state transfer is done, a member answers a miss with an
	// error ("ask the other copy"): wait for every one.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range peers {
		if err := p.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return peers
}

// serve starts s on a loopback TCP port and returns the address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := serveOn(t, s, l)
	t.Cleanup(stop)
	return addr
}

// serveOn starts s on l; stop closes s and checks what Serve returned.
func serveOn(t *testing.T, s *Server, l net.Listener) (addr string, stop func()) {
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	var once sync.Once
	return l.Addr().String(), func() {
		once.Do(func() {
			s.Close()
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		})
	}
}

// rawConn is a raw protocol conversation.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c, bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// expect reads exactly len(want) bytes and compares.
func (rc *rawConn) expect(want string) {
	rc.t.Helper()
	got := make([]byte, len(want))
	n, err := io.ReadFull(rc.r, got)
	if err != nil || string(got) != want {
		rc.t.Fatalf("read %q (%v), want %q", got[:n], err, want)
	}
}

func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	b, err := rc.r.ReadByte()
	if err == nil {
		rest, _ := rc.r.Peek(rc.r.Buffered())
		rc.t.Fatalf("connection still open, read %q", append([]byte{b}, rest...))
	}
}

func TestServerRaw(t *testing.T) {
	peers := newRing(t, 3)
	now := time.Unix(1_800_000_000, 0)
	s := &Server{Backend: peers[0], Logger: quiet, Version: "test-1", Now: func() time.Time { return now }, Metrics: NewMetrics(nil)}
	addr := serve(t, s)
	rc := dialRaw(t, addr)

	rc.send("version\r\n")
	rc.expect("VERSION test-1\r\n")
	rc.send("get nothing\r\n")
	rc.expect("END\r\n")
	rc.send("set k1 0 60 5\r\nhello\r\n")
	rc.expect("STORED\r\n")
	rc.send("get k1\r\n")
	rc.expect("VALUE k1 0 5\r\nhello\r\nEND\r\n")
	rc.send("gets k1 nothing k1\r\n")
	rc.expect("VALUE k1 0 5 0\r\nhello\r\nVALUE k1 0 5 0\r\nhello\r\nEND\r\n")
	// Other members see it: the face stores in the ring.
	if v, err := peers[1].Get(context.Background(), []byte("k1")); err != nil || string(v) != "hello" {
		t.Fatalf("peer 1 Get = %q, %v", v, err)
	}
	// Binary-safe values, empty values, noreply, pipelining.
	rc.send("set bin 0 0 4 noreply\r\n\r\n\x00\xff\r\nset empty 0 0 0\r\n\r\nget bin empty\r\n")
	rc.expect("STORED\r\nVALUE bin 0 4\r\n\r\n\x00\xff\r\nVALUE empty 0 0\r\n\r\nEND\r\n")
	rc.send("delete k1\r\ndelete k1\r\ndelete bin noreply\r\nget k1 bin\r\n")
	rc.expect("DELETED\r\nNOT_FOUND\r\nEND\r\n")
	if _, err := peers[2].Get(context.Background(), []byte("k1")); !IsNotFound(err) {
		t.Fatalf("after delete, peer 2 Get: %v", err)
	}
	// Exptime: negative and past absolute times expire at once.
	rc.send("set gone 0 -1 1\r\nx\r\nget gone\r\n")
	rc.expect("STORED\r\nEND\r\n")
	rc.send(fmt.Sprintf("set past 0 %d 1\r\nx\r\nget past\r\n", now.Unix()-10))
	rc.expect("STORED\r\nEND\r\n")
	rc.send(fmt.Sprintf("set future 0 %d 1\r\nx\r\nget future\r\n", now.Unix()+3600))
	rc.expect("STORED\r\nVALUE future 0 1\r\nx\r\nEND\r\n")
	// Errors keep the connection usable.
	rc.send("bogus\r\n")
	rc.expect("ERROR\r\n")
	rc.send("set f 5 0 1\r\nx\r\n")
	rc.expect("CLIENT_ERROR flags must be 0 (tlsring stores values as they are)\r\n")
	rc.send("add a 0 0 1\r\nx\r\n")
	rc.expect("SERVER_ERROR add is not supported by tlsring\r\n")
	rc.send("incr a 1\r\n")
	rc.expect("SERVER_ERROR incr is not supported by tlsring\r\n")
	rc.send("get " + strings.Repeat("k", 251) + "\r\n")
	rc.expect("CLIENT_ERROR key longer than 250 bytes\r\n")
	big := strings.Repeat("v", DefaultMaxValueSize+1)
	rc.send(fmt.Sprintf("set big 0 0 %d\r\n%s\r\nget big\r\n", len(big), big))
	rc.expect("SERVER_ERROR object too large for cache\r\nEND\r\n")
	max := strings.Repeat("v", DefaultMaxValueSize)
	rc.send(fmt.Sprintf("set max 0 0 %d\r\n%s\r\nget max\r\n", len(max), max))
	rc.expect(fmt.Sprintf("STORED\r\nVALUE max 0 %d\r\n%s\r\nEND\r\n", len(max), max))
	rc.send("verbosity 1\r\nstats\r\n")
	rc.expect("OK\r\nSTAT pid ")
	rc.send("quit\r\n")
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			break
		}
		if line == "END\r\n" {
			rc.expectClosed()
			break
		}
	}

	// Broken framing closes the connection.
	rc = dialRaw(t, addr)
	rc.send("set k 0 0 2\r\nabc\r\n")
	rc.expect("CLIENT_ERROR bad data chunk\r\n")
	rc.expectClosed()
	rc = dialRaw(t, addr)
	rc.send(strings.Repeat("x", MaxLineLen+10))
	rc.expect("CLIENT_ERROR line too long\r\n")
	rc.expectClosed()
	rc = dialRaw(t, addr)
	rc.send("set k 0 0 100000000\r\n")
	rc.expect("SERVER_ERROR object too large for cache\r\n")
	rc.expectClosed()
}

func TestServerTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Server{DefaultTTL: time.Minute, MaxTTL: time.Hour, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		exp  int64
		ttl  time.Duration
		live bool
	}{
		{0, time.Minute, true},
		{-1, 0, false},
		{10, 10 * time.Second, true},
		{RelativeExptimeLimit, time.Hour, true},
		{now.Unix() + 30, 30 * time.Second, true},
		{now.Unix(), 0, false},
		{now.Unix() + 1e9, time.Hour, true},
	} {
		ttl, live := s.ttl(tc.exp)
		if ttl != tc.ttl || live != tc.live {
			t.Errorf("ttl(%d) = %v, %v; want %v, %v", tc.exp, ttl, live, tc.ttl, tc.live)
		}
	}
}

func TestServerMaxConns(t *testing.T) {
	peers := newRing(t, 1)
	// No per-source limit, and no reclaim however slow this machine is.
	addr := serve(t, &Server{Backend: peers[0], MaxConns: 1, MaxConnsPerSource: -1, Logger: quiet, reclaimIdle: time.Hour})
	rc := dialRaw(t, addr)
	rc.send("version\r\n")
	rc.expect("VERSION tlsring\r\n")
	rc2 := dialRaw(t, addr)
	rc2.expect("SERVER_ERROR too many connections\r\n")
	rc2.expectClosed()
}

// slowBackend never answers before its context ends.
type slowBackend struct{}

func (slowBackend) Get(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (slowBackend) Set(ctx context.Context, _, _ []byte, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}
func (slowBackend) Take(ctx context.Context, _ []byte) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (slowBackend) Delete(ctx context.Context, _ []byte) error { <-ctx.Done(); return ctx.Err() }

func TestServerBackendTimeout(t *testing.T) {
	addr := serve(t, &Server{Backend: slowBackend{}, Timeout: 20 * time.Millisecond, Logger: quiet})
	rc := dialRaw(t, addr)
	rc.send("get k\r\n")
	rc.expect("SERVER_ERROR context deadline exceeded\r\n")
	rc.send("set k 0 0 1\r\nx\r\n")
	rc.expect("SERVER_ERROR context deadline exceeded\r\n")
	rc.send("delete k\r\n")
	rc.expect("SERVER_ERROR context deadline exceeded\r\n")
}

func TestClient(t *testing.T) {
	peers := newRing(t, 3)
	addr := serve(t, &Server{Backend: peers[0], Logger: quiet})
	c := NewClient("tcp", addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := []byte{0, 1, 2, ' ', '\r', '\n', 0xff}
	if _, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if err := c.Set(ctx, key, []byte("v\r\nEND\r\n"), 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, key); err != nil || string(v) != "v\r\nEND\r\n" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	// Stored under the encoded key, for 2 s (rounded up).
	if v, err := peers[2].Get(ctx, []byte("AAECIA0K_w")); err != nil || string(v) != "v\r\nEND\r\n" {
		t.Fatalf("peer Get of the encoded key = %q, %v", v, err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, err := c.Get(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := c.Set(ctx, []byte("big"), make([]byte, DefaultMaxValueSize+1), time.Minute); err == nil {
		t.Fatal("Set of a too large value succeeded")
	} else if se, ok := errors.AsType[*ServerError](err); !ok || !strings.Contains(se.Line, "too large") {
		t.Fatalf("Set of a too large value: %v", err)
	}
	if err := c.Set(ctx, make([]byte, MaxClientKeyLen+1), nil, time.Minute); err == nil {
		t.Fatal("Set with a too long key succeeded")
	}

	// Of racing Takes, exactly one gets the value.
	for round := range 5 {
		k := fmt.Appendf(nil, "race-%d", round)
		if err := c.Set(ctx, k, []byte("once"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				v, err := c.Take(ctx, k)
				switch {
				case err == nil && string(v) == "once":
					wins.Add(1)
				case err != nil && !errors.Is(err, ErrNotFound):
					t.Errorf("Take: %v", err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d Takes got the value, want 1", round, n)
		}
	}
}

// TestClientHonoursContext checks that a call to a server that never
// answers returns when its context ends.
func TestClientHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns sync.WaitGroup
	conns.Go(func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c) // read, never answer
		c.Close()
	})
	c := NewClient("tcp", l.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Get(ctx, []byte("k"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get returned after %v", d)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel2)
	if err := c.Set(ctx2, []byte("k"), []byte("v"), time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set: %v, want a cancellation error", err)
	}
	c.Close()
	l.Close()
	conns.Wait()
}

// TestClientServerRestart checks that pooled connections to a server that
// went away are replaced, not failed on.
func TestClientServerRestart(t *testing.T) {
	peers := newRing(t, 1)
	s1 := &Server{Backend: peers[0], Logger: quiet}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s1.Serve(l) }()
	c := NewClient("tcp", l.Addr().String())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Set(ctx, []byte("k"), []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	<-done
	// The same address again (free now that s1 closed it).
	l2, err := net.Listen("tcp", l.Addr().String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", l.Addr(), err)
	}
	s2 := &Server{Backend: peers[0], Logger: quiet}
	done2 := make(chan error, 1)
	go func() { done2 <- s2.Serve(l2) }()
	defer func() { s2.Close(); <-done2 }()
	if v, err := c.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get after the server restarted = %q, %v", v, err)
	}
}

// retainingBackend keeps the key slices it is given, as a Backend whose
// background work outlives a call may.
type retainingBackend struct {
	mapBackend
	mu   sync.Mutex
	kept [][]byte
}

func (b *retainingBackend) Set(ctx context.Context, k, v []byte, ttl time.Duration) error {
	b.mu.Lock()
	b.kept = append(b.kept, k)
	b.mu.Unlock()
	return b.mapBackend.Set(ctx, k, v, ttl)
}

func (b *retainingBackend) Get(ctx context.Context, k []byte) ([]byte, error) {
	b.mu.Lock()
	b.kept = append(b.kept, k)
	b.mu.Unlock()
	return b.mapBackend.Get(ctx, k)
}

// TestServerKeysOutliveCalls checks that the keys handed to the Backend
// are not overwritten by later commands.
func TestServerKeysOutliveCalls(t *testing.T) {
	b := &retainingBackend{mapBackend: mapBackend{m: map[string][]byte{}}}
	addr := serve(t, &Server{Backend: b, Logger: quiet})
	rc := dialRaw(t, addr)
	var want []string
	var in, out strings.Builder
	for i := range 200 {
		k := fmt.Sprintf("key-%03d", i)
		want = append(want, k, k)
		fmt.Fprintf(&in, "set %s 0 0 3\r\n%03d\r\nget %s\r\n", k, i, k)
		fmt.Fprintf(&out, "STORED\r\nVALUE %s 0 3\r\n%03d\r\nEND\r\n", k, i)
	}
	rc.send(in.String())
	rc.expect(out.String())
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, k := range b.kept {
		if string(k) != want[i] {
			t.Fatalf("key %d handed to the backend is now %q, was %q", i, k, want[i])
		}
	}
}
