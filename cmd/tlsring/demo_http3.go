// demo_http3.go: `tlsring demo -http3`: the demo's servers as quic-go
// HTTP/3 servers accepting 0-RTT, through the ring with single-use
// sessions (replay-safe 0-RTT across servers) or alone on Go's own session
// tickets, and the table of resumption and 0-RTT rates and time to the
// first response. The clients' side is in demo_http3_clients.go.

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tlsring/tlsring/tlsglue"
)

// h3DemoServer is a demo HTTP/3 server: it answers every request with one
// byte, and accepts 0-RTT.
type h3DemoServer struct {
	srv       *http3.Server
	pc        net.PacketConn
	viaRing   bool
	conns     atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

func startH3DemoServer(conf *tls.Config, viaRing bool) (*h3DemoServer, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &h3DemoServer{pc: pc, viaRing: viaRing, done: make(chan struct{})}
	s.srv = &http3.Server{
		TLSConfig:  conf,
		QUICConfig: &quic.Config{Allow0RTT: true},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte{'.'})
		}),
		ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context {
			s.conns.Add(1)
			return ctx
		},
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(pc)
	}()
	return s, nil
}

func (s *h3DemoServer) addr() string { return s.pc.LocalAddr().String() }

func (s *h3DemoServer) handshakeCount() int64 { return s.conns.Load() }

func (s *h3DemoServer) usesRing() bool { return s.viaRing }

func (s *h3DemoServer) close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		<-s.done
		s.pc.Close()
	})
}

// printH3Table prints the -http3 demo's table.
func printH3Table(w io.Writer, o *demoOptions, rows []demoRow, dead string) {
	fmt.Fprintf(w, "\ntlsring demo -http3: %d members, %d clients, HTTP/3 (quic-go), %s server certificate, %v round trip, %d requests at a time\n\n",
		o.members, o.clients, o.certType, o.rtt, o.concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\trequests\tresumed [1]\t0-RTT [2]\treplay-safe [3]\tp50 first response [4]\tp99 first response [4]\tserver CPU/connection [5]")
	for _, r := range rows {
		cpu := "n/a"
		if r.cpu > 0 && r.serverHS > 0 {
			cpu = fmtDur(r.cpu / time.Duration(r.serverHS))
		}
		mark := r.mark
		if mark == "" {
			mark = "   "
		}
		safe := "no"
		if r.ring {
			safe = "yes"
		}
		fmt.Fprintf(tw, "%s %s\t%8d\t%11s\t%9s\t%15s\t%22s\t%22s\t%25s\n", mark, r.label, r.res.Done,
			pct(r.res.Resumed, r.res.Offered), pct(r.res.Early, r.res.Offered), safe,
			fmtDur(r.res.P50), fmtDur(r.res.P99), cpu)
	}
	tw.Flush()
	fmt.Fprintf(w, `
[1] resumed: the share of requests whose QUIC handshake resumed a session.
    Each request is a new connection of one of %d clients picked at random,
    to one of the servers through a random load balancer ("sticky": the
    client's own server); every client has visited once before the phase,
    and offers the session it got last time.
[2] 0-RTT: the share of requests the server took as early data, in the
    client's first flight. tlsring's sessions are single-use
    (tlsglue.Options.SingleUse): tlsglue admits early data only for them.
[3] replay-safe: whether a recorded first flight can get its early data
    accepted again. A single-use session resumes once, fleet-wide; Go's own
    session tickets resume, with their early data, on the server that
    issued them as often as anyone presents them until they expire.
[4] as the client sees it, from dialing to the response headers, over
    loopback with a %v round trip added in the client process (each
    datagram delayed by half of it each way). When a server refuses the
    early data, quic-go's HTTP/3 client returns an error instead of sending
    the request again (quic-go/quic-go#3259); the demo's client resends it
    once the handshake is done, as browsers do. Resending on the same
    connection trips over quic-go/quic-go#4706, so it resends on a new
    connection and counts the first connection's handshake plus the
    request's round trip on the second.
[5] getrusage(RUSAGE_SELF) user+system CPU time of the demo process over the
    phase, divided by the QUIC connections its servers accepted (a refused
    request's resend is a second connection). That process runs the HTTP/3
    servers and the ring members, not the clients.
`, o.clients, o.rtt)
	for _, r := range rows {
		if !r.ring {
			continue
		}
		l := r.lookups
		fmt.Fprintf(w, "%s tlsglue: early data offered %.0f, accepted %.0f", r.mark, l["early_offered"], l["early_accepted"])
		var refused []string
		for _, reason := range []string{tlsglue.EarlyRefusedNoSession, tlsglue.EarlyRefusedReplayable, tlsglue.EarlyRefusedQUIC, tlsglue.EarlyRefusedTLS} {
			if n := l["early_refused_"+reason]; n > 0 {
				refused = append(refused, fmt.Sprintf("%.0f %s", n, reason))
			}
		}
		if len(refused) > 0 {
			fmt.Fprintf(w, ", refused %v", refused)
		}
		fmt.Fprintf(w, "; lookups: %.0f hit, %.0f miss, %.0f timeout, %.0f error\n",
			l[tlsglue.ResultHit], l[tlsglue.ResultMiss], l[tlsglue.ResultTimeout], l[tlsglue.ResultError])
	}
	fmt.Fprintf(w, "(c) member %s was closed without hand-off; sessions it owned were taken from their replicas.\n", dead)
	for _, r := range rows {
		if r.res.Errors > 0 {
			fmt.Fprintf(w, "%s %s: %d requests failed (last error: %s)\n", r.mark, r.label, r.res.Errors, r.res.LastErr)
		}
	}
}
