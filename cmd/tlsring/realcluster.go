// realcluster.go: `tlsring real-cluster` (hidden), the real side of the
// simulator's validation: it starts N `tlsring peer -tls-listen` processes
// on loopback, plays a client workload against their TLS servers through a
// random balancer (realcluster_load.go), SIGKILLs one member half way, and
// reports the resumption rate of returning clients and the handshake
// latency before and after the kill, as a table or JSON. The parameters
// are those of a simulator scenario; simulations/validate/compare.sh runs
// both and compares them.

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
)

// realClusterCmd is the hidden subcommand.
const realClusterCmd = "real-cluster"

// rcOptions are the flags of `tlsring real-cluster`.
type rcOptions struct {
	load        rcLoad
	members     int
	killAt      time.Duration // < 0: no kill
	killMember  int
	detectAfter time.Duration
	deadline    time.Duration
	cert        certgen.KeyType
	scale       float64
	sample      time.Duration
	jsonFile    string // "" = none, "-" = stdout instead of the table
	compare     string // the simulator's JSON report to compare with
	tol         rcTolerance
	bin         string
	dir         string
}

func parseRCFlags(args []string, stdout, stderr io.Writer) (*rcOptions, error) {
	fs := newFlagSet(realClusterCmd, `Starts -members 'tlsring peer -tls-listen' processes on loopback and plays a
client workload against their TLS servers: new clients arrive as a Poisson
process, each handshake goes to a random member through a balancer, and a
client returns with -return-probability after -return-after, offering its
session. One member gets SIGKILL at -kill-at. Prints the resumption rate of
returning clients and the client-measured handshake latency before and
after the kill. The simulator's validation (simulations/validate) runs it
with a scenario's parameters.`, stdout, stderr)
	o := &rcOptions{}
	scenario := fs.String("scenario", "", "a simulator scenario `file` (simulations/scenarios) to take the members, workload, balancer, deadline and crash from; flags given as well override it")
	fs.IntVar(&o.members, "members", 5, "member processes, at least 2")
	fs.Float64Var(&o.load.arrivalRate, "arrival-rate", 20, "new clients per second (Poisson)")
	fs.Float64Var(&o.load.returnProb, "return-probability", 0.8, "probability that a client returns after each visit")
	ret := fs.String("return-after", "exponential:5s", "time from a visit to the client's return: fixed:D, exponential:MEAN, uniform:MIN:MAX or lognormal:MEDIAN:P99")
	fs.Float64Var(&o.load.tls13Share, "tls13-share", 1, "share of clients that use TLS 1.3 (the others TLS 1.2)")
	cert := fs.String("cert", "ecdsa", "TLS server certificate type: ecdsa (P-256) or rsa (2048 bits)")
	fs.DurationVar(&o.load.duration, "duration", 60*time.Second, "how long new clients arrive and return")
	fs.DurationVar(&o.killAt, "kill-at", 0, "when to SIGKILL a member, from the start of the load (0 = half of -duration; negative = never)")
	fs.IntVar(&o.killMember, "kill-member", -1, "index of the member to kill (-1 = the last)")
	fs.DurationVar(&o.detectAfter, "detect-after", 0, "how long the balancer keeps sending clients to the killed member (they are refused and try another)")
	fs.DurationVar(&o.deadline, "deadline", 3*time.Millisecond, "bound on one session lookup of the members' TLS servers (-tls-deadline)")
	fs.Uint64Var(&o.load.seed, "seed", 1, "seed of the clients' random choices")
	fs.IntVar(&o.load.maxInFlight, "max-in-flight", 256, "bound on handshakes in flight; a visit beyond it starts late")
	fs.DurationVar(&o.sample, "sample-interval", 5*time.Second, "the step of the report's time series")
	fs.Float64Var(&o.scale, "scale", 1, "multiply -arrival-rate (as 'tlsring sim -scale' does)")
	fs.StringVar(&o.jsonFile, "json", "", "also write the report as JSON to this file (- for stdout, instead of the table)")
	fs.StringVar(&o.compare, "compare", "", "the JSON report of 'tlsring sim -json' for the same scenario: print both side by side and fail if they differ beyond the tolerance")
	fs.Float64Var(&o.tol.resumptionPP, "tolerance-pp", 2, "-compare: the most the resumption rates before and after the kill may differ, in percentage points")
	fs.Float64Var(&o.tol.latencyFactor, "latency-factor", 0, "-compare: the most real and simulated handshake p50 may differ, as a factor either way (0 = shown, not checked; p99 is always only shown)")
	fs.StringVar(&o.bin, "bin", "", "the tlsring binary to run the members with (default: this one)")
	fs.StringVar(&o.dir, "dir", "", "directory for certificates and member logs, kept afterwards (default: a temporary one, removed)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return nil, err
	}
	var err error
	if o.load.returnAfter, err = parseRCDist(*ret); err != nil {
		return nil, usagef("-return-after %q: %v", *ret, err)
	}
	switch certgen.KeyType(*cert) {
	case certgen.ECDSA, certgen.RSA:
		o.cert = certgen.KeyType(*cert)
	default:
		return nil, usagef("-cert %q: want ecdsa or rsa", *cert)
	}
	if *scenario != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := o.applyScenario(*scenario, set); err != nil {
			return nil, err
		}
	}
	if !(o.scale > 0 && o.scale <= 1000) {
		return nil, usagef("-scale %v: want more than 0, at most 1000", o.scale)
	}
	o.load.arrivalRate *= o.scale
	if o.killAt == 0 {
		o.killAt = o.load.duration / 2
	}
	if o.killMember == -1 {
		o.killMember = o.members - 1
	}
	switch {
	case o.members < 2 || o.members > 64:
		return nil, usagef("-members %d: want 2 to 64", o.members)
	case !(o.load.arrivalRate > 0 && o.load.arrivalRate <= 10000):
		return nil, usagef("-arrival-rate %v: want more than 0, at most 10000", o.load.arrivalRate)
	case !(o.load.returnProb >= 0 && o.load.returnProb < 1):
		return nil, usagef("-return-probability %v: want 0 or more, less than 1", o.load.returnProb)
	case !(o.load.tls13Share >= 0 && o.load.tls13Share <= 1):
		return nil, usagef("-tls13-share %v: want 0 to 1", o.load.tls13Share)
	case o.load.duration <= 0:
		return nil, usagef("-duration %v: want a positive duration", o.load.duration)
	case o.killAt >= o.load.duration:
		return nil, usagef("-kill-at %v: want less than -duration %v", o.killAt, o.load.duration)
	case o.killMember < 0 || o.killMember >= o.members:
		return nil, usagef("-kill-member %d: want 0 to %d", o.killMember, o.members-1)
	case o.detectAfter < 0 || o.deadline < 0:
		return nil, usagef("-detect-after and -deadline: want durations of 0 or more")
	case o.tol.resumptionPP < 0 || o.tol.latencyFactor < 0 || (o.tol.latencyFactor > 0 && o.tol.latencyFactor < 1):
		return nil, usagef("-tolerance-pp and -latency-factor: want 0 or more (a factor of 1 or more)")
	case o.sample <= 0:
		return nil, usagef("-sample-interval %v: want a positive duration", o.sample)
	case o.load.maxInFlight < 1:
		return nil, usagef("-max-in-flight %d: want 1 or more", o.load.maxInFlight)
	}
	return o, nil
}

// rcResult is the JSON output. Its fields split_at, strategies, before
// and after have the names and meanings of the simulator's report (package
// simulations, Report), so that the two compare field by field.
type rcResult struct {
	Members      int     `json:"members"`
	Duration     string  `json:"duration"`
	ArrivalRate  float64 `json:"arrival_rate"` // new clients per second
	ReturnProb   float64 `json:"return_probability"`
	ReturnAfter  string  `json:"return_after"`
	TLS13Share   float64 `json:"tls13_share"`
	Cert         string  `json:"cert"`
	DeadlineMS   float64 `json:"deadline_ms"`
	DetectAfterS float64 `json:"detect_after_s"`
	Killed       string  `json:"killed,omitempty"`
	// SplitAt is when the SIGKILL was sent, from the start of the load;
	// Before and After cover the visits begun before and after it.
	SplitAt     string      `json:"split_at,omitempty"`
	Strategies  []rcSummary `json:"strategies"` // the whole run
	Before      []rcSummary `json:"before,omitempty"`
	After       []rcSummary `json:"after,omitempty"`
	LoadAverage float64     `json:"load_average"` // of the machine, at the end
	// Series is the run in -sample-interval steps, by when visits began
	// (lookups and CPU left out).
	Series []rcSummary `json:"series"`
}

func runRealCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRCFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var sim *simReport
	if o.compare != "" {
		if sim, err = readSimReport(o.compare); err != nil {
			return err
		}
	}
	if o.bin == "" {
		if o.bin, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this executable to run the members: %w", err)
		}
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tlsring-real-cluster"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_, webCA, err := rcCerts(dir, o.cert)
	if err != nil {
		return err
	}
	o.load.pool = webCA.Pool()
	fmt.Fprintf(stderr, "real-cluster: starting %d members (tlsring peer -tls-listen) on loopback\n", o.members)
	ms, err := startRCMembers(ctx, o.bin, dir, o.members, o.deadline)
	if err != nil {
		return err
	}
	defer func() {
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Go(func() { m.stop(5 * time.Second) })
		}
		wg.Wait()
	}()
	res := rcResult{
		Members: o.members, ArrivalRate: o.load.arrivalRate, ReturnProb: o.load.returnProb, ReturnAfter: o.load.returnAfter.String(),
		TLS13Share: o.load.tls13Share, Cert: string(o.cert), Duration: o.load.duration.String(),
		DeadlineMS: float64(o.deadline) / float64(time.Millisecond), DetectAfterS: o.detectAfter.Seconds(),
	}
	bal := &rcBalancer{deadAt: map[int]time.Time{}, detectAfter: o.detectAfter}
	for _, m := range ms {
		bal.addrs = append(bal.addrs, m.tlsAddr)
	}
	run := &rcLoadRun{l: &o.load, bal: bal}
	kill := "no kill"
	if o.killAt >= 0 {
		kill = fmt.Sprintf("member %s killed at %v", ms[o.killMember].name, o.killAt)
	}
	fmt.Fprintf(stderr, "real-cluster: %v of load, %v new clients/s, %s\n", o.load.duration, o.load.arrivalRate, kill)
	s0 := scrapeRC(ctx, ms)
	run.start = time.Now()
	var sKill map[string]rcScrape
	killedAt := time.Duration(-1)
	var bg sync.WaitGroup
	loadCtx, endLoad := context.WithCancel(ctx)
	defer endLoad()
	if o.killAt >= 0 {
		bg.Go(func() {
			// The members' figures are split a second before the kill,
			// so that their scrape (bounded to that second) never delays
			// it: the lookups of the last second count as after.
			if !sleepUntil(loadCtx, run.start.Add(max(o.killAt-time.Second, 0))) {
				return
			}
			sctx, cancel := context.WithTimeout(loadCtx, time.Second)
			sKill = scrapeRC(sctx, ms)
			cancel()
			if !sleepUntil(loadCtx, run.start.Add(o.killAt)) {
				return
			}
			m := ms[o.killMember]
			m.cmd.Process.Signal(syscall.SIGKILL)
			killedAt = time.Since(run.start)
			bal.killed(o.killMember, time.Now())
			<-m.exited
			fmt.Fprintf(stderr, "real-cluster: %.1fs: SIGKILL sent to member %s\n", killedAt.Seconds(), m.name)
		})
	}
	var loads []float64 // the machine's load average, each second
	bg.Go(func() { loads = rcProgress(loadCtx, run, stderr) })
	run.run(ctx)
	endLoad()
	bg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sEnd := scrapeRC(ctx, ms)
	end := time.Since(run.start)
	all := run.summary(0, end)
	all.measureMembers(s0, sEnd, o.members, false)
	res.Strategies = []rcSummary{all}
	if killedAt >= 0 {
		res.Killed, res.SplitAt = ms[o.killMember].name, killedAt.String()
		before, after := run.summary(0, killedAt), run.summary(killedAt, end)
		before.measureMembers(s0, sKill, o.members, true)
		after.measureMembers(sKill, sEnd, o.members-1, true)
		res.Before, res.After = []rcSummary{before}, []rcSummary{after}
	}
	for t := time.Duration(0); t < end; t += o.sample {
		s := run.summary(t, min(t+o.sample, end))
		if i := int((t + o.sample) / time.Second); i > 0 && i <= len(loads) {
			s.LoadAverage = loads[i-1]
		}
		res.Series = append(res.Series, s)
	}
	res.LoadAverage = loadAverage()
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if o.jsonFile == "-" {
			_, err = stdout.Write(b)
		} else {
			err = os.WriteFile(o.jsonFile, b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	if o.jsonFile != "-" {
		printRCTable(stdout, &res)
	}
	if o.compare != "" {
		return compareRC(stdout, sim, &res, o.tol)
	}
	return nil
}

// measureMembers fills in what the members counted over the window, from
// scrapes at its start and end of want members; when a scrape missed one,
// it leaves them out. With exact, every member must have been scraped both
// times; else the members alive at the end will do (a killed member's CPU
// and lookups are then left out).
func (w *rcSummary) measureMembers(start, end map[string]rcScrape, want int, exact bool) {
	if !exact {
		want = min(want, len(end))
	}
	d, ok := scrapeDiff(start, end, want)
	if !ok || w.Handshakes == 0 || want == 0 {
		return
	}
	n := func(k string) *int64 { v := int64(d.lookups[k]); return &v }
	w.LookupHits, w.LookupMisses, w.LookupTimeouts, w.LookupErrors = n("hit"), n("miss"), n("timeout"), n("error")
	w.OtherLookups = int64(d.lookups["mismatch"] + d.lookups["malformed"] + d.lookups["corrupt"])
	w.LookupP50Us, w.LookupP99Us = 1e6*histQuantile(d.latency, .5), 1e6*histQuantile(d.latency, .99)
	w.CPUPerHandshakeUs = d.cpu * 1e6 / float64(w.Handshakes)
}

// rcProgress prints a line every 5 seconds until ctx ends, and returns
// the machine's load average read every second.
func rcProgress(ctx context.Context, run *rcLoadRun, w io.Writer) []float64 {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var loads []float64
	for {
		select {
		case <-ctx.Done():
			return loads
		case <-t.C:
			loads = append(loads, loadAverage())
			if len(loads)%5 == 0 {
				fmt.Fprintf(w, "real-cluster: %3.0fs: %d handshakes, %d failed, %s of returning clients resumed, load average %.1f\n",
					time.Since(run.start).Seconds(), run.done.Load(), run.failed.Load(), pct(run.resumed.Load(), run.offered.Load()), loads[len(loads)-1])
			}
		}
	}
}

func printRCTable(w io.Writer, r *rcResult) {
	fmt.Fprintf(w, "\ntlsring real-cluster: %d members, %v new clients/s, return probability %v after %s, TLS 1.3 share %v, %s, deadline %vms\n",
		r.Members, r.ArrivalRate, r.ReturnProb, r.ReturnAfter, r.TLS13Share, r.Cert, r.DeadlineMS)
	type row struct {
		name string
		s    rcSummary
	}
	rows := []row{{"all", r.Strategies[0]}}
	if r.Killed != "" {
		fmt.Fprintf(w, "member %s got SIGKILL at %s\n", r.Killed, r.SplitAt)
		rows = append(rows, row{"before", r.Before[0]}, row{"after", r.After[0]})
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\thandshakes\tfailed\tresumed/offered\tp50\tp90\tp99\tlookups hit/miss/timeout/error\tlookup p50/p99\tmember CPU/handshake\t")
	v := func(p *int64) string {
		if p == nil {
			return "?"
		}
		return fmt.Sprint(*p)
	}
	for _, x := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s/%s/%s/%s\t%s/%s\t%s\t\n", x.name, x.s.Handshakes, x.s.Failed, pct(x.s.Resumed, x.s.Offered),
			fmtDur(usDur(x.s.HandshakeP50Us)), fmtDur(usDur(x.s.HandshakeP90Us)), fmtDur(usDur(x.s.HandshakeP99Us)),
			v(x.s.LookupHits), v(x.s.LookupMisses), v(x.s.LookupTimeouts), v(x.s.LookupErrors),
			fmtDur(usDur(x.s.LookupP50Us)), fmtDur(usDur(x.s.LookupP99Us)), fmtDur(usDur(x.s.CPUPerHandshakeUs)))
	}
	tw.Flush()
}

func usDur(us float64) time.Duration { return time.Duration(us * float64(time.Microsecond)) }
