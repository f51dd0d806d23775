// realcluster_test.go: `tlsring real-cluster`: its distributions and flags,
// and a short run against real member processes.

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRCDist(t *testing.T) {
	for _, bad := range []string{"", "exponential", "exponential:0s", "exponential:-1s", "fixed:x", "uniform:2s", "uniform:3s:2s", "lognormal:1s:500ms", "normal:1s", "fixed:1s:2s"} {
		if _, err := parseRCDist(bad); err == nil {
			t.Errorf("parseRCDist(%q) accepted", bad)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	draw := func(spec string) []time.Duration {
		d, err := parseRCDist(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if d.String() != spec {
			t.Errorf("%s prints as %s", spec, d)
		}
		out := make([]time.Duration, 40000)
		for i := range out {
			out[i] = d.sample(rng)
		}
		slices.Sort(out)
		return out
	}
	near := func(what string, got, want time.Duration) {
		if r := float64(got) / float64(want); r < 0.95 || r > 1.05 {
			t.Errorf("%s: %v, want %v within 5%%", what, got, want)
		}
	}
	mean := func(ds []time.Duration) time.Duration {
		var s time.Duration
		for _, d := range ds {
			s += d
		}
		return s / time.Duration(len(ds))
	}
	if ds := draw("fixed:2s"); ds[0] != 2*time.Second || ds[len(ds)-1] != 2*time.Second {
		t.Errorf("fixed:2s drew %v to %v", ds[0], ds[len(ds)-1])
	}
	near("exponential:3s mean", mean(draw("exponential:3s")), 3*time.Second)
	ds := draw("uniform:1s:3s")
	near("uniform:1s:3s mean", mean(ds), 2*time.Second)
	if ds[0] < time.Second || ds[len(ds)-1] > 3*time.Second {
		t.Errorf("uniform:1s:3s drew %v to %v", ds[0], ds[len(ds)-1])
	}
	ds = draw("lognormal:1s:10s")
	near("lognormal:1s:10s median", ds[len(ds)/2], time.Second)
	if p99 := ds[len(ds)*99/100]; p99 < 9*time.Second || p99 > 11*time.Second {
		t.Errorf("lognormal:1s:10s p99 %v, want about 10s", p99)
	}
}

func TestRCFlags(t *testing.T) {
	parse := func(args ...string) (*rcOptions, error) {
		var out, errs bytes.Buffer
		return parseRCFlags(args, &out, &errs)
	}
	o, err := parse("-duration", "40s")
	if err != nil {
		t.Fatal(err)
	}
	if o.killAt != 20*time.Second || o.killMember != 4 || o.members != 5 {
		t.Errorf("defaults: kill at %v, member %d of %d; want 20s, 4 of 5", o.killAt, o.killMember, o.members)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-members", "1"}, "-members 1: want 2 to 64"},
		{[]string{"-return-probability", "1"}, "-return-probability 1: want 0 or more, less than 1"},
		{[]string{"-return-after", "poisson:1s"}, `-return-after "poisson:1s": want fixed:D`},
		{[]string{"-duration", "10s", "-kill-at", "10s"}, "-kill-at 10s: want less than -duration 10s"},
		{[]string{"-members", "3", "-kill-member", "3"}, "-kill-member 3: want 0 to 2"},
		{[]string{"-arrival-rate", "0"}, "-arrival-rate 0: want more than 0"},
		{[]string{"-cert", "dsa"}, `-cert "dsa": want ecdsa or rsa`},
	} {
		if _, err := parse(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestRealCluster runs the driver at a small size: 3 member processes, a
// member killed half way, the balancer noticing only 2 s later.
func TestRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := tlsringBinary(t)
	// A generous lookup deadline: the test checks that sessions resume
	// across members and survive the kill, not how fast, on a loaded
	// machine (and under -race).
	cmd := exec.Command(bin, realClusterCmd, "-members", "3", "-duration", "10s", "-arrival-rate", "10",
		"-return-probability", "0.7", "-return-after", "fixed:500ms", "-deadline", "2s", "-detect-after", "2s", "-json", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("real-cluster: %v\n%s", err, stderr.String())
	}
	var res rcResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if len(res.Before) != 1 || len(res.After) != 1 || res.Killed == "" {
		t.Fatalf("before %d, after %d, killed %q; want a member killed, its before and after", len(res.Before), len(res.After), res.Killed)
	}
	if at, err := time.ParseDuration(res.SplitAt); err != nil || at < 5*time.Second || at > 8*time.Second {
		t.Errorf("killed at %s, want 5s (up to 3s late on a loaded machine)", res.SplitAt)
	}
	before, after := res.Before[0], res.After[0]
	for _, w := range []rcSummary{before, after} {
		// Each window has about 10/s x 5 s x 0.7/0.3 returns.
		if w.Returning < 20 || w.Offered < w.Returning*9/10 || w.ResumptionRate < 0.9 || w.HandshakeP50Us <= 0 || w.HandshakeP99Us < w.HandshakeP50Us {
			t.Errorf("%.1fs to %.1fs: %d returning, %d offered, %.1f%% resumed, handshake p50 %vus p99 %vus; want 20 or more returning, 90%% resumed",
				w.FromS, w.ToS, w.Returning, w.Offered, 100*w.ResumptionRate, w.HandshakeP50Us, w.HandshakeP99Us)
		}
		// The members' counters are scraped around the kill, not at it:
		// they need only show the lookups were made.
		if w.LookupHits != nil && *w.LookupHits == 0 {
			t.Errorf("%.1fs to %.1fs: the servers counted no lookup hit", w.FromS, w.ToS)
		}
	}
	if before.ConnFailures != 0 || after.ConnFailures == 0 || after.Failed > after.Handshakes/10 {
		t.Errorf("refused connections: %d before the kill, %d after; want 0 and some (the balancer noticed 2 s late); failed after: %d of %d",
			before.ConnFailures, after.ConnFailures, after.Failed, after.Handshakes)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s\nresult:\n%s", stderr.String(), out)
	}
}

func TestRCMetrics(t *testing.T) {
	body := `# HELP x
process_cpu_seconds_total 1.5
tlsring_tlsglue_lookups_total{result="hit"} 90
tlsring_tlsglue_lookups_total{result="timeout"} 10
tlsring_tlsglue_lookup_duration_seconds_bucket{le="0.001"} 50
tlsring_tlsglue_lookup_duration_seconds_bucket{le="0.002"} 90
tlsring_tlsglue_lookup_duration_seconds_bucket{le="+Inf"} 100
`
	a := map[string]rcScrape{"m": {lookups: map[string]float64{}, latency: map[float64]float64{}}, "gone": parseRCMetrics(body)}
	b := map[string]rcScrape{"m": parseRCMetrics(body)}
	d, ok := scrapeDiff(a, b, 1)
	if !ok || d.cpu != 1.5 || d.lookups["hit"] != 90 || d.lookups["timeout"] != 10 {
		t.Errorf("diff %+v, %v", d, ok)
	}
	if _, ok := scrapeDiff(a, b, 2); ok {
		t.Error("a diff over 1 member passed for 2")
	}
	for _, tc := range []struct{ q, want float64 }{{0.25, 0.0005}, {0.5, 0.001}, {0.7, 0.0015}, {0.95, 0.002}} {
		if got := histQuantile(d.latency, tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile %v: %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := histQuantile(map[float64]float64{}, 0.5); got != 0 {
		t.Errorf("quantile of nothing: %v", got)
	}
}

func TestRCScenario(t *testing.T) {
	parse := func(args ...string) (*rcOptions, error) {
		var out, errs bytes.Buffer
		return parseRCFlags(args, &out, &errs)
	}
	o, err := parse("-scenario", "../../simulations/scenarios/validate-5.yaml", "-scale", "0.1", "-deadline", "50ms")
	if err != nil {
		t.Fatal(err)
	}
	want := rcOptions{members: 5, killAt: 30 * time.Second, killMember: 2, detectAfter: time.Second, deadline: 50 * time.Millisecond, cert: "ecdsa"}
	if o.members != want.members || o.killAt != want.killAt || o.killMember != want.killMember || o.detectAfter != want.detectAfter ||
		o.deadline != want.deadline || o.cert != want.cert {
		t.Errorf("validate-5 with -deadline 50ms: %+v, want %+v", *o, want)
	}
	if l := o.load; l.duration != time.Minute || math.Abs(l.arrivalRate-5) > 1e-9 || l.returnProb != 0.95 || l.returnAfter.String() != "exponential:5s" || l.tls13Share != 1 {
		t.Errorf("validate-5 workload at scale 0.1: %+v", l)
	}
	if _, err := parse("-scenario", "../../simulations/scenarios/steady.yaml"); err == nil || !strings.Contains(err.Error(), "workload.rsa_share 0.2: the real cluster serves one certificate type") {
		t.Errorf("steady.yaml: %v, want the rsa_share named", err)
	}
	if _, err := parse("-scenario", "../../simulations/scenarios/rack.yaml"); err == nil || !strings.Contains(err.Error(), "the real cluster") {
		t.Errorf("rack.yaml: %v, want a refusal", err)
	}
	if _, err := parse("-scenario", "nonexistent.yaml"); err == nil || !strings.Contains(err.Error(), "nonexistent.yaml") {
		t.Errorf("a missing scenario: %v", err)
	}
}

func TestRCCompare(t *testing.T) {
	sim := &simReport{Scenario: "s", Members: 5, SplitAt: "30s",
		Before: []simSummary{{Strategy: "none", ResumptionRate: 0.2}, {Strategy: "tlsring", ResumptionRate: 1, Offered: 600, HandshakeP50Us: 700, HandshakeP99Us: 1200}},
		After:  []simSummary{{Strategy: "tlsring", ResumptionRate: 0.99, Offered: 1600, HandshakeP50Us: 700, HandshakeP99Us: 1300}},
	}
	real := func(before, after float64, p50 float64) *rcResult {
		return &rcResult{Members: 5, SplitAt: "30s",
			Before: []rcSummary{{ResumptionRate: before, Offered: 650, HandshakeP50Us: p50, HandshakeP99Us: 2000}},
			After:  []rcSummary{{ResumptionRate: after, Offered: 1500, HandshakeP50Us: p50, HandshakeP99Us: 2000}}}
	}
	var out bytes.Buffer
	if err := compareRC(&out, sim, real(0.985, 0.975, 1400), rcTolerance{resumptionPP: 2, latencyFactor: 3}); err != nil {
		t.Errorf("within 2 pp and x3: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "100.00% of 600") || !strings.Contains(out.String(), "-1.50 pp") {
		t.Errorf("the table lacks the figures:\n%s", out.String())
	}
	err := compareRC(io.Discard, sim, real(0.97, 0.99, 1400), rcTolerance{resumptionPP: 2})
	if err == nil || !strings.Contains(err.Error(), "before: resumption differs by -3.00 pp") {
		t.Errorf("3 pp off before: %v", err)
	}
	err = compareRC(io.Discard, sim, real(1, 0.99, 2800), rcTolerance{resumptionPP: 2, latencyFactor: 3})
	if err == nil || !strings.Contains(err.Error(), "handshake p50 real/simulated x4.00") {
		t.Errorf("p50 x4 against a factor of 3: %v", err)
	}
	sim.Members = 3
	if err := compareRC(io.Discard, sim, real(1, 1, 700), rcTolerance{resumptionPP: 2}); err == nil {
		t.Error("3 simulated members compared with 5 real ones")
	}
}
