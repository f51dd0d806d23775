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
	json        bool
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
	fs.BoolVar(&o.json, "json", false, "write the results as JSON")
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
	case o.load.maxInFlight < 1:
		return nil, usagef("-max-in-flight %d: want 1 or more", o.load.maxInFlight)
	}
	return o, nil
}

// rcResult is the JSON output.
type rcResult struct {
	Members      int        `json:"members"`
	ArrivalRate  float64    `json:"arrival_rate"`
	ReturnProb   float64    `json:"return_probability"`
	ReturnAfter  string     `json:"return_after"`
	TLS13Share   float64    `json:"tls13_share"`
	Cert         string     `json:"cert"`
	DurationS    float64    `json:"duration_s"`
	DeadlineMS   float64    `json:"deadline_ms"`
	DetectAfterS float64    `json:"detect_after_s"`
	Killed       string     `json:"killed,omitempty"`
	KillAtS      float64    `json:"kill_at_s,omitempty"` // when the SIGKILL was sent
	Windows      []rcWindow `json:"windows"`             // "before" and "after" the kill (or "all")
	LoadAverage  float64    `json:"load_average"`        // of the machine, at the end
}

func runRealCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRCFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
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
		TLS13Share: o.load.tls13Share, Cert: string(o.cert), DurationS: o.load.duration.Seconds(),
		DeadlineMS: float64(o.deadline) / float64(time.Millisecond), DetectAfterS: o.detectAfter.Seconds(),
	}
	bal := &rcBalancer{deadAt: map[int]time.Time{}, detectAfter: o.detectAfter}
	for _, m := range ms {
		bal.addrs = append(bal.addrs, m.tlsAddr)
	}
	run := &rcLoadRun{l: &o.load, bal: bal}
	fmt.Fprintf(stderr, "real-cluster: %v of load, %.0f new clients/s, member %s killed at %v\n",
		o.load.duration, o.load.arrivalRate, ms[o.killMember].name, o.killAt)
	s0 := scrapeRC(ctx, ms)
	run.start = time.Now()
	var sKill map[string]rcScrape
	killedAt := time.Duration(-1)
	var bg sync.WaitGroup
	loadCtx, endLoad := context.WithCancel(ctx)
	defer endLoad()
	if o.killAt >= 0 {
		bg.Go(func() {
			if !sleepUntil(loadCtx, run.start.Add(o.killAt)) {
				return
			}
			// The kill waits for this scrape: bound it.
			sctx, cancel := context.WithTimeout(loadCtx, time.Second)
			sKill = scrapeRC(sctx, ms)
			cancel()
			m := ms[o.killMember]
			m.cmd.Process.Signal(syscall.SIGKILL)
			killedAt = time.Since(run.start)
			bal.killed(o.killMember, time.Now())
			<-m.exited
			fmt.Fprintf(stderr, "real-cluster: %.1fs: SIGKILL sent to member %s\n", killedAt.Seconds(), m.name)
		})
	}
	bg.Go(func() { rcProgress(loadCtx, run, stderr) })
	run.run(ctx)
	endLoad()
	bg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sEnd := scrapeRC(ctx, ms)
	end := time.Since(run.start)
	if killedAt >= 0 {
		res.Killed, res.KillAtS = ms[o.killMember].name, killedAt.Seconds()
		before, after := run.window("before", 0, killedAt), run.window("after", killedAt, end)
		before.measureMembers(s0, sKill, o.members)
		after.measureMembers(sKill, sEnd, o.members-1)
		res.Windows = []rcWindow{before, after}
	} else {
		all := run.window("all", 0, end)
		all.measureMembers(s0, sEnd, o.members)
		res.Windows = []rcWindow{all}
	}
	res.LoadAverage = loadAverage()
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printRCTable(stdout, &res)
	return nil
}

// measureMembers fills in what the members counted over the window, from
// scrapes at its start and end of want members; when a scrape missed one,
// it leaves them out.
func (w *rcWindow) measureMembers(start, end map[string]rcScrape, want int) {
	lookups, cpu, ok := scrapeDiff(start, end, want)
	if !ok || w.Handshakes == 0 {
		return
	}
	w.Lookups = lookups
	w.CPUPerHandshakeMS = cpu * 1000 / float64(w.Handshakes)
}

// rcProgress prints a line every 5 seconds until ctx ends.
func rcProgress(ctx context.Context, run *rcLoadRun, w io.Writer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(w, "real-cluster: %3.0fs: %d handshakes, %d failed, %s of returning clients resumed\n",
				time.Since(run.start).Seconds(), run.done.Load(), run.failed.Load(), pct(run.resumed.Load(), run.offered.Load()))
		}
	}
}

func printRCTable(w io.Writer, r *rcResult) {
	fmt.Fprintf(w, "\ntlsring real-cluster: %d members, %.0f new clients/s, return probability %.2f after %s, TLS 1.3 share %.2f, %s, deadline %vms\n",
		r.Members, r.ArrivalRate, r.ReturnProb, r.ReturnAfter, r.TLS13Share, r.Cert, r.DeadlineMS)
	if r.Killed != "" {
		fmt.Fprintf(w, "member %s got SIGKILL at %.1fs\n", r.Killed, r.KillAtS)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "window\thandshakes\tfailed\treturning\tresumed\tp50\tp90\tp99\tlookups hit/miss/timeout/error\tmember CPU/handshake\t")
	for _, x := range r.Windows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f%%\t%.2fms\t%.2fms\t%.2fms\t%.0f/%.0f/%.0f/%.0f\t%.2fms\t\n", x.Name, x.Handshakes, x.Failed, x.Returning,
			100*x.ResumptionRate, x.Latency.P50, x.Latency.P90, x.Latency.P99,
			x.Lookups["hit"], x.Lookups["miss"], x.Lookups["timeout"], x.Lookups["error"], x.CPUPerHandshakeMS)
	}
	tw.Flush()
}
