// bench_client.go: the TLS clients of `tlsring bench`. They run in their
// own process (the hidden subcommand "bench-client", this binary re-executed
// by the bench) so that the cluster CPU the bench measures is the servers',
// the ring members' and memcached's, never the clients'.
//
// The bench writes requests to the client's stdin and reads one result per
// request from its stdout, one JSON object per line. Lines on stdout that
// are not JSON objects are ignored by the bench (a test binary standing in
// for this one prints its own). The client exits at end of input.

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

	"github.com/tlsring/tlsring/transport"
)

// benchClientCmd is the hidden subcommand running the bench's clients.
const benchClientCmd = "bench-client"

// benchRequest is a line the bench sends to its client process: a "setup"
// first, then "run" requests.
type benchRequest struct {
	Type string `json:"type"` // "setup" or "run"

	// setup
	CAPEM      string `json:"ca_pem,omitempty"`
	ServerName string `json:"server_name,omitempty"`

	// run
	Sessions   string        `json:"sessions,omitempty"`    // names a set of clients (and their session caches), created on first use
	Clients    int           `json:"clients,omitempty"`     // size of that set
	TLSVersion uint16        `json:"tls_version,omitempty"` // the one version the clients offer
	Servers    []string      `json:"servers,omitempty"`     // each handshake goes to one of them at random
	InFlight   int           `json:"in_flight,omitempty"`   // handshakes at once
	Handshakes int64         `json:"handshakes,omitempty"`  // handshakes to run, unless Duration is set
	Duration   time.Duration `json:"duration,omitempty"`    // if > 0, run this long instead
	Warmup     bool          `json:"warmup,omitempty"`      // instead: one handshake per client, so each holds a session
}

// benchResult is the client process's answer to a run request.
type benchResult struct {
	Dials   int64         `json:"dials"`   // connections made (each one the servers serve)
	Done    int64         `json:"done"`    // handshakes completed
	Offered int64         `json:"offered"` // of which the client offered a session
	Resumed int64         `json:"resumed"` // of which resumed
	Errors  int64         `json:"errors"`  // handshakes that failed
	P50     time.Duration `json:"p50"`     // TCP connect + TLS handshake, median
	P99     time.Duration `json:"p99"`     // and 99th percentile
	Elapsed time.Duration `json:"elapsed"` // wall time of the run
	LastErr string        `json:"last_err,omitempty"`
	Error   string        `json:"error,omitempty"` // the request itself failed
}

// benchClient is one simulated client with its own one-session cache.
type benchClient struct {
	cache *offerCache
	conf  *tls.Config
}

// offerCache is a client session cache that records whether the last
// handshake found a session to offer.
type offerCache struct {
	tls.ClientSessionCache
	offered bool
}

func (o *offerCache) Get(key string) (*tls.ClientSessionState, bool) {
	s, ok := o.ClientSessionCache.Get(key)
	o.offered = o.offered || ok
	return s, ok
}

func runBenchClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 0 {
		return usagef("%s is started by 'tlsring bench'; it takes no arguments", benchClientCmd)
	}
	return serveBenchClient(ctx, os.Stdin, stdout)
}

// serveBenchClient reads requests from in and answers them on out until
// end of input.
func serveBenchClient(ctx context.Context, in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	var setup benchRequest
	if err := dec.Decode(&setup); err != nil {
		return fmt.Errorf("reading setup: %w", err)
	}
	if setup.Type != "setup" {
		return errors.New("bench-client: the first request must be a setup")
	}
	pool, err := transport.ParseCertPool([]byte(setup.CAPEM))
	if err != nil {
		return fmt.Errorf("bench-client: setup CA: %w", err)
	}
	sets := map[string][]*benchClient{}
	for {
		var req benchRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench-client: reading a request: %w", err)
		}
		if req.Type != "run" || len(req.Servers) == 0 || req.Clients < 1 || req.InFlight < 1 {
			if err := enc.Encode(benchResult{Error: fmt.Sprintf("bad request %+v", req)}); err != nil {
				return err
			}
			continue
		}
		clients, ok := sets[req.Sessions]
		if !ok {
			clients = make([]*benchClient, req.Clients)
			for i := range clients {
				cache := &offerCache{ClientSessionCache: tls.NewLRUClientSessionCache(1)}
				clients[i] = &benchClient{cache: cache, conf: &tls.Config{
					RootCAs:            pool,
					ServerName:         setup.ServerName,
					MinVersion:         req.TLSVersion,
					MaxVersion:         req.TLSVersion,
					ClientSessionCache: cache,
				}}
			}
			sets[req.Sessions] = clients
		}
		if err := enc.Encode(runBenchHandshakes(ctx, &req, clients)); err != nil {
			return err
		}
	}
}

// runBenchHandshakes runs req with req.InFlight workers, each owning the
// clients whose index modulo InFlight is its number (so a client never
// runs two handshakes at once) and picking one of them at random for each
// handshake, and a server at random: a random load balancer.
func runBenchHandshakes(ctx context.Context, req *benchRequest, clients []*benchClient) *benchResult {
	var dials, done, offered, resumed, failed, started atomic.Int64
	var lastErr atomic.Pointer[string]
	workers := min(req.InFlight, len(clients))
	lat := make([][]time.Duration, workers)
	begin := time.Now()
	var deadline time.Time
	if req.Duration > 0 {
		deadline = begin.Add(req.Duration)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(begin.UnixNano())))
			var mine []int
			for i := w; i < len(clients); i += workers {
				mine = append(mine, i)
			}
			for next := 0; ctx.Err() == nil; {
				var ci int
				switch {
				case req.Warmup:
					if next == len(mine) {
						return
					}
					ci, next = mine[next], next+1
				case !deadline.IsZero():
					if !time.Now().Before(deadline) {
						return
					}
					ci = mine[rng.IntN(len(mine))]
				default:
					if started.Add(1) > req.Handshakes {
						return
					}
					ci = mine[rng.IntN(len(mine))]
				}
				dials.Add(1)
				d, wasOffered, didResume, err := benchHandshake(ctx, clients[ci], req.Servers[rng.IntN(len(req.Servers))])
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					lastErr.Store(&msg)
					continue
				}
				lat[w] = append(lat[w], d)
				done.Add(1)
				if wasOffered {
					offered.Add(1)
					if didResume {
						resumed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := &benchResult{
		Dials: dials.Load(), Done: done.Load(), Offered: offered.Load(), Resumed: resumed.Load(),
		Errors: failed.Load(), Elapsed: time.Since(begin),
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

// benchHandshake connects c to server, handshakes, reads the server's one
// byte (which also makes a TLS 1.3 client take the session ticket) and
// closes. d is the time to connect and handshake.
func benchHandshake(ctx context.Context, c *benchClient, server string) (d time.Duration, offered, resumed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.cache.offered = false
	start := time.Now()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		return 0, false, false, err
	}
	defer conn.Close()
	tc := tls.Client(conn, c.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return 0, false, false, err
	}
	d = time.Since(start)
	if dl, ok := ctx.Deadline(); ok {
		tc.SetDeadline(dl)
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		return 0, false, false, fmt.Errorf("reading the server's byte: %w", err)
	}
	tc.Close()
	return d, c.cache.offered, tc.ConnectionState().DidResume, nil
}
