// output.go: a run's output folder: CSV time series, the summary as CSV
// and JSON, SVG plots and report.md embedding them.

package simulations

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// WriteDir writes the run's files into dir, creating it.
func (r *Result) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("simulations: %w", err)
	}
	files := map[string][]byte{}
	files["timeseries.csv"] = r.timeseriesCSV()
	files["summary.csv"] = r.summaryCSV()
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		return err
	}
	files["summary.json"] = js.Bytes()
	plots, err := r.plots()
	if err != nil {
		return err
	}
	for name, b := range plots {
		files[name] = b
	}
	files["report.md"] = r.reportMD()
	for _, name := range sortedKeys(files) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("simulations: %w", err)
		}
	}
	return nil
}

func f6(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

func (r *Result) timeseriesCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"strategy", "t_s", "handshakes", "offered", "resumed", "resumption_rate", "returning", "returning_resumed",
		"handshake_p50_us", "handshake_p99_us", "lookup_p50_us", "lookup_p99_us", "hits", "misses", "timeouts", "errors",
		"conn_failures", "cpu_us_per_handshake", "mem_mean_bytes", "mem_max_bytes"})
	for _, s := range r.Strategies {
		for _, p := range s.Series {
			c := p.C
			w.Write([]string{s.Name, f1(float64(p.T) / 1e9), i64(c.Handshakes), i64(c.Offered), i64(c.Resumed), f6(ratio(c.Resumed, c.Offered)),
				i64(c.Returning), i64(c.ReturnResume), f1(usf(p.HSP50)), f1(usf(p.HSP99)), f1(usf(p.LkP50)), f1(usf(p.LkP99)),
				i64(c.Hits), i64(c.Misses), i64(c.Timeouts), i64(c.Errors), i64(c.ConnFailures), f1(ratio(c.CPU, c.Handshakes) / 1e3),
				i64(p.MemMean), i64(p.MemMax)})
		}
	}
	w.Flush()
	return b.Bytes()
}

func (r *Result) summaryCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"strategy", "handshakes", "offered", "resumed", "resumption_rate", "returning_rate", "handshake_p50_us", "handshake_p99_us",
		"cpu_per_handshake_us", "hits", "misses", "timeouts", "errors", "lookup_p50_us", "lookup_p99_us", "conn_failures", "mem_mean_bytes", "mem_peak_bytes"})
	for _, s := range r.Report().Strategies {
		w.Write([]string{s.Strategy, i64(s.Handshakes), i64(s.Offered), i64(s.Resumed), f6(s.ResumptionRate), f6(s.ReturningRate),
			f1(s.HandshakeP50Us), f1(s.HandshakeP99Us), f1(s.CPUPerHandshakeUs), i64(s.LookupHits), i64(s.LookupMisses),
			i64(s.LookupTimeouts), i64(s.LookupErrors), f1(s.LookupP50Us), f1(s.LookupP99Us), i64(s.ConnFailures), i64(s.MemMeanBytes), i64(s.MemPeakBytes)})
	}
	w.Flush()
	return b.Bytes()
}

func (r *Result) reportMD() []byte {
	var b bytes.Buffer
	sc := r.Scenario
	fmt.Fprintf(&b, "# Simulation: %s\n\n", sc.Name)
	if sc.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", sc.Description)
	}
	fmt.Fprintf(&b, "%d members (%d racks, %d cores each), %v of virtual time, seed %d, scale %g, balancer `%s`; %d client visits, %d events.\n\n",
		sc.Members, sc.Racks, sc.Cores, sc.Duration.D(), r.Seed, r.Scale, sc.Balancer.Policy, r.Visits, r.Events)
	b.WriteString("| strategy | handshakes | resumed | p50 handshake | p99 handshake | CPU/handshake | lookups hit/miss/timeout/error | memory/member: mean at the end, peak |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	rep := r.Report()
	for _, s := range rep.Strategies {
		fmt.Fprintf(&b, "| %s | %d | %.2f%% | %s | %s | %s | %d/%d/%d/%d | %s, %s |\n", s.Strategy, s.Handshakes, 100*s.ResumptionRate,
			fmtUs(s.HandshakeP50Us), fmtUs(s.HandshakeP99Us), fmtUs(s.CPUPerHandshakeUs), s.LookupHits, s.LookupMisses, s.LookupTimeouts, s.LookupErrors,
			fmtBytes(s.MemMeanBytes), fmtBytes(s.MemPeakBytes))
	}
	b.WriteString("\nResumed: share of the handshakes where the client offered a ticket it still held unexpired. CPU: every member's, handshakes and store requests, per handshake.\n")
	if len(rep.Before) > 0 {
		fmt.Fprintf(&b, "\nBefore and after the first fault (%s at %s):\n\n| strategy | resumed before | resumed after | p99 before | p99 after |\n|---|---:|---:|---:|---:|\n", r.Faults[0].Text, rep.SplitAt)
		for i, s := range rep.Before {
			a := rep.After[i]
			fmt.Fprintf(&b, "| %s | %.2f%% | %.2f%% | %s | %s |\n", s.Strategy, 100*s.ResumptionRate, 100*a.ResumptionRate, fmtUs(s.HandshakeP99Us), fmtUs(a.HandshakeP99Us))
		}
	}
	if len(r.Faults) > 0 {
		b.WriteString("\nFaults (dashed lines in the plots):\n\n")
		for _, f := range r.Faults {
			fmt.Fprintf(&b, "- %v: %s\n", f.At, f.Text)
		}
	}
	b.WriteString("\n## Resumption rate\n\n![resumption](resumption.svg)\n\n## Handshake latency\n\n![handshake latency](handshake_latency.svg)\n\n## Lookup latency (tlsring)\n\n![lookup latency](lookup_latency.svg)\n\n## Store memory per member (tlsring)\n\n![memory](memory.svg)\n")
	b.WriteString("\nFiles: `timeseries.csv` (one row per strategy and sample interval), `summary.csv`, `summary.json`.\n")
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
