// demo_clients.go: the TLS clients of `tlsring demo`. They run in a child
// process (the hidden subcommand "demo-clients", started by the demo) so
// that the demo process's CPU time is the servers' and members' alone.
// (demo_http3_clients.go has their HTTP/3 requests.)
//
// The child reads requests from stdin and writes events to stdout, one
// JSON object per line: a setup, then "run" requests, each answered by
// progress events and a result. It exits at end of input.

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/tlsring/tlsring/transport"
)

const demoClientsCmd = "demo-clients"

// demoRequest is a line the demo sends to its clients.
type demoRequest struct {
	Type string `json:"type"` // "setup" or "run"

	// setup
	CAPEM       string        `json:"ca_pem,omitempty"`
	ServerName  string        `json:"server_name,omitempty"`
	TLSVersion  uint16        `json:"tls_version,omitempty"`
	Clients     int           `json:"clients,omitempty"`
	Concurrency int           `json:"concurrency,omitempty"`
	HTTP3       bool          `json:"http3,omitempty"` // HTTP/3 requests with 0-RTT instead of TLS handshakes
	RTT         time.Duration `json:"rtt,omitempty"`   // HTTP/3: round trip added to every connection

	// run
	Servers    []string      `json:"servers,omitempty"`
	Sticky     bool          `json:"sticky,omitempty"`   // client i always goes to server i mod n; else a random server each time
	Sessions   string        `json:"sessions,omitempty"` // name of the clients' session caches; a new name starts with empty caches
	Handshakes int64         `json:"handshakes,omitempty"`
	Duration   time.Duration `json:"duration,omitempty"` // if > 0, run this long instead of counting handshakes
	Warmup     bool          `json:"warmup,omitempty"`   // one handshake per client instead, so every client holds a session
}

// demoEvent is a line the clients send back.
type demoEvent struct {
	Type     string      `json:"type"` // "progress" or "result"
	Progress *demoCounts `json:"progress,omitempty"`
	Result   *demoResult `json:"result,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// demoCounts are running totals of a phase.
type demoCounts struct {
	Done    int64 `json:"done"`    // handshakes completed
	Offered int64 `json:"offered"` // of which the client offered a session (a returning client)
	Resumed int64 `json:"resumed"` // of which resumed
	Early   int64 `json:"early"`   // HTTP/3: of which the server took the request as early data (0-RTT)
	Errors  int64 `json:"errors"`  // handshakes that failed
}

// demoResult is the outcome of one phase, as the clients saw it.
type demoResult struct {
	demoCounts
	P50     time.Duration `json:"p50"`     // median of TCP connect + TLS handshake (HTTP/3: time to the first response)
	P99     time.Duration `json:"p99"`     // 99th percentile of the same
	Elapsed time.Duration `json:"elapsed"` // wall time of the phase
	LastErr string        `json:"last_err,omitempty"`
}

// offerRecorder is a client session cache that records whether the last
// handshake found a session to offer, and signals each session stored.
type offerRecorder struct {
	tls.ClientSessionCache
	offered bool
	puts    chan struct{}
}

func newOfferRecorder() *offerRecorder {
	return &offerRecorder{ClientSessionCache: tls.NewLRUClientSessionCache(4), puts: make(chan struct{}, 4)}
}

func (o *offerRecorder) Get(key string) (*tls.ClientSessionState, bool) {
	s, ok := o.ClientSessionCache.Get(key)
	o.offered = o.offered || ok
	return s, ok
}

func (o *offerRecorder) Put(key string, cs *tls.ClientSessionState) {
	o.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case o.puts <- struct{}{}:
		default:
		}
	}
}

// demoClient is one simulated client with its own session cache.
type demoClient struct {
	cache *offerRecorder
	conf  *tls.Config
}

// visit is one handshake (or HTTP/3 request) of a client, as it saw it.
type visit struct {
	d       time.Duration // handshake time; HTTP/3: time to the first response
	offered bool          // the client offered a session
	resumed bool
	early   bool // HTTP/3: the request was taken as early data
}

// visitFunc makes one visit of client c to server.
type visitFunc func(ctx context.Context, c *demoClient, server string) (visit, error)

func runDemoClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		return usagef("%s is started by 'tlsring demo'; it takes no arguments", demoClientsCmd)
	}
	return serveDemoClients(ctx, os.Stdin, stdout)
}

func serveDemoClients(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	emit := func(e demoEvent) error {
		outMu.Lock()
		defer outMu.Unlock()
		return enc.Encode(e)
	}
	var setup demoRequest
	if err := dec.Decode(&setup); err != nil {
		return fmt.Errorf("reading setup: %w", err)
	}
	if setup.Type != "setup" || setup.Clients <= 0 || setup.Concurrency <= 0 {
		return errors.New("bad setup request")
	}
	pool, err := transport.ParseCertPool([]byte(setup.CAPEM))
	if err != nil {
		return fmt.Errorf("setup CA: %w", err)
	}
	sessions := map[string][]*demoClient{}
	for {
		var req demoRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading request: %w", err)
		}
		if req.Type != "run" || len(req.Servers) == 0 {
			return fmt.Errorf("bad request %+v", req)
		}
		clients, ok := sessions[req.Sessions]
		if !ok {
			clients = make([]*demoClient, setup.Clients)
			for i := range clients {
				cache := newOfferRecorder()
				clients[i] = &demoClient{cache: cache, conf: &tls.Config{
					RootCAs:            pool,
					ServerName:         setup.ServerName,
					MinVersion:         setup.TLSVersion,
					MaxVersion:         setup.TLSVersion,
					ClientSessionCache: cache,
				}}
				if setup.HTTP3 {
					clients[i].conf.NextProtos = []string{http3.NextProtoH3}
				}
			}
			sessions[req.Sessions] = clients
		}
		visitOnce := handshakeOnce
		if setup.HTTP3 {
			rtt := setup.RTT
			visitOnce = func(ctx context.Context, c *demoClient, server string) (visit, error) {
				return h3RequestOnce(ctx, c, server, rtt)
			}
		}
		res := runPhase(ctx, &req, clients, setup.Concurrency, visitOnce, func(c demoCounts) {
			emit(demoEvent{Type: "progress", Progress: &c})
		})
		if err := emit(demoEvent{Type: "result", Result: res}); err != nil {
			return err
		}
	}
}

// runPhase runs one phase's handshakes with concurrency workers, each
// owning the clients i with i mod concurrency == its number (so a client
// never runs two handshakes at once).
func runPhase(ctx context.Context, req *demoRequest, clients []*demoClient, concurrency int, visitOnce visitFunc, progress func(demoCounts)) *demoResult {
	var done, offered, resumed, early, failed atomic.Int64
	var started atomic.Int64
	var lastErr atomic.Pointer[string]
	concurrency = min(concurrency, len(clients))
	lat := make([][]time.Duration, concurrency)
	begin := time.Now()
	var deadline time.Time
	if req.Duration > 0 {
		deadline = begin.Add(req.Duration)
	}
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if !deadline.IsZero() {
			return time.Now().Before(deadline)
		}
		return started.Add(1) <= req.Handshakes
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				progress(demoCounts{Done: done.Load(), Offered: offered.Load(), Resumed: resumed.Load(), Early: early.Load(), Errors: failed.Load()})
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(begin.UnixNano())))
			var mine []int
			for i := w; i < len(clients); i += concurrency {
				mine = append(mine, i)
			}
			next := 0
			for {
				var ci int
				if req.Warmup {
					if next == len(mine) || ctx.Err() != nil {
						break
					}
					ci, next = mine[next], next+1
				} else {
					if !more() {
						break
					}
					ci = mine[rng.IntN(len(mine))]
				}
				server := req.Servers[rng.IntN(len(req.Servers))]
				if req.Sticky {
					server = req.Servers[ci%len(req.Servers)]
				}
				v, err := visitOnce(ctx, clients[ci], server)
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					lastErr.Store(&msg)
					continue
				}
				lat[w] = append(lat[w], v.d)
				if v.offered {
					offered.Add(1)
					if v.resumed {
						resumed.Add(1)
					}
					if v.early {
						early.Add(1)
					}
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := &demoResult{
		demoCounts: demoCounts{Done: done.Load(), Offered: offered.Load(), Resumed: resumed.Load(), Early: early.Load(), Errors: failed.Load()},
		Elapsed:    time.Since(begin),
	}
	if len(all) > 0 {
		res.P50 = all[len(all)/2]
		res.P99 = all[len(all)*99/100]
	}
	if p := lastErr.Load(); p != nil {
		res.LastErr = *p
	}
	return res
}

// handshakeOnce connects c to server, handshakes, reads the server's one
// byte (which also makes the client process a TLS 1.3 session ticket) and
// closes. d is the time to connect and handshake.
func handshakeOnce(ctx context.Context, c *demoClient, server string) (visit, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.cache.offered = false
	start := time.Now()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		return visit{}, err
	}
	defer conn.Close()
	tc := tls.Client(conn, c.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return visit{}, err
	}
	d := time.Since(start)
	if dl, ok := ctx.Deadline(); ok {
		tc.SetDeadline(dl)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return visit{}, fmt.Errorf("reading the server's byte: %w", err)
	}
	tc.Close()
	return visit{d: d, offered: c.cache.offered, resumed: tc.ConnectionState().DidResume}, nil
}
