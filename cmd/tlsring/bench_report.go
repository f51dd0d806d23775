// bench_report.go: what `tlsring bench` found: every round's figures,
// their medians, the ratios measured within each round against the
// project's targets, and the two renderings, a table and --json.

package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
)

// benchReport is the whole report; its JSON form is --json's output.
type benchReport struct {
	Command   string           `json:"command"`
	Machine   benchMachine     `json:"machine"`
	Params    benchParams      `json:"params"`
	ElapsedS  float64          `json:"elapsed_s"`
	Notices   []string         `json:"notices"`
	Cells     []*cellReport    `json:"cells"`
	Transport *transportReport `json:"transport,omitempty"`
	Targets   []targetReport   `json:"targets"`

	o *benchOptions
}

// benchMachine says where the run happened.
type benchMachine struct {
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	CPUModel   string  `json:"cpu_model,omitempty"`
	Go         string  `json:"go"`
	OS         string  `json:"os"`
	Arch       string  `json:"arch"`
	Commit     string  `json:"commit,omitempty"`
	Memcached  string  `json:"memcached,omitempty"`
	LoadBefore float64 `json:"load_before"` // 1-minute load average, -1 if unknown
	LoadAfter  float64 `json:"load_after"`
}

// benchParams are the options the run used.
type benchParams struct {
	Rounds              int      `json:"rounds"`
	DurationMs          float64  `json:"duration_ms,omitempty"`
	Handshakes          int64    `json:"handshakes,omitempty"`
	Clients             int      `json:"clients"`
	TLS                 []string `json:"tls"`
	Certs               []string `json:"certs"`
	InFlight            []int    `json:"in_flight"`
	Configs             []string `json:"configs"`
	DeadlineMs          float64  `json:"deadline_ms"` // 0: tlsglue's default
	TransportSamples    int      `json:"transport_samples,omitempty"`
	TransportDurationMs float64  `json:"transport_duration_ms,omitempty"`
	TransportConc       int      `json:"transport_conc,omitempty"`
	ValueBytes          int      `json:"value_bytes,omitempty"`
}

// cellReport is one cell: every configuration's rounds and medians, and
// the ratios between them.
type cellReport struct {
	TLS      string          `json:"tls"`
	Cert     string          `json:"cert"`
	InFlight int             `json:"in_flight"`
	Configs  []*configReport `json:"configs"`
	Ratios   []ratioReport   `json:"ratios"`

	cell benchCell
}

// configReport is one configuration in one cell.
type configReport struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Skipped     string        `json:"skipped,omitempty"`
	Median      *phaseResult  `json:"median,omitempty"` // each field's median over rounds
	Rounds      []phaseResult `json:"rounds"`
}

// phaseResult is one configuration's measurement in one cell and round.
type phaseResult struct {
	Handshakes int64 `json:"handshakes"` // completed
	Offered    int64 `json:"offered"`    // of which the client offered a session
	Resumed    int64 `json:"resumed"`    // of which resumed
	Errors     int64 `json:"errors"`     // failed handshakes
	// ResumedFraction is Resumed/Offered; null when nothing was offered.
	ResumedFraction float64 `json:"-"`
	// CPUus is cluster CPU per completed handshake, in µs: this process
	// (TLS servers, tlsglue, ring members) plus memcached where used.
	CPUus          float64 `json:"cpu_us_per_handshake"`
	MemcachedCPUus float64 `json:"memcached_cpu_us_per_handshake,omitempty"` // memcached's part of CPUus
	P50us          float64 `json:"p50_us"`                                   // TCP connect + TLS handshake, at the client
	P99us          float64 `json:"p99_us"`
	HandshakesPerS float64 `json:"handshakes_per_s"`
	LastErr        string  `json:"last_error,omitempty"`
}

// MarshalJSON writes ResumedFraction as null when nothing was offered.
func (p phaseResult) MarshalJSON() ([]byte, error) {
	type plain phaseResult // no MarshalJSON: no recursion
	out := struct {
		plain
		ResumedFraction *float64 `json:"resumed_fraction"`
	}{plain: plain(p)}
	if p.ResumedFraction >= 0 {
		f := p.ResumedFraction
		out.ResumedFraction = &f
	}
	return json.Marshal(out)
}

// ratioReport is the ratio of two configurations' (or paths') figures:
// the median of the ratios measured in each round.
type ratioReport struct {
	Name     string    `json:"name"` // "tlsring / ideal"
	Metric   string    `json:"metric"`
	Median   float64   `json:"median"`
	PerRound []float64 `json:"per_round"`
	Target   string    `json:"target,omitempty"` // "<= 1.15"
	Missed   *bool     `json:"missed,omitempty"` // set when there is a target
}

// transportReport is the transport rows.
type transportReport struct {
	ValueBytes int            `json:"value_bytes"`
	Conc       int            `json:"conc"`
	Paths      []*pathReport  `json:"paths"`
	Ratios     []ratioReport  `json:"ratios"`
	byName     map[string]int // index in Paths
}

// pathReport is one transport path.
type pathReport struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Skipped     string            `json:"skipped,omitempty"`
	Median      *transportResult  `json:"median,omitempty"`
	Rounds      []transportResult `json:"rounds"`
}

// targetReport is one of the project's targets and how this run did.
type targetReport struct {
	Name     string  `json:"name"`
	Where    string  `json:"where"`
	Target   string  `json:"target"`
	Ratio    float64 `json:"ratio"`
	Measured bool    `json:"measured"`
	Missed   bool    `json:"missed"`
}

// ratioDef is a ratio of two configurations' cluster CPU per handshake
// shown for every cell, with its target (if any) at a number in flight.
type ratioDef struct {
	num, den string
	target   func(inflight int) (op string, limit float64)
}

var cellRatios = []ratioDef{
	{cfgRing, cfgIdeal, func(n int) (string, float64) {
		switch {
		case n == 1:
			return "<=", 1.15
		case n >= 8:
			return "<=", 1.05
		}
		return "", 0
	}},
	{cfgRing, cfgMemcache, func(int) (string, float64) { return "<=", 0.90 }},
	{cfgSingle, cfgIdeal, nil},
	{cfgMemcache, cfgIdeal, nil},
	{cfgGo, cfgIdeal, nil},
	{cfgFull, cfgIdeal, nil},
}

func newBenchReport(o *benchOptions) *benchReport {
	r := &benchReport{o: o, Command: "tlsring bench " + strings.Join(o.args, " "), Notices: []string{}}
	r.Command = strings.TrimSpace(r.Command)
	r.Machine = benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, Commit: buildCommit(), LoadBefore: -1, LoadAfter: -1}
	p := &r.Params
	p.Rounds, p.Clients, p.Configs = o.rounds, o.clients, o.configs
	if o.handshakes > 0 {
		p.Handshakes = o.handshakes
	} else {
		p.DurationMs = float64(o.duration.Microseconds()) / 1e3
	}
	p.DeadlineMs = float64(o.deadline.Microseconds()) / 1e3
	for _, v := range o.versions {
		p.TLS = append(p.TLS, tlsName(v))
	}
	for _, c := range o.certs {
		p.Certs = append(p.Certs, string(c))
	}
	p.InFlight = o.inflight
	for _, c := range o.cells() {
		cr := &cellReport{TLS: tlsName(c.variant.version), Cert: string(c.variant.cert), InFlight: c.inflight, cell: c, Ratios: []ratioReport{}}
		for _, bc := range benchConfigs {
			if slices.Contains(o.configs, bc.name) {
				cr.Configs = append(cr.Configs, &configReport{Name: bc.name, Description: bc.desc, Rounds: []phaseResult{}})
			}
		}
		r.Cells = append(r.Cells, cr)
	}
	if o.transport {
		p.TransportSamples, p.TransportConc, p.ValueBytes = o.transportSamples, o.transportConc, o.valueSize
		p.TransportDurationMs = float64(o.transportDuration.Microseconds()) / 1e3
		t := &transportReport{ValueBytes: o.valueSize, Conc: o.transportConc, byName: map[string]int{}, Ratios: []ratioReport{}}
		for i, tp := range transportPaths {
			t.Paths = append(t.Paths, &pathReport{Name: tp.name, Description: tp.desc, Rounds: []transportResult{}})
			t.byName[tp.name] = i
		}
		r.Transport = t
	}
	return r
}

func tlsName(v uint16) string {
	if v == tls.VersionTLS12 {
		return "1.2"
	}
	return "1.3"
}

func (r *benchReport) cellReport(c benchCell) *cellReport {
	for _, cr := range r.Cells {
		if cr.cell == c {
			return cr
		}
	}
	return nil
}

func (cr *cellReport) config(name string) *configReport {
	for _, c := range cr.Configs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r *benchReport) addPhase(c benchCell, name string, _ int, res phaseResult) {
	cc := r.cellReport(c).config(name)
	cc.Rounds = append(cc.Rounds, res)
}

func (r *benchReport) addTransport(path string, res transportResult) {
	p := r.Transport.Paths[r.Transport.byName[path]]
	p.Rounds = append(p.Rounds, res)
}

func (r *benchReport) skip(name, why string) {
	for _, cr := range r.Cells {
		if c := cr.config(name); c != nil {
			c.Skipped = why
		}
	}
}

func (r *benchReport) skipTransport(path, why string) {
	r.Transport.Paths[r.Transport.byName[path]].Skipped = why
}

// finish computes the medians, the ratios and the targets.
func (r *benchReport) finish() {
	for _, cr := range r.Cells {
		for _, c := range cr.Configs {
			if len(c.Rounds) > 0 {
				c.Median = medianPhase(c.Rounds)
			}
		}
		for _, d := range cellRatios {
			num, den := cr.config(d.num), cr.config(d.den)
			if num == nil || den == nil {
				continue
			}
			rr := ratioOf(fmt.Sprintf("%s / %s", d.num, d.den), "cpu_us_per_handshake",
				pluck(num.Rounds, func(p phaseResult) float64 { return p.CPUus }),
				pluck(den.Rounds, func(p phaseResult) float64 { return p.CPUus }))
			if rr == nil {
				continue
			}
			if d.target != nil {
				if op, limit := d.target(cr.InFlight); op != "" {
					rr.setTarget(op, limit)
				}
			}
			cr.Ratios = append(cr.Ratios, *rr)
		}
	}
	if t := r.Transport; t != nil {
		for _, p := range t.Paths {
			if len(p.Rounds) > 0 {
				p.Median = medianTransport(p.Rounds)
			}
		}
		q, tcp, mc := t.Paths[t.byName[pathQUIC]], t.Paths[t.byName[pathTCP]], t.Paths[t.byName[pathMemcached]]
		p50 := func(x transportResult) float64 { return x.P50us }
		rate := func(x transportResult) float64 { return x.Rate }
		cpu := func(x transportResult) float64 { return x.CPUusOp }
		for _, d := range []struct {
			name, metric string
			a, b         *pathReport
			f            func(transportResult) float64
			op           string
			limit        float64
		}{
			{"quic / tcp", "p50_us", q, tcp, p50, "<=", 2.0},
			{"quic / memcached", "lookups_per_s", q, mc, rate, ">=", 1.5},
			{"quic / tcp", "lookups_per_s", q, tcp, rate, "", 0},
			{"quic / memcached", "p50_us", q, mc, p50, "", 0},
			{"quic / memcached", "cpu_us_per_lookup", q, mc, cpu, "", 0},
		} {
			rr := ratioOf(d.name, d.metric, pluck(d.a.Rounds, d.f), pluck(d.b.Rounds, d.f))
			if rr == nil {
				continue
			}
			if d.op != "" {
				rr.setTarget(d.op, d.limit)
			}
			t.Ratios = append(t.Ratios, *rr)
		}
	}
	r.Targets = []targetReport{}
	for _, cr := range r.Cells {
		if cr.TLS != "1.3" || cr.Cert != string(certgen.ECDSA) {
			continue // the targets are set for TLS 1.3 ECDSA, where resumption saves least
		}
		for _, rr := range cr.Ratios {
			if rr.Missed == nil {
				continue
			}
			name := "cluster CPU per handshake of returning clients, " + rr.Name
			r.Targets = append(r.Targets, targetReport{Name: name, Where: fmt.Sprintf("TLS 1.3 ECDSA, %d in flight", cr.InFlight),
				Target: rr.Target + "x", Ratio: rr.Median, Measured: true, Missed: *rr.Missed})
		}
	}
	if t := r.Transport; t != nil {
		for _, rr := range t.Ratios {
			if rr.Missed == nil {
				continue
			}
			name := "transport p50, " + rr.Name
			if rr.Metric == "lookups_per_s" {
				name = fmt.Sprintf("transport throughput at %d in flight, %s", t.Conc, rr.Name)
			}
			r.Targets = append(r.Targets, targetReport{Name: name, Where: fmt.Sprintf("%d-byte values, loopback", t.ValueBytes),
				Target: rr.Target + "x", Ratio: rr.Median, Measured: true, Missed: *rr.Missed})
		}
	}
}

func (rr *ratioReport) setTarget(op string, limit float64) {
	rr.Target = fmt.Sprintf("%s %.2f", op, limit)
	missed := rr.Median > limit
	if op == ">=" {
		missed = rr.Median < limit
	}
	rr.Missed = &missed
}

// ratioOf is the median over rounds of a[i]/b[i]; nil if no round has both.
func ratioOf(name, metric string, a, b []float64) *ratioReport {
	rr := &ratioReport{Name: name, Metric: metric, PerRound: []float64{}}
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rr.PerRound = append(rr.PerRound, a[i]/b[i])
		}
	}
	if len(rr.PerRound) == 0 {
		return nil
	}
	rr.Median = median(rr.PerRound)
	return rr
}

func pluck[T any](rs []T, f func(T) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// median of v (the mean of the middle two for an even count); NaN if empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianPhase(rs []phaseResult) *phaseResult {
	mi := func(f func(phaseResult) int64) int64 {
		return int64(math.Round(median(pluck(rs, func(p phaseResult) float64 { return float64(f(p)) }))))
	}
	mf := func(f func(phaseResult) float64) float64 { return median(pluck(rs, f)) }
	m := &phaseResult{
		Handshakes:     mi(func(p phaseResult) int64 { return p.Handshakes }),
		Offered:        mi(func(p phaseResult) int64 { return p.Offered }),
		Resumed:        mi(func(p phaseResult) int64 { return p.Resumed }),
		Errors:         mi(func(p phaseResult) int64 { return p.Errors }),
		CPUus:          mf(func(p phaseResult) float64 { return p.CPUus }),
		MemcachedCPUus: mf(func(p phaseResult) float64 { return p.MemcachedCPUus }),
		P50us:          mf(func(p phaseResult) float64 { return p.P50us }),
		P99us:          mf(func(p phaseResult) float64 { return p.P99us }),
		HandshakesPerS: mf(func(p phaseResult) float64 { return p.HandshakesPerS }),
	}
	var fr []float64
	for _, p := range rs {
		if p.ResumedFraction >= 0 {
			fr = append(fr, p.ResumedFraction)
		}
	}
	m.ResumedFraction = -1
	if len(fr) > 0 {
		m.ResumedFraction = median(fr)
	}
	return m
}

func medianTransport(rs []transportResult) *transportResult {
	return &transportResult{
		P50us:   median(pluck(rs, func(r transportResult) float64 { return r.P50us })),
		P99us:   median(pluck(rs, func(r transportResult) float64 { return r.P99us })),
		Rate:    median(pluck(rs, func(r transportResult) float64 { return r.Rate })),
		CPUusOp: median(pluck(rs, func(r transportResult) float64 { return r.CPUusOp })),
	}
}

// print writes the report as tables.
func (r *benchReport) print(w io.Writer) {
	o := r.o
	per := fmt.Sprintf("%v per run", o.duration)
	if o.handshakes > 0 {
		per = fmt.Sprintf("%d handshakes per run", o.handshakes)
	}
	m := r.Machine
	fmt.Fprintf(w, "\n%s\n", r.Command)
	fmt.Fprintf(w, "%d rounds, %s, %d clients, configurations interleaved; medians over rounds; %.0fs\n", o.rounds, per, o.clients, r.ElapsedS)
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d)", m.CPUs, m.GOMAXPROCS)
	if m.CPUModel != "" {
		fmt.Fprintf(w, " %s", m.CPUModel)
	}
	fmt.Fprintf(w, ", %s %s/%s, load %.2f before, %.2f after", m.Go, m.OS, m.Arch, m.LoadBefore, m.LoadAfter)
	if m.Commit != "" {
		fmt.Fprintf(w, ", commit %s", m.Commit)
	}
	if m.Memcached != "" {
		fmt.Fprintf(w, "; %s", m.Memcached)
	}
	fmt.Fprintln(w)
	for _, n := range r.Notices {
		fmt.Fprintf(w, "notice: %s\n", n)
	}

	fmt.Fprintf(w, "\nHandshakes\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cell\tconfiguration\thandshakes/run\tresumed [1]\tcluster CPU/handshake [2]\tof it memcached\tp50 [3]\tp99 [3]\t")
	for _, cr := range r.Cells {
		for i, c := range cr.Configs {
			cell := ""
			if i == 0 {
				cell = cr.cell.String()
			}
			if c.Skipped != "" || c.Median == nil {
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\t\t\t\t\t\n", cell, c.Name)
				continue
			}
			md := c.Median
			res := "-"
			if md.ResumedFraction >= 0 {
				res = fmt.Sprintf("%.1f%%", 100*md.ResumedFraction)
			}
			mc := ""
			if md.MemcachedCPUus > 0 {
				mc = fmtUS(md.MemcachedCPUus)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", cell, c.Name, md.Handshakes, res, fmtUS(md.CPUus), mc, fmtUS(md.P50us), fmtUS(md.P99us))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nRatios of cluster CPU per handshake (median of the per-round ratios; target, and \"missed\" where missed)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var names []string
	for _, d := range cellRatios {
		if slices.Contains(o.configs, d.num) && slices.Contains(o.configs, d.den) {
			names = append(names, d.num+" / "+d.den)
		}
	}
	fmt.Fprintf(tw, "cell\t%s\n", strings.Join(names, "\t"))
	for _, cr := range r.Cells {
		row := []string{cr.cell.String()}
		for _, n := range names {
			row = append(row, fmtRatio(findRatio(cr.Ratios, n, "")))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	if t := r.Transport; t != nil {
		fmt.Fprintf(w, "\nTransport: remote lookups of %d-byte values on loopback; p50/p99 one at a time, throughput at %d in flight\n", t.ValueBytes, t.Conc)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "path\tp50\tp99\tlookups/s\tCPU/lookup, both ends\t")
		for _, p := range t.Paths {
			if p.Skipped != "" || p.Median == nil {
				fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\n", p.Name)
				continue
			}
			md := p.Median
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t\n", p.Name, fmtUS(md.P50us), fmtUS(md.P99us), md.Rate, fmtUS(md.CPUusOp))
		}
		tw.Flush()
		for _, rr := range t.Ratios {
			fmt.Fprintf(w, "  %s %s: %s\n", rr.Name, rr.Metric, fmtRatio(&rr))
		}
	}

	fmt.Fprintf(w, "\nTargets\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		verdict := "met"
		if t.Missed {
			verdict = "missed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\n", t.Name, t.Where, t.Target, t.Ratio, verdict)
	}
	if len(r.Targets) == 0 {
		fmt.Fprintln(tw, "none measured: the targets are for TLS 1.3 ECDSA at 1 and 8 in flight, and the transport rows")
	}
	tw.Flush()
	fmt.Fprintf(w, `
[1] of the handshakes where the client offered a session; every client
    visited once before the first measured run, unmeasured.
[2] user+system CPU of this process (TLS servers, tlsglue, the 3 ring
    members), and for memcached rows memcached's (every thread's
    /proc/<pid>/task/*/schedstat), over the run until the servers closed
    every connection and queued session writes landed, divided by the
    handshakes completed. The clients run in a child process, not counted.
[3] TCP connect + TLS handshake as the client sees it.
`)
}

func findRatio(rs []ratioReport, name, metric string) *ratioReport {
	for i := range rs {
		if rs[i].Name == name && (metric == "" || rs[i].Metric == metric) {
			return &rs[i]
		}
	}
	return nil
}

func fmtRatio(rr *ratioReport) string {
	if rr == nil {
		return "-"
	}
	s := fmt.Sprintf("%.2fx", rr.Median)
	if rr.Missed != nil {
		if *rr.Missed {
			s += fmt.Sprintf(" (%s missed)", rr.Target)
		} else {
			s += fmt.Sprintf(" (%s)", rr.Target)
		}
	}
	return s
}

// fmtUS formats microseconds with 3 significant digits in a fitting unit.
func fmtUS(v float64) string {
	switch {
	case v <= 0 || math.IsNaN(v):
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fµs", v)
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 1e6:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.2fs", v/1e6)
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// buildCommit is the commit the binary was built from: the build's VCS
// stamp (go build), else what git says about the working directory (go
// run), else "".
func buildCommit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if rev != "" {
			return rev[:min(12, len(rev))] + dirty
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *phaseResult) UnmarshalJSON(b []byte) error {
	type plain phaseResult
	var in struct {
		plain
		ResumedFraction *float64 `json:"resumed_fraction"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*p = phaseResult(in.plain)
	p.ResumedFraction = -1
	if in.ResumedFraction != nil {
		p.ResumedFraction = *in.ResumedFraction
	}
	return nil
}

// loadBenchReport reads a report saved with -json-file, to print it again.
func loadBenchReport(path string) (*benchReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-report: %w", err)
	}
	r := &benchReport{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("-report %s: not a tlsring bench JSON report: %w", path, err)
	}
	p := r.Params
	if p.Rounds < 1 || len(r.Cells) == 0 && r.Transport == nil {
		return nil, fmt.Errorf("-report %s: not a tlsring bench JSON report (no rounds, cells or transport rows)", path)
	}
	r.o = &benchOptions{rounds: p.Rounds, duration: time.Duration(p.DurationMs * float64(time.Millisecond)),
		handshakes: p.Handshakes, clients: p.Clients, configs: p.Configs}
	for _, cr := range r.Cells {
		v := benchVariant{version: tls.VersionTLS13, cert: certgen.KeyType(cr.Cert)}
		if cr.TLS == "1.2" {
			v.version = tls.VersionTLS12
		}
		cr.cell = benchCell{variant: v, inflight: cr.InFlight}
	}
	if t := r.Transport; t != nil {
		t.byName = map[string]int{}
		for i, p := range t.Paths {
			t.byName[p.Name] = i
		}
	}
	return r, nil
}
