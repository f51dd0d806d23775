// realcluster_compare.go: `tlsring real-cluster -compare SIM.json`: the
// real cluster's figures next to the simulator's for the same scenario
// (the JSON of `tlsring sim -json`), before and after the kill, with the
// differences, and an error when the resumption rates differ by more than
// the tolerance (2 percentage points) or, if asked, the median handshake
// latency by more than a factor.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

// simReport is the part of the simulator's JSON report the comparison
// reads (package simulations, Report and Summary).
type simReport struct {
	Scenario string       `json:"scenario"`
	Scale    float64      `json:"scale"`
	Members  int          `json:"members"`
	SplitAt  string       `json:"split_at"`
	Before   []simSummary `json:"before"`
	After    []simSummary `json:"after"`
}

type simSummary struct {
	Strategy          string  `json:"strategy"`
	Handshakes        int64   `json:"handshakes"`
	Offered           int64   `json:"offered"`
	Resumed           int64   `json:"resumed"`
	ResumptionRate    float64 `json:"resumption_rate"`
	HandshakeP50Us    float64 `json:"handshake_p50_us"`
	HandshakeP99Us    float64 `json:"handshake_p99_us"`
	LookupP50Us       float64 `json:"lookup_p50_us"`
	LookupP99Us       float64 `json:"lookup_p99_us"`
	CPUPerHandshakeUs float64 `json:"cpu_per_handshake_us"`
}

// rcTolerance is what the comparison accepts.
type rcTolerance struct {
	resumptionPP  float64 // percentage points
	latencyFactor float64 // real / simulated handshake p50 within [1/f, f]; 0 = not checked
}

// readSimReport reads the simulator's JSON report.
func readSimReport(path string) (*simReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-compare: %w", err)
	}
	var r simReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("-compare %s: not the JSON of 'tlsring sim -json': %w", path, err)
	}
	return &r, nil
}

// strategy returns the summary of the tlsring strategy.
func simStrategy(ss []simSummary) (simSummary, bool) {
	for _, s := range ss {
		if s.Strategy == "tlsring" {
			return s, true
		}
	}
	return simSummary{}, false
}

// compareRC prints the comparison on w and returns an error naming every
// figure outside its tolerance.
func compareRC(w io.Writer, sim *simReport, real *rcResult, tol rcTolerance) error {
	if sim.Members != real.Members {
		return fmt.Errorf("-compare: the simulation ran %d members, the real cluster %d: not the same scenario", sim.Members, real.Members)
	}
	simB, okB := simStrategy(sim.Before)
	simA, okA := simStrategy(sim.After)
	if !okB || !okA || len(real.Before) != 1 || len(real.After) != 1 {
		return errors.New("-compare: want the tlsring strategy before and after a fault in the simulation, and a kill in the real run")
	}
	fmt.Fprintf(w, "\nsimulator (scenario %s, scale %v, fault at %s) vs real cluster (SIGKILL at %s); tolerance: resumption %v pp",
		sim.Scenario, sim.Scale, sim.SplitAt, real.SplitAt, tol.resumptionPP)
	if tol.latencyFactor > 0 {
		fmt.Fprintf(w, ", handshake p50 x%v", tol.latencyFactor)
	}
	fmt.Fprintf(w, "\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tfigure\tsimulator\treal\tdifference\t\t")
	var bad []string
	for _, p := range []struct {
		name string
		s    simSummary
		r    rcSummary
	}{{"before", simB, real.Before[0]}, {"after", simA, real.After[0]}} {
		diff := 100 * (p.r.ResumptionRate - p.s.ResumptionRate)
		verdict := "ok"
		if diff > tol.resumptionPP || diff < -tol.resumptionPP {
			verdict = "OUTSIDE"
			bad = append(bad, fmt.Sprintf("%s: resumption differs by %+.2f pp", p.name, diff))
		}
		fmt.Fprintf(tw, "%s\tresumed/offered\t%.2f%% of %d\t%.2f%% of %d\t%+.2f pp\t%s\t\n", p.name,
			100*p.s.ResumptionRate, p.s.Offered, 100*p.r.ResumptionRate, p.r.Offered, diff, verdict)
		for _, l := range []struct {
			name      string
			sim, real float64
			checked   bool
		}{
			{"handshake p50", p.s.HandshakeP50Us, p.r.HandshakeP50Us, true},
			{"handshake p99", p.s.HandshakeP99Us, p.r.HandshakeP99Us, false},
			{"lookup p50", p.s.LookupP50Us, p.r.LookupP50Us, false},
			{"lookup p99", p.s.LookupP99Us, p.r.LookupP99Us, false},
			{"member CPU/handshake", p.s.CPUPerHandshakeUs, p.r.CPUPerHandshakeUs, false},
		} {
			ratio, verdict := "-", ""
			if l.sim > 0 && l.real > 0 {
				x := l.real / l.sim
				ratio = fmt.Sprintf("x%.2f", x)
				if l.checked && tol.latencyFactor > 0 {
					verdict = "ok"
					if x > tol.latencyFactor || x < 1/tol.latencyFactor {
						verdict = "OUTSIDE"
						bad = append(bad, fmt.Sprintf("%s: %s real/simulated x%.2f", p.name, l.name, x))
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", p.name, l.name, fmtDur(usDur(l.sim)), fmtDur(usDur(l.real)), ratio, verdict)
		}
	}
	// The kill's own effect, after minus before in one run: a level the
	// machine's load sets alike in both windows cancels out.
	simD, realD := 100*(simA.ResumptionRate-simB.ResumptionRate), 100*(real.After[0].ResumptionRate-real.Before[0].ResumptionRate)
	fmt.Fprintf(tw, "kill\tafter - before\t%+.2f pp\t%+.2f pp\t%+.2f pp\t(shown)\t\n", simD, realD, realD-simD)
	tw.Flush()
	if len(bad) > 0 {
		return fmt.Errorf("the real cluster differs from the simulation beyond the tolerance: %v", bad)
	}
	fmt.Fprintln(w, "\nwithin tolerance")
	return nil
}
