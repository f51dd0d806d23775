// h3_helpers_test.go: HTTP/3 fixtures for the early-data tests: quic-go
// http3 servers, each with its own Glue on its own ring member, clients
// that send their request in 0-RTT, and a UDP proxy that records a
// client's first flight so that it can be replayed from a fresh socket.

package tlsglue

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tlsring/tlsring/peer"
)

// h3Server is a quic-go http3.Server on loopback whose Config resumes
// through its own Glue. Its handler counts requests by path, and those on
// connections that accepted early data (0-RTT): quic-go's server-side
// Used0RTT, the ground truth the metrics are checked against.
type h3Server struct {
	name string
	addr string
	glue *Glue
	m    *Metrics
	srv  *http3.Server

	// onRequest, if set, runs in the handler (set it before traffic).
	onRequest func(r *http.Request, early bool)
	// fleet is every member of the ring the server's store belongs to,
	// when the test knows them (see settle).
	fleet []*peer.Peer

	mu       sync.Mutex
	requests map[string]int
	early    map[string]int
}

type connKey struct{}

// h3Opts tunes newH3Servers beyond Options.
type h3Opts struct {
	// quic returns server i's QUIC config; nil: Allow0RTT, defaults
	// otherwise (what http3.Server uses when given none).
	quic func(i int) *quic.Config
	// options, if set, adjusts server i's Options.
	options func(i int, o *Options)
}

// newH3Servers starts one HTTP/3 server per store, each with its own
// certificate and Glue (opts, with its own Metrics).
func newH3Servers(t testing.TB, stores []Store, opts Options, ho ...h3Opts) []*h3Server {
	t.Helper()
	var o h3Opts
	if len(ho) > 0 {
		o = ho[0]
	}
	out := make([]*h3Server, len(stores))
	for i, st := range stores {
		s := &h3Server{name: string(rune('A' + i)), requests: map[string]int{}, early: map[string]int{}}
		gopts := opts
		s.m = NewMetrics(nil)
		gopts.Metrics = s.m
		if o.options != nil {
			o.options(i, &gopts)
		}
		g, err := New(st, gopts)
		if err != nil {
			t.Fatal(err)
		}
		s.glue = g
		cfg := &tls.Config{Certificates: []tls.Certificate{getPKI(t).leaf(t, false)}}
		if err := g.Install(cfg); err != nil {
			t.Fatal(err)
		}
		qc := &quic.Config{Allow0RTT: true}
		if o.quic != nil {
			qc = o.quic(i)
		}
		s.srv = &http3.Server{
			TLSConfig:  cfg,
			QUICConfig: qc,
			Handler:    s,
			ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
				return context.WithValue(ctx, connKey{}, c)
			},
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr = pc.LocalAddr().String()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.srv.Serve(pc)
		}()
		t.Cleanup(func() {
			s.srv.Close()
			<-done
			pc.Close()
			g.Close()
		})
		out[i] = s
	}
	return out
}

// ServeHTTP answers with the server's name, counting the request.
func (s *h3Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, _ := r.Context().Value(connKey{}).(*quic.Conn)
	early := c != nil && c.ConnectionState().Used0RTT
	if s.onRequest != nil {
		s.onRequest(r, early)
	}
	s.mu.Lock()
	s.requests[r.URL.Path]++
	if early {
		s.early[r.URL.Path]++
	}
	s.mu.Unlock()
	io.WriteString(w, s.name)
}

// counts returns how many requests for path the server handled, and how
// many of them on connections that accepted early data.
func (s *h3Server) counts(path string) (requests, early int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path], s.early[path]
}

func (s *h3Server) flush(t testing.TB) {
	t.Helper()
	flushGlue(t, s.glue)
}

// earlyCounts are a server's early-data metrics.
type earlyCounts struct {
	offered, accepted float64
	refused           map[string]float64
}

func (s *h3Server) earlyCounts() earlyCounts {
	ec := earlyCounts{offered: value(s.m.earlyOffered), accepted: value(s.m.earlyAccepted), refused: map[string]float64{}}
	for i, r := range earlyRefusals {
		ec.refused[r] = value(s.m.earlyRefused[i])
	}
	return ec
}

func (ec earlyCounts) decided() float64 {
	n := ec.accepted
	for _, v := range ec.refused {
		n += v
	}
	return n
}

// waitDecided waits until every ClientHello offering early data to s has
// been decided (accepted or refused) and at least min were offered.
func (s *h3Server) waitDecided(t testing.TB, min float64) earlyCounts {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ec := s.earlyCounts()
		if ec.offered >= min && ec.decided() == ec.offered {
			return ec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: early data offered %v (want >= %v), decided %v", s.name, ec.offered, min, ec.decided())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the session the client holds is on every member
// that should have a copy. A returning client normally comes back long
// after that; a test client comes back within a millisecond, and a write
// returns once one copy has it, so the replica may still be on its way,
// and a single-use Take of a key whose replica has no copy yet is a miss
// (see peer.Take).
func settle(t testing.TB, fleet []*peer.Peer, c *h3Client) {
	t.Helper()
	cs, ok := c.cache.Get(testSNI)
	if !ok {
		t.Fatal("the client holds no session")
	}
	ticket, _, err := cs.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	hd, ok := parseHandle(ticket)
	if !ok {
		t.Fatalf("ticket %x is not a handle", ticket)
	}
	sk, _ := hd.keys()
	key := sk.bytes()
	deadline := time.Now().Add(10 * time.Second)
	for _, owner := range fleet[0].Owners(key) {
		for _, m := range fleet {
			if m.Self() != owner {
				continue
			}
			for !m.HasLocal(key) {
				if time.Now().After(deadline) {
					t.Fatalf("member %s has no copy of the session", owner)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// h3Client is one client with its own session cache.
type h3Client struct {
	tls   *tls.Config
	cache *signalCache
}

func newH3Client(t testing.TB) *h3Client {
	sc := &signalCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), puts: make(chan struct{}, 4)}
	return &h3Client{cache: sc, tls: &tls.Config{
		RootCAs:            getPKI(t).pool,
		ServerName:         testSNI,
		NextProtos:         []string{http3.NextProtoH3},
		ClientSessionCache: sc,
	}}
}

// h3Result is what a client saw of one request.
type h3Result struct {
	server   string // the response body: the name of the server that answered
	resumed  bool
	used0RTT bool // the server accepted the request as early data
	// resent: the server refused the early data and the request was sent
	// again on a new connection (quic-go's http3 client leaves resending to
	// its caller, quic-go/quic-go#3259, and resending on the same
	// connection after NextConnection trips over the rejected request
	// stream's reset, quic-go/quic-go#4706).
	resent bool
}

// get dials addr, sends GET path (in 0-RTT when early and the client holds
// a session), reads the response, waits for the handshake to complete and
// for the session ticket the server sends after it, and closes.
//
// With early, dial through a flightRecorder (see earlyGet): a client
// opening streams on a connection whose handshake is under way races with
// quic-go's own processing of the server's transport parameters
// (quic-go/quic-go#4303, a data race -race reports), and the recorder's
// first round trip keeps the server's answer away until the client's
// streams are open. Without early, the dial returns once the handshake is
// complete.
func (c *h3Client) get(ctx context.Context, addr, path string, early bool) (h3Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for len(c.cache.puts) > 0 {
		<-c.cache.puts
	}
	dial := quic.DialAddr
	if early {
		dial = quic.DialAddrEarly
	}
	conn, err := dial(ctx, addr, c.tls, &quic.Config{})
	if err != nil {
		return h3Result{}, fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "")
	method := http.MethodGet
	if early {
		method = http3.MethodGet0RTT
	}
	var res h3Result
	rsp, err := roundTrip(ctx, conn, method, path)
	if errors.Is(err, quic.Err0RTTRejected) {
		// Early data refused: note how the handshake went, then send the
		// request again on a new connection. (This connection may not
		// live long: the http3 client resets its rejected request stream,
		// the reset goes out on the 1-RTT stream of the same number,
		// quic-go/quic-go#4706, and the server's answer to it closes the
		// connection with a STREAM_STATE_ERROR.)
		res.resent = true
		select {
		case <-conn.HandshakeComplete():
		case <-conn.Context().Done():
		case <-ctx.Done():
			return h3Result{}, errors.New("the handshake that refused the early data did not end")
		}
		cs := conn.ConnectionState()
		res.resumed, res.used0RTT = cs.TLS.DidResume, cs.Used0RTT
		conn.CloseWithError(0, "")
		if conn, err = quic.DialAddr(ctx, addr, c.tls, &quic.Config{}); err != nil {
			return h3Result{}, fmt.Errorf("dial %s again: %w", addr, err)
		}
		defer conn.CloseWithError(0, "")
		rsp, err = roundTrip(ctx, conn, http.MethodGet, path)
	}
	if err != nil {
		return h3Result{}, fmt.Errorf("GET %s on %s: %w", path, addr, err)
	}
	body, err := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if err != nil {
		return h3Result{}, err
	}
	if rsp.StatusCode != http.StatusOK {
		return h3Result{}, fmt.Errorf("GET %s: %s", path, rsp.Status)
	}
	select {
	case <-conn.HandshakeComplete():
	case <-ctx.Done():
		return h3Result{}, errors.New("handshake did not complete")
	}
	select {
	case <-c.cache.puts:
	case <-ctx.Done():
		return h3Result{}, fmt.Errorf("no session ticket received (early %v, resent %v)", early, res.resent)
	}
	res.server = string(body)
	if !res.resent {
		cs := conn.ConnectionState()
		res.resumed, res.used0RTT = cs.TLS.DidResume, cs.Used0RTT
	}
	return res, nil
}

// roundTrip sends one request on a new HTTP/3 client connection over conn.
func roundTrip(ctx context.Context, conn *quic.Conn, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "https://"+testSNI+path, nil)
	if err != nil {
		return nil, err
	}
	return (&http3.Transport{}).NewClientConn(conn).RoundTrip(req)
}

// mustGet is get without early data, failing t.
func (c *h3Client) mustGet(t testing.TB, addr, path string) h3Result {
	t.Helper()
	r, err := c.get(context.Background(), addr, path, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// earlyGet sends GET path to s in 0-RTT through a new flightRecorder (with
// mirrorTo, as newFlightRecorder), and returns the result and the
// recorder. It must not fail t: clients may run it concurrently.
func (c *h3Client) earlyGet(t testing.TB, s *h3Server, path string, mirrorTo ...string) (h3Result, *flightRecorder, error) {
	rec := newFlightRecorder(t, s.addr, mirrorTo...)
	r, err := c.get(context.Background(), rec.addr(), path, true)
	return r, rec, err
}

// recordHold is how long a flightRecorder holds the server's first answers
// back from the client: a first round trip of 200 ms, as on a long path.
// A client sends its whole first flight (a ClientHello of two Initial
// packets, with the post-quantum key share, and its early data) before it
// hears from the server; on loopback, without the hold, the server's first
// ACK often overtakes the end of it, and the client sends the rest to the
// connection ID the server picked, which no other server knows.
const recordHold = 200 * time.Millisecond

// flightRecorder is a UDP proxy between one client and one server. It
// records the client's first flight: the datagrams that start with an
// Initial or a 0-RTT packet (QUIC v1 long headers of type 0 and 1) to the
// connection ID of the client's first Initial, that is its ClientHello and
// early data, in the order they came. With mirrors, each such datagram is
// also sent on at once from a socket of the mirror's own to another
// server: a replay racing the client.
type flightRecorder struct {
	pc      net.PacketConn // the client's side
	up      *net.UDPConn   // connected to the server
	mirrors []*net.UDPConn // each connected to another server
	wg      sync.WaitGroup

	mu      sync.Mutex
	client  net.Addr
	dcid    string    // of the client's first Initial
	release time.Time // until then, the server's datagrams wait
	held    [][]byte
	flight  [][]byte
}

// newFlightRecorder proxies to target; mirrorTo lists the servers that get
// a copy of the first flight as it passes.
func newFlightRecorder(t testing.TB, target string, mirrorTo ...string) *flightRecorder {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flightRecorder{pc: pc, up: dialUDP(t, target)}
	for _, m := range mirrorTo {
		f.mirrors = append(f.mirrors, dialUDP(t, m))
	}
	for _, c := range append([]*net.UDPConn{f.up}, f.mirrors...) {
		f.wg.Go(func() { f.serverSide(c, c == f.up) })
	}
	f.wg.Go(f.clientSide)
	t.Cleanup(f.close)
	return f
}

func dialUDP(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addr is where the client should dial.
func (f *flightRecorder) addr() string { return f.pc.LocalAddr().String() }

// earlyDCID returns the destination connection ID of a datagram that
// starts with a QUIC v1 Initial or 0-RTT packet (long header: flags,
// version, DCID length, DCID).
func earlyDCID(b []byte) (string, bool) {
	if len(b) < 6 || b[0]&0x80 == 0 || (b[0]&0x30)>>4 > 1 || len(b) < 6+int(b[5]) {
		return "", false
	}
	return string(b[6 : 6+int(b[5])]), true
}

func (f *flightRecorder) clientSide() {
	buf := make([]byte, 2048)
	for {
		n, from, err := f.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		d := append([]byte(nil), buf[:n]...)
		f.mu.Lock()
		if f.client == nil {
			f.release = time.Now().Add(recordHold)
			time.AfterFunc(recordHold, f.releaseHeld)
		}
		f.client = from
		if dcid, ok := earlyDCID(d); ok && (f.dcid == "" || dcid == f.dcid) {
			f.dcid = dcid
			f.flight = append(f.flight, d)
			for _, m := range f.mirrors {
				m.Write(d)
			}
		}
		f.mu.Unlock()
		f.up.Write(d)
	}
}

// releaseHeld passes on the server's datagrams held so far.
func (f *flightRecorder) releaseHeld() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.held {
		f.pc.WriteTo(d, f.client)
	}
	f.held = nil
}

// serverSide passes the server's datagrams back to the client (toClient),
// or drops them (a mirror's: nobody is there to read them).
func (f *flightRecorder) serverSide(c *net.UDPConn, toClient bool) {
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP unreachable and the like
		}
		if !toClient {
			continue
		}
		f.mu.Lock()
		switch {
		case f.client == nil:
		case time.Now().Before(f.release) || len(f.held) > 0:
			f.held = append(f.held, append([]byte(nil), buf[:n]...))
		default:
			f.pc.WriteTo(buf[:n], f.client)
		}
		f.mu.Unlock()
	}
}

// recorded returns the first flight recorded so far.
func (f *flightRecorder) recorded() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.flight...)
}

func (f *flightRecorder) close() {
	f.pc.Close()
	f.up.Close()
	for _, m := range f.mirrors {
		m.Close()
	}
	f.wg.Wait()
}

// replay sends flight to s from a fresh socket until s has seen a new
// ClientHello offering early data (a replay that arrives while s still
// routes the original connection ID to the client's own connection is
// absorbed there, so it is sent again), then waits for s to decide on it.
// It returns the early-data metrics of s before and after.
func replay(t testing.TB, s *h3Server, flight [][]byte) (before, after earlyCounts) {
	t.Helper()
	if len(flight) == 0 {
		t.Fatal("no first flight recorded")
	}
	before = s.earlyCounts()
	c := dialUDP(t, s.addr)
	var wg sync.WaitGroup
	wg.Go(func() { // read (and drop) the server's answers, as an attacker would
		buf := make([]byte, 2048)
		for {
			if _, err := c.Read(buf); errors.Is(err, net.ErrClosed) {
				return
			}
		}
	})
	defer func() { c.Close(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for s.earlyCounts().offered == before.offered {
		if time.Now().After(deadline) {
			t.Fatalf("%s never saw the replayed ClientHello (%d datagrams; early data %+v; %v full, %v resumed handshakes)",
				s.name, len(flight), s.earlyCounts(), value(s.m.full), value(s.m.resumed))
		}
		for _, d := range flight {
			c.Write(d)
		}
		wait := time.Now().Add(100 * time.Millisecond)
		for s.earlyCounts().offered == before.offered && time.Now().Before(wait) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	after = s.waitDecided(t, before.offered+1)
	return before, after
}
