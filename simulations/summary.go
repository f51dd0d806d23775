// summary.go: a Result's figures per strategy, as a table, as JSON and
// split at the first fault (before/after).

package simulations

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is one strategy's figures over a run, or over part of it.
type Summary struct {
	Strategy          string  `json:"strategy"`
	Handshakes        int64   `json:"handshakes"`
	Offered           int64   `json:"offered"` // handshakes where the client offered an unexpired ticket
	Resumed           int64   `json:"resumed"`
	ResumptionRate    float64 `json:"resumption_rate"` // resumed / offered
	ReturningRate     float64 `json:"returning_rate"`  // resumed / returning clients (first connection of a visit)
	HandshakeP50Us    float64 `json:"handshake_p50_us"`
	HandshakeP99Us    float64 `json:"handshake_p99_us"`
	CPUPerHandshakeUs float64 `json:"cpu_per_handshake_us"` // every member's CPU / handshakes
	LookupHits        int64   `json:"lookup_hits"`
	LookupMisses      int64   `json:"lookup_misses"`
	LookupTimeouts    int64   `json:"lookup_timeouts"`
	LookupErrors      int64   `json:"lookup_errors"`
	LookupP50Us       float64 `json:"lookup_p50_us"`
	LookupP99Us       float64 `json:"lookup_p99_us"`
	ConnFailures      int64   `json:"conn_failures"`
	MemMeanBytes      int64   `json:"mem_mean_bytes"` // store bytes per live member at the end of the span, mean over members
	MemPeakBytes      int64   `json:"mem_peak_bytes"` // the most one member held at a sample
}

// Report is what `tlsring sim -json` writes.
type Report struct {
	Scenario string  `json:"scenario"`
	Seed     uint64  `json:"seed"`
	Scale    float64 `json:"scale"`
	Members  int     `json:"members"`
	Duration string  `json:"duration"`
	// SplitAt is the first fault's time (empty without faults); Before
	// and After cover the sample intervals ending by it and the rest.
	SplitAt    string      `json:"split_at,omitempty"`
	Strategies []Summary   `json:"strategies"`
	Before     []Summary   `json:"before,omitempty"`
	After      []Summary   `json:"after,omitempty"`
	Faults     []FaultMark `json:"faults,omitempty"`
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func usf(ns int64) float64 { return float64(ns) / 1e3 }

func summarize(name string, c counts, hs, lk *hist, memMean, memPeak int64) Summary {
	return Summary{
		Strategy: name, Handshakes: c.Handshakes, Offered: c.Offered, Resumed: c.Resumed,
		ResumptionRate: ratio(c.Resumed, c.Offered), ReturningRate: ratio(c.ReturnResume, c.Returning),
		HandshakeP50Us: usf(hs.quantile(.5)), HandshakeP99Us: usf(hs.quantile(.99)),
		CPUPerHandshakeUs: ratio(c.CPU, c.Handshakes) / 1e3,
		LookupHits:        c.Hits, LookupMisses: c.Misses, LookupTimeouts: c.Timeouts, LookupErrors: c.Errors,
		LookupP50Us: usf(lk.quantile(.5)), LookupP99Us: usf(lk.quantile(.99)),
		ConnFailures: c.ConnFailures, MemMeanBytes: memMean, MemPeakBytes: memPeak,
	}
}

// Report returns the run's figures.
func (r *Result) Report() Report {
	rep := Report{Scenario: r.Scenario.Name, Seed: r.Seed, Scale: r.Scale, Members: r.Scenario.Members, Duration: r.Scenario.Duration.D().String(), Faults: r.Faults}
	for _, s := range r.Strategies {
		rep.Strategies = append(rep.Strategies, summarize(s.Name, s.Total, &s.hsAll, &s.lkAll, s.MemMean, s.MemPeak))
	}
	if len(r.Faults) == 0 {
		return rep
	}
	split := int64(r.Faults[0].At)
	rep.SplitAt = r.Faults[0].At.String()
	for _, s := range r.Strategies {
		var before, after counts
		var hb, ha, lb, la hist
		var mb, ma, lastB, lastA int64
		for i, smp := range s.Series {
			if smp.T <= split {
				before.add(&smp.C)
				hb.merge(&s.hsSeries[i])
				lb.merge(&s.lkSeries[i])
				mb, lastB = max(mb, smp.MemMax), smp.MemMean
			} else {
				after.add(&smp.C)
				ha.merge(&s.hsSeries[i])
				la.merge(&s.lkSeries[i])
				ma, lastA = max(ma, smp.MemMax), smp.MemMean
			}
		}
		rep.Before = append(rep.Before, summarize(s.Name, before, &hb, &lb, lastB, mb))
		rep.After = append(rep.After, summarize(s.Name, after, &ha, &la, lastA, ma))
	}
	return rep
}

// WriteJSON writes the run's Report as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Report())
}

// WriteTable prints the summary table: one row per strategy.
func (r *Result) WriteTable(w io.Writer) error {
	rep := r.Report()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "strategy\thandshakes\tresumed\tp50 handshake\tp99 handshake\tCPU/handshake\tlookups hit/miss/timeout/error\tlookup p99\tmemory/member (end mean, peak)\t\n")
	for _, s := range rep.Strategies {
		lk, lkp, mem := "-", "-", "-"
		if s.LookupHits+s.LookupMisses+s.LookupTimeouts+s.LookupErrors > 0 {
			lk = fmt.Sprintf("%d/%d/%d/%d", s.LookupHits, s.LookupMisses, s.LookupTimeouts, s.LookupErrors)
			lkp = fmtUs(s.LookupP99Us)
		}
		if s.MemPeakBytes > 0 {
			mem = fmt.Sprintf("%s, %s", fmtBytes(s.MemMeanBytes), fmtBytes(s.MemPeakBytes))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Strategy, s.Handshakes, 100*s.ResumptionRate,
			fmtUs(s.HandshakeP50Us), fmtUs(s.HandshakeP99Us), fmtUs(s.CPUPerHandshakeUs), lk, lkp, mem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Before) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "resumed before / after %s (%s):", rep.SplitAt, r.Faults[0].Text)
		for i, s := range rep.Before {
			fmt.Fprintf(&b, "  %s %.1f%% / %.1f%%", s.Strategy, 100*s.ResumptionRate, 100*rep.After[i].ResumptionRate)
		}
		fmt.Fprintln(w, b.String())
	}
	return nil
}

func fmtUs(us float64) string {
	d := time.Duration(us * 1e3)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func fmtBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1fKiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%dB", b)
}
