// demo.go: `tlsring demo`, a real local cluster in one process: ring
// members over QUIC on loopback, TLS servers using them through tlsglue,
// and, for comparison, the same servers on their own (Go's default
// tickets, keys not shared). TLS clients run in a child process (see
// demo_clients.go) behind a random load balancer; the demo prints a
// progress line per phase and a table, then closes one member and shows the
// resumption rate after the loss. With -http3 the servers are HTTP/3
// servers accepting 0-RTT (demo_http3.go).

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tlsring/tlsring/cmd/internal/certgen"
	"github.com/tlsring/tlsring/peer"
	"github.com/tlsring/tlsring/ticketkeys"
	"github.com/tlsring/tlsring/tlsglue"
	"github.com/tlsring/tlsring/transport"
)

// demoOptions are the demo's flags.
type demoOptions struct {
	members     int
	clients     int
	concurrency int
	handshakes  int64
	duration    time.Duration
	tlsVersion  uint16
	tlsName     string
	certType    certgen.KeyType
	admin       string
	logLevel    string
	deadline    time.Duration
	mode        tlsglue.Mode
	http3       bool
	rtt         time.Duration
}

func parseDemoFlags(args []string, stdout, stderr io.Writer) (*demoOptions, error) {
	fs := newFlagSet("demo", `Starts a real local cluster in this process: ring members talking QUIC with
mutual TLS on loopback, and one TLS server per member whose sessions go
through tlsring (tlsglue on the member). Throwaway certificates are made
for the run. TLS clients run in a child process: each handshake picks a
random client and, through a random load balancer, a random server; a
client returns with the session it got last time.

Phases, with the same clients and handshake counts:
  (a) tlsring:  the TLS servers share sessions through the ring;
  (b) alone:    each server with its own tls.Config and Go's default,
                unshared session ticket keys;
      sticky:   the same, but each client always returns to the same
                server (the best one server alone can do);
  (c) loss:     one member and its TLS server are closed (no hand-off) and
                the clients of (a) come back to the remaining servers.
Then it prints resumption rate, handshake latency and server CPU per
handshake for each phase.

With -http3 the servers are quic-go HTTP/3 servers that accept 0-RTT, the
ring's sessions single-use (replay-safe 0-RTT across servers), the servers
alone on Go's own session tickets; each client request is a new QUIC
connection, sent in 0-RTT when the client holds a session, over a path
with an emulated round trip (-rtt). The table adds the 0-RTT rate and shows
the time to the first response.`, stdout, stderr)
	o := &demoOptions{}
	fs.IntVar(&o.members, "members", 3, "ring members (and TLS servers), at least 2")
	fs.IntVar(&o.clients, "clients", 300, "TLS clients, each with its own session cache")
	fs.IntVar(&o.concurrency, "concurrency", 4, "handshakes in flight at once (-http3: 16 unless set)")
	fs.Int64Var(&o.handshakes, "handshakes", 2000, "handshakes (-http3: requests) per phase (unless -duration is set)")
	fs.DurationVar(&o.duration, "duration", 0, "run each phase this long instead of counting -handshakes")
	tlsVer := fs.String("tls", "1.3", "TLS version: 1.2 or 1.3")
	cert := fs.String("cert", "ecdsa", "TLS server certificate type: ecdsa (P-256) or rsa (2048 bits)")
	fs.DurationVar(&o.deadline, "deadline", 0, "bound on one session lookup (tlsglue.Options.Deadline; 0 = tlsglue's default, 3ms)")
	fs.StringVar(&o.admin, "admin", "", "serve /metrics and /healthz on this host:port while the demo runs (default: none)")
	mode := fs.String("mode", "stateful", "how the tlsring servers issue tickets: stateful (sessions in the ring), stateless (tickets under the fleet's rotating keys, agreed through the ring) or hybrid (stateless for TLS 1.3, stateful for TLS 1.2)")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level of the members: debug, info, warn or error")
	fs.BoolVar(&o.http3, "http3", false, "HTTP/3 servers (quic-go) and clients with 0-RTT instead of TLS over TCP")
	fs.DurationVar(&o.rtt, "rtt", 10*time.Millisecond, "-http3: round trip the clients add to every connection (half each way), emulating a network path")
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch *tlsVer {
	case "1.2":
		o.tlsVersion = tls.VersionTLS12
	case "1.3":
		o.tlsVersion = tls.VersionTLS13
	default:
		return nil, usagef("-tls %q: want 1.2 or 1.3", *tlsVer)
	}
	o.tlsName = "TLS " + *tlsVer
	var err error
	if o.mode, err = tlsglue.ParseMode(*mode); err != nil {
		return nil, usagef("-mode %q: want stateful, stateless or hybrid", *mode)
	}
	switch certgen.KeyType(*cert) {
	case certgen.ECDSA, certgen.RSA:
		o.certType = certgen.KeyType(*cert)
	default:
		return nil, usagef("-cert %q: want ecdsa or rsa", *cert)
	}
	if o.http3 {
		if o.tlsVersion != tls.VersionTLS13 {
			return nil, usagef("-tls %s: HTTP/3 runs over TLS 1.3 only", *tlsVer)
		}
		if o.mode != tlsglue.Stateful {
			return nil, usagef("-mode %s: -http3 shows replay-safe 0-RTT, which needs single-use sessions, stored in the ring (stateful); a stateless ticket admits no early data", o.mode)
		}
		if !set["concurrency"] {
			o.concurrency = 16 // requests mostly wait on the emulated round trip
		}
	}
	switch {
	case o.rtt < 0 || o.rtt > 10*time.Second:
		return nil, usagef("-rtt %v: want 0 to 10s", o.rtt)
	case o.members < 2 || o.members > 32:
		return nil, usagef("-members %d: want 2 to 32 (one is closed in phase c)", o.members)
	case o.clients < 1:
		return nil, usagef("-clients %d: want at least 1", o.clients)
	case o.concurrency < 1 || o.concurrency > 256:
		return nil, usagef("-concurrency %d: want 1 to 256", o.concurrency)
	case o.deadline < 0:
		return nil, usagef("-deadline %v: want a positive duration", o.deadline)
	case o.duration < 0:
		return nil, usagef("-duration %v: want a positive duration", o.duration)
	case o.duration == 0 && o.handshakes < 1:
		return nil, usagef("-handshakes %d: want at least 1", o.handshakes)
	}
	return o, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseDemoFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := newLogger(stderr, o.logLevel, "text")
	if err != nil {
		return err
	}
	prog := &progress{w: stderr, tty: isTerminal(stderr), http3: o.http3}
	if o.http3 {
		prog.note("starting %d ring members (QUIC on loopback) and %d HTTP/3 servers accepting 0-RTT, %s certificate, clients on a %v round trip", o.members, 2*o.members, o.certType, o.rtt)
	} else {
		prog.note("starting %d ring members (QUIC on loopback) and %d TLS servers, %s, %s certificate", o.members, 2*o.members, o.tlsName, o.certType)
	}
	cl, err := startDemoCluster(o, log)
	if err != nil {
		return err
	}
	defer cl.close()
	if o.admin != "" {
		admin, err := startAdmin(o.admin, cl.reg, log, nil)
		if err != nil {
			return fmt.Errorf("-admin %s: %w", o.admin, err)
		}
		defer admin.shutdown(context.Background())
		prog.note("metrics on http://%s/metrics", admin.Addr())
	}

	clients, err := startDemoClients(ctx, o, cl.webCA, stderr)
	if err != nil {
		return err
	}
	defer clients.stop()

	var rows []demoRow
	phases := []demoPhase{
		{mark: "(a)", label: fmt.Sprintf("tlsring%s, %d members", modeLabel(o.mode), o.members), servers: cl.ring, sessions: "ring", warmup: true},
		{mark: "(b)", label: "each server alone", servers: cl.alone, sessions: "alone", warmup: true},
		{mark: "", label: "each server alone, sticky LB", servers: cl.alone, sessions: "sticky", sticky: true, warmup: true},
	}
	for _, ph := range phases {
		row, err := cl.runPhase(ctx, clients, o, &ph, prog)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	// (c) Close the last member and its TLS server, without hand-off, and
	// bring the clients of (a) back to the others.
	dead := len(cl.peers) - 1
	deadName := cl.peers[dead].Self()
	prog.note("closing member %s (no hand-off) and its TLS server", deadName)
	cl.kill(dead)
	loss := demoPhase{mark: "(c)", label: fmt.Sprintf("tlsring, after losing 1 of %d", o.members), servers: cl.ring[:dead], sessions: "ring"}
	row, err := cl.runPhase(ctx, clients, o, &loss, prog)
	if err != nil {
		return err
	}
	rows = append(rows, row)
	clients.stop()
	if o.http3 {
		printH3Table(stdout, o, rows, deadName)
	} else {
		printDemoTable(stdout, o, rows, deadName)
	}
	return nil
}

// demoServer is one of the demo's servers: a TLS server (tlsServer) or,
// with -http3, an HTTP/3 server (h3DemoServer).
type demoServer interface {
	addr() string
	handshakeCount() int64 // handshakes (connections) it has completed or accepted
	usesRing() bool        // its sessions go through tlsglue and the ring
	close()
}

// demoPhase is one row of the table to run.
type demoPhase struct {
	mark, label string
	servers     []demoServer
	sessions    string
	sticky      bool
	warmup      bool // the clients are fresh: give each its first visit before measuring
}

// demoRow is a phase's measurements.
type demoRow struct {
	mark, label string
	res         demoResult
	serverHS    int64         // handshakes the servers completed
	cpu         time.Duration // process CPU over the phase; 0 if unavailable
	lookups     map[string]float64
	ring        bool
}

// demoCluster is everything the demo runs in this process.
type demoCluster struct {
	reg   *prometheus.Registry
	webCA *certgen.CA
	peers []*peer.Peer
	glues []*tlsglue.Glue
	ring  []demoServer // one per member, sessions through tlsglue
	alone []demoServer // one per member, Go's default tickets
	log   *slog.Logger

	// keyrings and stopKeys: -mode stateless or hybrid (demo_modes.go)
	keyrings []*ticketkeys.Keyring
	stopKeys func()
}

func startDemoCluster(o *demoOptions, log *slog.Logger) (cl *demoCluster, err error) {
	cl = &demoCluster{reg: prometheus.NewRegistry(), log: log}
	defer func() {
		if err != nil {
			cl.close()
		}
	}()
	clusterCA, err := certgen.NewCA("tlsring demo cluster CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	memberCert, err := clusterCA.Issue(certgen.ECDSA, 24*time.Hour, "127.0.0.1")
	if err != nil {
		return nil, err
	}
	memberTLS := &tls.Config{
		Certificates: []tls.Certificate{memberCert.TLS()},
		RootCAs:      clusterCA.Pool(),
		ClientCAs:    clusterCA.Pool(),
		MinVersion:   tls.VersionTLS13,
	}
	if cl.webCA, err = certgen.NewCA("tlsring demo web CA", 24*time.Hour); err != nil {
		return nil, err
	}
	webCert, err := cl.webCA.Issue(o.certType, 24*time.Hour, "localhost", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	trMetrics := transport.NewMetrics(nil) // shared by the demo's members
	if err := cl.reg.Register(trMetrics); err != nil {
		return nil, err
	}
	if cl.peers, err = startDemoMembers(o.members, memberTLS, trMetrics, cl.reg, log); err != nil {
		return nil, err
	}
	if err := cl.startKeyrings(o.mode, log); err != nil {
		return nil, err
	}
	for i, p := range cl.peers {
		m := tlsglue.NewMetrics(prometheus.Labels{"server": strconv.Itoa(i)})
		if err := cl.reg.Register(m); err != nil {
			return nil, err
		}
		// With HTTP/3, single-use sessions: without them tlsglue refuses
		// early data (it could be replayed to any server of the fleet).
		g, err := tlsglue.New(p, tlsglue.Options{Metrics: m, Logger: log, Deadline: o.deadline, Mode: o.mode, TicketKeys: cl.ticketKeys(i), SingleUse: o.http3})
		if err != nil {
			return nil, err
		}
		cl.glues = append(cl.glues, g)
		conf := webConfig(webCert, o.tlsVersion)
		if err := g.Install(conf); err != nil {
			return nil, err
		}
		s, err := startDemoServer(o, conf, true)
		if err != nil {
			return nil, err
		}
		cl.ring = append(cl.ring, s)
	}
	for range cl.peers {
		// Each its own Config: its own automatic session ticket keys.
		s, err := startDemoServer(o, webConfig(webCert, o.tlsVersion), false)
		if err != nil {
			return nil, err
		}
		cl.alone = append(cl.alone, s)
	}
	return cl, nil
}

// startDemoServer starts a TLS server, or with -http3 an HTTP/3 server.
func startDemoServer(o *demoOptions, conf *tls.Config, viaRing bool) (demoServer, error) {
	if o.http3 {
		return startH3DemoServer(conf, viaRing)
	}
	return startTLSServer(conf)
}

// startDemoMembers starts n members on free loopback UDP ports. A port
// picked free can be taken before the member binds it; then it tries again
// with new ports.
func startDemoMembers(n int, conf *tls.Config, trm *transport.Metrics, reg prometheus.Registerer, log *slog.Logger) ([]*peer.Peer, error) {
	var lastErr error
	for range 3 {
		names, err := loopbackMemberNames(n)
		if err != nil {
			return nil, err
		}
		var peers []*peer.Peer
		for _, name := range names {
			p, err := peer.New(peer.Config{
				Self: name, Members: names, TLS: conf, Logger: log, Registerer: reg,
				Listen: func(self string, h transport.Handler) (transport.Transport, error) {
					return transport.ListenQUIC(transport.QUICConfig{Addr: self, TLS: conf, Logger: log, Metrics: trm}, h)
				},
			})
			if err != nil {
				lastErr = err
				break
			}
			peers = append(peers, p)
		}
		if len(peers) == n {
			return peers, nil
		}
		for _, p := range peers {
			p.Close()
		}
	}
	return nil, lastErr
}

// loopbackMemberNames returns n member names on loopback UDP ports that
// were free a moment ago (also realcluster_procs.go's).
func loopbackMemberNames(n int) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		port, err := freeUDPPort()
		if err != nil {
			return nil, err
		}
		names[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	return names, nil
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// webConfig is a TLS server configuration of the demo's web servers.
func webConfig(cert *certgen.Issued, version uint16) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert.TLS()},
		MinVersion:   version,
		MaxVersion:   version,
	}
}

func (cl *demoCluster) addrs(servers []demoServer) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = s.addr()
	}
	return out
}

// kill closes member i, its glue and its TLS server, without hand-off.
func (cl *demoCluster) kill(i int) {
	cl.ring[i].close()
	cl.glues[i].Close()
	cl.peers[i].Close()
}

func (cl *demoCluster) close() {
	for _, s := range cl.ring {
		s.close()
	}
	for _, s := range cl.alone {
		s.close()
	}
	for _, g := range cl.glues {
		g.Close()
	}
	if cl.stopKeys != nil {
		cl.stopKeys()
	}
	for _, p := range cl.peers {
		p.Close()
	}
}

// runPhase runs one phase through the clients and measures it.
func (cl *demoCluster) runPhase(ctx context.Context, clients *demoClients, o *demoOptions, ph *demoPhase, prog *progress) (demoRow, error) {
	row := demoRow{mark: ph.mark, label: ph.label, ring: len(ph.servers) > 0 && ph.servers[0].usesRing()}
	hs0 := serverHandshakes(ph.servers)
	lk0 := gatherLookups(cl.reg)
	cpu0, cpuOK := processCPU()
	label := strings.TrimSpace(ph.mark + " " + ph.label)
	if ph.warmup {
		// Fresh clients: one full handshake each, not measured, so that
		// every measured handshake is by a returning client.
		prog.start(label+", first visits", int64(o.clients), 0)
		res, err := clients.run(ctx, demoRequest{
			Type: "run", Servers: cl.addrs(ph.servers), Sticky: ph.sticky, Sessions: ph.sessions, Warmup: true,
		}, prog.update)
		if err != nil {
			prog.end("failed")
			return row, err
		}
		unit := "handshakes"
		if o.http3 {
			unit = "requests"
		}
		prog.end(fmt.Sprintf("%d %s in %.1fs", res.Done, unit, res.Elapsed.Seconds()))
	}
	prog.start(label, o.handshakes, o.duration)
	res, err := clients.run(ctx, demoRequest{
		Type: "run", Servers: cl.addrs(ph.servers), Sticky: ph.sticky, Sessions: ph.sessions,
		Handshakes: o.handshakes, Duration: o.duration,
	}, prog.update)
	if err != nil {
		prog.end("failed")
		return row, err
	}
	cpu1, _ := processCPU()
	row.res = *res
	row.serverHS = serverHandshakes(ph.servers) - hs0
	if cpuOK {
		row.cpu = cpu1 - cpu0
	}
	lk1 := gatherLookups(cl.reg)
	row.lookups = map[string]float64{}
	for k, v := range lk1 {
		row.lookups[k] = v - lk0[k]
	}
	summary := fmt.Sprintf("%d handshakes in %.1fs, %s resumed", res.Done, res.Elapsed.Seconds(), pct(res.Resumed, res.Offered))
	if o.http3 {
		summary = fmt.Sprintf("%d requests in %.1fs, %s resumed, %s in 0-RTT", res.Done, res.Elapsed.Seconds(), pct(res.Resumed, res.Offered), pct(res.Early, res.Offered))
	}
	prog.end(summary)
	if res.Done == 0 {
		return row, fmt.Errorf("phase %s: no handshake succeeded (last error: %s)", ph.label, res.LastErr)
	}
	return row, nil
}

func serverHandshakes(servers []demoServer) int64 {
	var n int64
	for _, s := range servers {
		n += s.handshakeCount()
	}
	return n
}

// gatherLookups sums tlsring_tlsglue_lookups_total by result over every
// server.
func gatherLookups(reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		var prefix string
		switch mf.GetName() {
		case "tlsring_tlsglue_lookups_total":
			prefix = ""
		case "tlsring_tlsglue_writes_total":
			prefix = "write_"
		case "tlsring_tlsglue_write_drops_total":
			prefix = "write_dropped"
		case "tlsring_tlsglue_early_data_offered_total":
			prefix = "early_offered"
		case "tlsring_tlsglue_early_data_accepted_total":
			prefix = "early_accepted"
		case "tlsring_tlsglue_early_data_refused_total":
			prefix = "early_refused_"
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			switch prefix {
			case "write_dropped", "early_offered", "early_accepted":
				out[prefix] += m.GetCounter().GetValue()
				continue
			}
			if prefix == "early_refused_" {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "reason" {
						out[prefix+lp.GetValue()] += m.GetCounter().GetValue()
					}
				}
				continue
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" {
					out[prefix+lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func pct(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func printDemoTable(w io.Writer, o *demoOptions, rows []demoRow, dead string) {
	fmt.Fprintf(w, "\ntlsring demo: %d members, %d clients, %s, %s server certificate, %d handshakes at a time\n\n",
		o.members, o.clients, o.tlsName, o.certType, o.concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\thandshakes\tresumed [1]\tp50 handshake [2]\tp99 handshake [2]\tserver CPU/handshake [3]")
	for _, r := range rows {
		cpu := "n/a"
		if r.cpu > 0 && r.serverHS > 0 {
			cpu = fmtDur(r.cpu / time.Duration(r.serverHS))
		}
		mark := r.mark
		if mark == "" {
			mark = "   "
		}
		fmt.Fprintf(tw, "%s %s\t%10d\t%11s\t%17s\t%17s\t%24s\n", mark, r.label, r.res.Done, pct(r.res.Resumed, r.res.Offered),
			fmtDur(r.res.P50), fmtDur(r.res.P99), cpu)
	}
	tw.Flush()
	fmt.Fprintf(w, `
[1] resumed: the share of handshakes that resumed a session instead of a
    full handshake. Each handshake picks one of %d clients at random and,
    through a random load balancer, one of the servers ("sticky": the
    client's own server); every client has visited once before the phase
    (unmeasured first visits), and offers the session it got last time.
[2] as the client sees it: TCP connect + TLS handshake on loopback, clients
    in a child process, %d at a time on a shared machine.
[3] getrusage(RUSAGE_SELF) user+system CPU time of the demo process over the
    phase, divided by the handshakes its servers completed. That process
    runs the TLS servers and the ring members (store lookups and writes,
    QUIC), not the clients, which run in a child process.
`, o.clients, o.concurrency)
	for _, r := range rows {
		if !r.ring {
			continue
		}
		l := r.lookups
		fmt.Fprintf(w, "%s tlsglue lookups: %.0f hit, %.0f miss, %.0f timeout, %.0f error", r.mark,
			l[tlsglue.ResultHit], l[tlsglue.ResultMiss], l[tlsglue.ResultTimeout], l[tlsglue.ResultError])
		if n := l[tlsglue.ResultMismatch] + l[tlsglue.ResultMalformed] + l[tlsglue.ResultCorrupt]; n > 0 {
			fmt.Fprintf(w, ", %.0f other", n)
		}
		fmt.Fprintf(w, "; writes: %.0f ok", l["write_"+tlsglue.WriteOK])
		if n := l["write_"+tlsglue.WriteError] + l["write_"+tlsglue.WriteTimeout] + l["write_"+tlsglue.WriteExpired] + l["write_dropped"]; n > 0 {
			fmt.Fprintf(w, ", %.0f failed or dropped", n)
		}
		fmt.Fprintln(w)
	}
	switch o.mode {
	case tlsglue.Stateless:
		fmt.Fprintf(w, "(c) member %s was closed without hand-off; every member holds every ticket key, so nothing was lost.\n", dead)
	default:
		fmt.Fprintf(w, "(c) member %s was closed without hand-off; sessions it owned were read from their replicas.\n", dead)
	}
	for _, r := range rows {
		if r.res.Errors > 0 {
			fmt.Fprintf(w, "%s %s: %d handshakes failed (last error: %s)\n", r.mark, r.label, r.res.Errors, r.res.LastErr)
		}
	}
}

// fmtDur formats a duration with 3 significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// tlsServer is a demo TLS server: it handshakes, writes one byte and
// closes each connection.
type tlsServer struct {
	l          net.Listener
	conf       *tls.Config
	viaRing    bool
	wg         sync.WaitGroup
	handshakes atomic.Int64
	failed     atomic.Int64
	closeOnce  sync.Once
}

// startTLSServer serves conf; its sessions go through the ring if tlsglue
// is installed on conf.
func startTLSServer(conf *tls.Config) (*tlsServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return serveTLS(l, conf), nil
}

// serveTLS serves conf on l (also the TLS server of `tlsring peer
// -tls-listen`, peer_tls.go).
func serveTLS(l net.Listener, conf *tls.Config) *tlsServer {
	s := &tlsServer{l: l, conf: conf, viaRing: conf.WrapSession != nil}
	s.wg.Go(s.serve)
	return s
}

func (s *tlsServer) addr() string { return s.l.Addr().String() }

func (s *tlsServer) handshakeCount() int64 { return s.handshakes.Load() }

func (s *tlsServer) usesRing() bool { return s.viaRing }

func (s *tlsServer) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		s.wg.Go(func() { s.handle(c) })
	}
}

func (s *tlsServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(c, s.conf)
	if err := tc.Handshake(); err != nil {
		s.failed.Add(1)
		return
	}
	s.handshakes.Add(1)
	tc.Write([]byte{'.'})
	tc.Close()
}

func (s *tlsServer) close() {
	s.closeOnce.Do(func() {
		s.l.Close()
		s.wg.Wait()
	})
}

// demoClients is the child process running the TLS clients.
type demoClients struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	enc      *json.Encoder
	dec      *json.Decoder
	stopOnce sync.Once
}

func startDemoClients(ctx context.Context, o *demoOptions, webCA *certgen.CA, stderr io.Writer) (*demoClients, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this executable to run the clients: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, demoClientsCmd)
	cmd.Stderr = stderr
	// The HTTP/3 clients' delaying sockets are no *net.UDPConn, whose
	// buffer sizes quic-go would tune; nothing to warn about.
	cmd.Env = append(os.Environ(), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the clients: %w", err)
	}
	dc := &demoClients{cmd: cmd, in: in, enc: json.NewEncoder(in), dec: json.NewDecoder(out)}
	err = dc.enc.Encode(demoRequest{
		Type: "setup", CAPEM: string(certgen.CertPEM(webCA.Cert)), ServerName: "localhost",
		TLSVersion: o.tlsVersion, Clients: o.clients, Concurrency: o.concurrency,
		HTTP3: o.http3, RTT: o.rtt,
	})
	if err != nil {
		dc.stop()
		return nil, fmt.Errorf("starting the clients: %w", err)
	}
	return dc, nil
}

// run asks the clients to run a phase and waits for its result, passing
// progress events to onProgress.
func (dc *demoClients) run(ctx context.Context, req demoRequest, onProgress func(demoCounts)) (*demoResult, error) {
	if err := dc.enc.Encode(req); err != nil {
		return nil, dc.failed(err)
	}
	for {
		var ev demoEvent
		if err := dc.dec.Decode(&ev); err != nil {
			return nil, dc.failed(err)
		}
		switch {
		case ev.Error != "":
			return nil, errors.New("clients: " + ev.Error)
		case ev.Type == "progress" && ev.Progress != nil:
			onProgress(*ev.Progress)
		case ev.Type == "result" && ev.Result != nil:
			return ev.Result, nil
		}
	}
}

// failed explains a broken conversation with the clients.
func (dc *demoClients) failed(err error) error {
	dc.stop()
	if ws := dc.cmd.ProcessState; ws != nil && !ws.Success() {
		return fmt.Errorf("the client process failed (%v)", ws)
	}
	return fmt.Errorf("talking to the client process: %w", err)
}

// stop ends the client process: end of input, then wait for it.
func (dc *demoClients) stop() {
	dc.stopOnce.Do(func() {
		dc.in.Close()
		dc.cmd.Wait()
	})
}

// progress renders one progress line per phase on w: rewritten in place
// when w is a terminal, printed every few seconds otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	http3 bool // count requests and show the 0-RTT rate
	label string
	total int64
	dur   time.Duration
	begin time.Time
	last  time.Time
	shown bool
}

func (p *progress) note(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) start(label string, total int64, dur time.Duration) {
	p.label, p.total, p.dur = label, total, dur
	p.begin, p.last, p.shown = time.Now(), time.Now(), false
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s: starting", p.label)
	}
}

func (p *progress) update(c demoCounts) {
	var of string
	unit := "handshakes"
	if p.http3 {
		unit = "requests"
	}
	if p.dur > 0 {
		of = fmt.Sprintf("%d %s, %.0fs/%.0fs", c.Done, unit, time.Since(p.begin).Seconds(), p.dur.Seconds())
	} else {
		of = fmt.Sprintf("%d/%d %s", c.Done, p.total, unit)
	}
	line := fmt.Sprintf("%s: %s, %s resumed", p.label, of, pct(c.Resumed, c.Offered))
	if p.http3 {
		line += fmt.Sprintf(", %s in 0-RTT", pct(c.Early, c.Offered))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) end(summary string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s: %s\n", p.label, summary)
		return
	}
	fmt.Fprintf(p.w, "%s: %s\n", p.label, summary)
}
