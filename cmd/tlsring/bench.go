// bench.go: `tlsring bench`, the project's performance harness. It runs
// every configuration (full handshakes, crypto/tls's own tickets, an ideal
// in-process store, tlsring, tlsring single-use, a shared memcached) for
// each TLS version, certificate type and number of handshakes in flight,
// interleaved within each round, for several rounds, with the TLS clients
// in a child process; then the transport rows (QUIC against a TCP floor and
// memcached). It prints medians over rounds and ratios measured within one
// run against the project's targets, or all of it as JSON (--json).
//
// Flags, options and the round loop live here; the servers in
// bench_cluster.go, the clients in bench_client.go, the transport rows in
// bench_transport.go, the report in bench_report.go.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
)

// benchOptions are the bench's flags.
type benchOptions struct {
	rounds            int
	duration          time.Duration
	handshakes        int64
	clients           int
	versions          []uint16
	certs             []certgen.KeyType
	inflight          []int
	configs           []string
	memcached         string
	transport         bool
	transportSamples  int
	transportDuration time.Duration
	transportConc     int
	valueSize         int
	deadline          time.Duration
	json              bool
	jsonFile          string
	markdown          bool
	report            string
	quick             bool
	logLevel          string
	args              []string // the command line, for the report

	// clientCmd, if set, makes the client process's command (tests use
	// the test binary); nil: this executable with benchClientCmd.
	clientCmd func(ctx context.Context) (*exec.Cmd, error)
}

// variants lists the server setups the options ask for.
func (o *benchOptions) variants() []benchVariant {
	var out []benchVariant
	for _, v := range o.versions {
		for _, c := range o.certs {
			out = append(out, benchVariant{version: v, cert: c})
		}
	}
	return out
}

// benchCell is one row group of the report: a variant at a number of
// handshakes in flight.
type benchCell struct {
	variant  benchVariant
	inflight int
}

func (c benchCell) String() string { return fmt.Sprintf("%s, %d in flight", c.variant, c.inflight) }

func (o *benchOptions) cells() []benchCell {
	var out []benchCell
	for _, v := range o.variants() {
		for _, n := range o.inflight {
			out = append(out, benchCell{variant: v, inflight: n})
		}
	}
	return out
}

const benchSynopsis = `Measures, in one run, what a resumed TLS handshake costs the whole cluster
with tlsring and with the alternatives, and how the transport compares with
a bare TCP floor and memcached. Configurations:
  full            full handshakes: session tickets disabled
  go-tickets      crypto/tls's own tickets on one server
  ideal           3 servers, tlsglue over one shared in-process map
  tlsring         3 servers, each with its own member of a 3-member ring
  tlsring-single  as tlsring, with SingleUse
  memcached       3 servers, tlsglue over one shared memcached (TCP)
Each round runs every configuration once for each TLS version, certificate
type and number of handshakes in flight, in a rotating order, then the
transport rows; the report gives medians over rounds and the median of the
per-round ratios, with the targets and "missed" where one is missed.

The TLS clients run in a child process (this binary, re-executed) behind a
random load balancer; each of -clients clients returns with the session it
got last time. Cluster CPU is this process's (TLS servers, ring members,
tlsglue) plus, for memcached rows, memcached's, never the clients'.
memcached rows need Debian's memcached in PATH; the bench starts it and
skips those rows with a notice when it is missing.

A default run takes about 3 minutes on 2 cores; --quick about 20 seconds.`

func parseBenchFlags(args []string, stdout, stderr io.Writer) (*benchOptions, error) {
	fs := newFlagSet("bench", benchSynopsis, stdout, stderr)
	o := &benchOptions{args: args}
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; every configuration runs once per round and cell")
	fs.DurationVar(&o.duration, "duration", 500*time.Millisecond, "length of each measured run (one configuration, one cell, one round)")
	fs.Int64Var(&o.handshakes, "handshakes", 0, "count this many handshakes per measured run instead of running for -duration")
	fs.IntVar(&o.clients, "clients", 64, "TLS clients, each with its own session")
	tlsList := fs.String("tls", "1.3,1.2", "TLS versions, comma-separated: 1.3, 1.2")
	certList := fs.String("cert", "ecdsa,rsa", "server certificate types, comma-separated: ecdsa (P-256), rsa (2048 bits)")
	inflightList := fs.String("inflight", "1,8", "handshakes in flight, comma-separated")
	configList := fs.String("configs", strings.Join(benchConfigNames(), ","), "configurations to run, comma-separated")
	fs.StringVar(&o.memcached, "memcached", "memcached", `memcached binary for the memcached rows ("off": skip them)`)
	fs.BoolVar(&o.transport, "transport", true, "run the transport rows (QUIC, TCP floor, memcached)")
	fs.IntVar(&o.transportSamples, "transport-samples", 5000, "transport: lookups timed one at a time, per path and round")
	fs.DurationVar(&o.transportDuration, "transport-duration", time.Second, "transport: length of each throughput run")
	fs.IntVar(&o.transportConc, "transport-conc", 64, "transport: lookups in flight in the throughput run")
	fs.IntVar(&o.valueSize, "value", 1024, "transport: value size in bytes")
	fs.DurationVar(&o.deadline, "deadline", 0, "tlsglue.Options.Deadline of every tlsglue configuration (0: tlsglue's default)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout instead of tables (progress stays on stderr)")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the report as JSON to this file")
	fs.BoolVar(&o.markdown, "markdown", false, "print the report as Markdown tables instead (as docs/benchmarks.md quotes them)")
	fs.StringVar(&o.report, "report", "", "run nothing: print the report saved in this -json-file (as tables, or with -markdown)")
	fs.BoolVar(&o.quick, "quick", false, "a short run: 3 rounds of 200ms, TLS 1.3 ECDSA only, shorter transport rows (flags given explicitly win)")
	fs.StringVar(&o.logLevel, "log-level", "error", "log level of the members and tlsglue: debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.quick {
		quick := map[string]string{"rounds": "3", "duration": "200ms", "tls": "1.3", "cert": "ecdsa",
			"transport-samples": "2000", "transport-duration": "300ms"}
		for name, v := range quick {
			if !given[name] {
				fs.Set(name, v)
			}
		}
	}

	var err error
	if o.versions, err = parseList(*tlsList, "-tls", func(s string) (uint16, error) {
		switch s {
		case "1.3":
			return tls.VersionTLS13, nil
		case "1.2":
			return tls.VersionTLS12, nil
		}
		return 0, errors.New("want 1.3 or 1.2")
	}); err != nil {
		return nil, err
	}
	if o.certs, err = parseList(*certList, "-cert", func(s string) (certgen.KeyType, error) {
		switch kt := certgen.KeyType(s); kt {
		case certgen.ECDSA, certgen.RSA:
			return kt, nil
		}
		return "", errors.New("want ecdsa or rsa")
	}); err != nil {
		return nil, err
	}
	if o.inflight, err = parseList(*inflightList, "-inflight", func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 256 {
			return 0, errors.New("want a number from 1 to 256")
		}
		return n, nil
	}); err != nil {
		return nil, err
	}
	if o.configs, err = parseList(*configList, "-configs", func(s string) (string, error) {
		if !slices.Contains(benchConfigNames(), s) {
			return "", fmt.Errorf("want some of %s", strings.Join(benchConfigNames(), ","))
		}
		return s, nil
	}); err != nil {
		return nil, err
	}
	// The report's order, whatever the flag's.
	o.configs = slices.DeleteFunc(benchConfigNames(), func(s string) bool { return !slices.Contains(o.configs, s) })
	switch {
	case o.rounds < 1:
		return nil, usagef("-rounds %d: want at least 1", o.rounds)
	case o.handshakes < 0:
		return nil, usagef("-handshakes %d: want 0 (use -duration) or more", o.handshakes)
	case o.handshakes == 0 && o.duration <= 0:
		return nil, usagef("-duration %v: want a positive duration (or set -handshakes)", o.duration)
	case o.clients < 1:
		return nil, usagef("-clients %d: want at least 1", o.clients)
	case o.transportSamples < 1:
		return nil, usagef("-transport-samples %d: want at least 1", o.transportSamples)
	case o.transportDuration <= 0:
		return nil, usagef("-transport-duration %v: want a positive duration", o.transportDuration)
	case o.transportConc < 1 || o.transportConc > 4096:
		return nil, usagef("-transport-conc %d: want 1 to 4096", o.transportConc)
	case o.valueSize < 1 || o.valueSize > 512<<10:
		return nil, usagef("-value %d: want 1 to 524288 bytes", o.valueSize)
	case o.deadline < 0:
		return nil, usagef("-deadline %v: want a positive duration", o.deadline)
	}
	return o, nil
}

// parseList parses a comma-separated flag value, dropping repeats.
func parseList[T comparable](s, flagName string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, usagef("%s %q: %v", flagName, f, err)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, usagef("%s %q: empty", flagName, s)
	}
	return out, nil
}

func benchConfigNames() []string {
	var out []string
	for _, c := range benchConfigs {
		out = append(out, c.name)
	}
	return out
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	if o.report != "" {
		rep, err := loadBenchReport(o.report)
		if err != nil {
			return err
		}
		if o.markdown {
			rep.printMarkdown(stdout)
		} else {
			rep.print(stdout)
		}
		return nil
	}
	return benchMain(ctx, o, stdout, stderr)
}

// benchMain runs the bench o describes and writes the report to stdout.
func benchMain(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := newLogger(stderr, o.logLevel, "text")
	if err != nil {
		return err
	}
	if o.jsonFile != "" { // fail now rather than after the run
		if err := os.WriteFile(o.jsonFile, nil, 0o644); err != nil {
			return fmt.Errorf("-json-file: %w", err)
		}
	}
	if _, ok := processCPU(); !ok {
		return errors.New("bench: this platform does not report the process's CPU time (getrusage)")
	}
	rep := newBenchReport(o)
	notice := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Notices = append(rep.Notices, msg)
		fmt.Fprintln(stderr, "notice:", msg)
	}
	fmt.Fprintf(stderr, "tlsring bench: %d rounds, %d cells, %d configurations; starting the servers\n", o.rounds, len(o.cells()), len(o.configs))
	cl, err := startBenchCluster(ctx, o, log, notice)
	if err != nil {
		return err
	}
	defer cl.close()
	if cl.mc != nil {
		rep.Machine.Memcached = "memcached " + cl.mc.version
	}
	client, err := startBenchClient(ctx, o, cl.webCA, stderr)
	if err != nil {
		return err
	}
	defer client.stop()
	var tb *transportBench
	paths := []string{pathQUIC, pathTCP}
	if o.transport {
		if cl.mc != nil {
			paths = append(paths, pathMemcached)
		} else {
			notice("no memcached: the transport rows have no memcached path")
		}
		tb = newTransportBench(o, cl.memberTLS, cl.mc, log)
	}
	rep.Machine.LoadBefore = loadAverage()

	b := &benchRun{o: o, cl: cl, client: client, warmed: map[string]bool{}}
	start := time.Now()
	for round := range o.rounds {
		for ci, cell := range o.cells() {
			names := rotate(o.configs, round+ci)
			var line []string
			for _, name := range names {
				bc := cl.configs[name]
				if bc.skipped != "" {
					continue
				}
				res, err := b.phase(ctx, cell, bc)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round+1, cell, name, err)
				}
				rep.addPhase(cell, name, round, res)
				line = append(line, fmt.Sprintf("%s %.0fµs", name, res.CPUus))
			}
			fmt.Fprintf(stderr, "round %d/%d  %-27s %s\n", round+1, o.rounds, cell.String()+":", strings.Join(line, "  "))
		}
		if tb != nil {
			var line []string
			for _, p := range rotate(paths, round) {
				r, err := tb.measure(ctx, p)
				if err != nil {
					return fmt.Errorf("round %d, transport: %w", round+1, err)
				}
				rep.addTransport(p, r)
				line = append(line, fmt.Sprintf("%s p50 %.1fµs %.0f/s", p, r.P50us, r.Rate))
			}
			fmt.Fprintf(stderr, "round %d/%d  %-27s %s\n", round+1, o.rounds, "transport:", strings.Join(line, "  "))
		}
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.ElapsedS = time.Since(start).Seconds()
	for name, bc := range cl.configs {
		if bc.skipped != "" {
			rep.skip(name, bc.skipped)
		}
	}
	if o.transport && cl.mc == nil {
		rep.skipTransport(pathMemcached, "memcached is not running")
	}
	rep.finish()
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if o.jsonFile != "" {
		if err := os.WriteFile(o.jsonFile, js, 0o644); err != nil {
			return fmt.Errorf("-json-file: %w", err)
		}
	}
	switch {
	case o.json:
		_, err := stdout.Write(js)
		return err
	case o.markdown:
		rep.printMarkdown(stdout)
	default:
		rep.print(stdout)
	}
	return nil
}

// rotate returns s rotated left by k.
func rotate[T any](s []T, k int) []T {
	if len(s) == 0 {
		return nil
	}
	k %= len(s)
	return append(slices.Clone(s[k:]), s[:k]...)
}

// benchRun is the state of one run's handshake phases.
type benchRun struct {
	o      *benchOptions
	cl     *benchCluster
	client *benchClientProc
	warmed map[string]bool // client sets that hold a session
}

// phase measures one configuration in one cell: the clients' handshakes
// against its servers, and the cluster CPU they cost.
func (b *benchRun) phase(ctx context.Context, cell benchCell, bc *benchConfig) (phaseResult, error) {
	v := cell.variant
	servers := make([]string, len(bc.servers[v]))
	for i, s := range bc.servers[v] {
		servers[i] = s.addr()
	}
	req := benchRequest{Type: "run", Sessions: bc.name + "/" + v.String(), Clients: b.o.clients,
		TLSVersion: v.version, Servers: servers, InFlight: cell.inflight}
	if bc.name != cfgFull && !b.warmed[req.Sessions] {
		// Fresh clients: one full handshake each, not measured, so that
		// every measured handshake is by a returning client.
		w := req
		w.Warmup, w.InFlight = true, 4
		served0 := bc.served(v)
		res, err := b.client.run(ctx, w)
		if err != nil {
			return phaseResult{}, err
		}
		if err := bc.settle(ctx, v, served0+res.Dials); err != nil {
			return phaseResult{}, err
		}
		b.warmed[req.Sessions] = true
	}
	req.Handshakes, req.Duration = b.o.handshakes, b.o.duration
	if b.o.handshakes > 0 {
		req.Duration = 0
	}

	runtime.GC() // the garbage of what ran before is not this phase's
	served0 := bc.served(v)
	cpu0, _ := processCPU()
	var mc0 time.Duration
	if bc.memcached {
		var err error
		if mc0, err = otherProcessCPU(b.cl.mc.pid()); err != nil {
			return phaseResult{}, err
		}
	}
	res, err := b.client.run(ctx, req)
	if err != nil {
		return phaseResult{}, err
	}
	if err := bc.settle(ctx, v, served0+res.Dials); err != nil {
		return phaseResult{}, err
	}
	cpu1, _ := processCPU()
	var mc time.Duration
	if bc.memcached {
		mc1, err := otherProcessCPU(b.cl.mc.pid())
		if err != nil {
			return phaseResult{}, err
		}
		mc = mc1 - mc0
	}
	if res.Done == 0 {
		return phaseResult{}, fmt.Errorf("no handshake succeeded (%d failed; last error: %s)", res.Errors, res.LastErr)
	}
	n := float64(res.Done)
	pr := phaseResult{
		Handshakes:      res.Done,
		Offered:         res.Offered,
		Resumed:         res.Resumed,
		Errors:          res.Errors,
		CPUus:           us(cpu1-cpu0+mc) / n,
		MemcachedCPUus:  us(mc) / n,
		P50us:           us(res.P50),
		P99us:           us(res.P99),
		HandshakesPerS:  n / res.Elapsed.Seconds(),
		ResumedFraction: -1,
	}
	if res.Offered > 0 {
		pr.ResumedFraction = float64(res.Resumed) / float64(res.Offered)
	}
	if res.Errors > 0 {
		pr.LastErr = res.LastErr
	}
	return pr, nil
}

// benchClientProc is the child process running the TLS clients.
type benchClientProc struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	enc      *json.Encoder
	lines    *bufio.Scanner
	stderr   *lockedBuffer
	stopOnce sync.Once
}

// lockedBuffer keeps the tail of the client's stderr, for errors.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 64<<10 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.buf.String())
}

func startBenchClient(ctx context.Context, o *benchOptions, webCA *certgen.CA, stderr io.Writer) (*benchClientProc, error) {
	var cmd *exec.Cmd
	if o.clientCmd != nil {
		var err error
		if cmd, err = o.clientCmd(ctx); err != nil {
			return nil, err
		}
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this executable to run the clients: %w", err)
		}
		cmd = exec.CommandContext(ctx, exe, benchClientCmd)
	}
	cmd.SysProcAttr = childProcAttr()
	errBuf := &lockedBuffer{}
	cmd.Stderr = errBuf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the client process: %w", err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	cp := &benchClientProc{cmd: cmd, in: in, enc: json.NewEncoder(in), lines: sc, stderr: errBuf}
	if err := cp.enc.Encode(benchRequest{Type: "setup", CAPEM: string(certgen.CertPEM(webCA.Cert)), ServerName: "localhost"}); err != nil {
		cp.stop()
		return nil, cp.failed(err)
	}
	return cp, nil
}

// run sends req and waits for its result.
func (cp *benchClientProc) run(ctx context.Context, req benchRequest) (*benchResult, error) {
	if err := cp.enc.Encode(req); err != nil {
		return nil, cp.failed(err)
	}
	for cp.lines.Scan() {
		line := cp.lines.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue // not ours: a test binary's own output
		}
		var res benchResult
		if err := json.Unmarshal(line, &res); err != nil {
			return nil, cp.failed(fmt.Errorf("bad line %q: %w", line, err))
		}
		if res.Error != "" {
			return nil, fmt.Errorf("client process: %s", res.Error)
		}
		return &res, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err := cp.lines.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, cp.failed(err)
}

// failed explains a broken conversation with the client process.
func (cp *benchClientProc) failed(err error) error {
	cp.stop()
	msg := fmt.Sprintf("talking to the client process: %v", err)
	if ws := cp.cmd.ProcessState; ws != nil && !ws.Success() {
		msg = fmt.Sprintf("the client process failed (%v)", ws)
	}
	if s := cp.stderr.String(); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// stop ends the client process: end of input, then wait for it.
func (cp *benchClientProc) stop() {
	cp.stopOnce.Do(func() {
		cp.in.Close()
		done := make(chan struct{})
		go func() { cp.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cp.cmd.Process.Kill()
			<-done
		}
	})
}

// loadAverage is the 1-minute load average, or -1.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
