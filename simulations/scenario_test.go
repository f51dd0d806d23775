// scenario_test.go: scenario files: every shipped one parses and runs at a
// reduced size; bad ones get an error naming the field and its line.

package simulations

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown field", "members: 5\nworkload:\n  arival_rate: 10\n", []string{"line 3", "workload.arival_rate", "unknown field", "arrival_rate"}},
		{"unknown top-level field", "name: x\nmembrs: 5\n", []string{"line 2", "membrs", "unknown field"}},
		{"wrong type, number", "members: five\n", []string{"line 1", "members", "whole number", `"five"`}},
		{"wrong type, mapping", "workload: 5\n", []string{"line 1", "workload", "mapping"}},
		{"wrong type, list", "strategies: none\n", []string{"line 1", "strategies", "list"}},
		{"bad duration", "duration: 10 minutes\n", []string{"line 1", "duration", "3ms"}},
		{"bad duration in a list", "tlsring:\n  deadlines: [1ms, 2 ms]\n", []string{"line 2", "tlsring.deadlines[1]"}},
		{"bad size", "tlsring: {max_bytes: 64 MiBs}\n", []string{"line 1", "tlsring.max_bytes", "64MiB"}},
		{"negative members", "members: -3\n", []string{"line 1", "members", "between 1 and 10000"}},
		{"probability above 1", "workload:\n  tls13_share: 1.5\n", []string{"line 2", "workload.tls13_share", "between 0 and 1"}},
		{"unknown policy", "balancer:\n  policy: fastest\n", []string{"line 2", "balancer.policy", "round_robin"}},
		{"unknown strategy", "strategies: [none, magic]\n", []string{"line 1", "strategies[1]", "magic"}},
		{"p99 below median", "network:\n  latency: {dist: lognormal, median: 1ms, p99: 100us}\n", []string{"line 2", "network.latency.p99", "at least the median"}},
		{"unknown distribution", "network:\n  latency:\n    dist: gaussian\n", []string{"line 3", "network.latency.dist", "gaussian"}},
		{"fault member out of range", "members: 5\nfaults:\n  - {at: 1m, kind: crash, member: 7}\n", []string{"line 3", "faults[0].member", "between 0 and 4"}},
		{"fault past the end", "duration: 1m\nfaults:\n  - at: 2m\n    kind: crash\n    member: 0\n", []string{"line 3", "faults[0].at", "within the duration"}},
		{"fault without member", "faults:\n  - {at: 1m, kind: slow}\n", []string{"line 2", "faults[0].member"}},
		{"scale-out that shrinks", "members: 5\nfaults:\n  - {at: 1m, kind: scale_out, to: 3}\n", []string{"line 3", "faults[0].to"}},
		{"daily curve of 12", "workload:\n  daily_curve: [1,1,1,1,1,1,1,1,1,1,1,1]\n", []string{"line 2", "workload.daily_curve", "24"}},
		{"field given twice", "members: 5\nmembers: 6\n", []string{"line 2", "members", "twice"}},
		{"rolling restart longer than its step", "faults:\n  - {at: 1m, kind: rolling_restart, every: 10s, down_for: 20s}\n", []string{"line 2", "faults[0].down_for"}},
		{"not YAML", "members: [5\n", []string{"not valid YAML"}},
		{"empty", "", []string{"empty"}},
		{"a list at the top", "- 1\n", []string{"(top level)", "mapping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "simulations: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestScenarioDefaults(t *testing.T) {
	sc := mustParse(t, "name: d\n")
	if sc.Members != 5 || sc.TLSRing.Replicas != 2 || len(sc.Strategies) != 4 || sc.TLSRing.Deadlines[0].D().String() != "3ms" {
		t.Errorf("defaults: %+v", sc)
	}
	if sc.Costs.TLS13RSA.Full.D().Microseconds() != 1530 {
		t.Errorf("TLS 1.3 RSA full handshake cost %v, want the measured 1530µs", sc.Costs.TLS13RSA.Full.D())
	}
	// JSON is YAML too.
	sc = mustParse(t, `{"members": 7, "workload": {"arrival_rate": 3}}`)
	if sc.Members != 7 || sc.Workload.ArrivalRate != 3 {
		t.Errorf("JSON scenario: members %d, rate %v", sc.Members, sc.Workload.ArrivalRate)
	}
}

// testScale is the reduced size each shipped scenario runs at in CI: about
// 2000 new clients.
func testScale(sc *Scenario) float64 {
	visits := sc.Workload.ArrivalRate * sc.Duration.D().Seconds()
	return min(1, 2000/visits)
}

// Every shipped scenario parses and runs at a reduced size, and its
// figures are sane: tlsring resumes more than no sharing wherever there
// is more than one member, never more than it offered.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d scenarios shipped", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			sc, err := LoadScenario(f)
			if err != nil {
				t.Fatal(err)
			}
			res := mustRun(t, sc, Options{Scale: testScale(sc)})
			rep := res.Report()
			var none, ring float64
			for _, s := range rep.Strategies {
				t.Logf("%-14s %7d handshakes, %6.2f%% resumed, p99 %s, lookups %d/%d/%d/%d", s.Strategy, s.Handshakes, 100*s.ResumptionRate, fmtUs(s.HandshakeP99Us),
					s.LookupHits, s.LookupMisses, s.LookupTimeouts, s.LookupErrors)
				if s.Handshakes == 0 || s.Resumed > s.Offered {
					t.Errorf("%s: %d handshakes, %d resumed of %d offered", s.Strategy, s.Handshakes, s.Resumed, s.Offered)
				}
				switch {
				case s.Strategy == "none":
					none = s.ResumptionRate
				case strings.HasPrefix(s.Strategy, "tlsring"):
					ring = max(ring, s.ResumptionRate)
				}
			}
			if ring <= none {
				t.Errorf("tlsring resumed %.3f, no sharing %.3f", ring, none)
			}
			if len(sc.Faults) != len(res.Faults) && len(res.Faults) == 0 {
				t.Errorf("%d faults in the scenario, none happened", len(sc.Faults))
			}
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	files, _ := filepath.Glob("scenarios/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "members: 5", "{}", "- 1", "faults: [{at: 1s, kind: crash, member: 0}]", "workload: {daily_curve: [1]}", "a: &x 1\nb: *x", "duration: 1ns\nsample_interval: 1ns"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := ParseScenario(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "simulations: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		// A scenario that parses is one Run accepts.
		if sc.Members < 1 || sc.Duration <= 0 || sc.SampleInterval <= 0 || len(sc.Strategies) == 0 {
			t.Fatalf("accepted a scenario that cannot run: %+v", sc)
		}
	})
}

func TestScenarioCostErrors(t *testing.T) {
	_, err := ParseScenario([]byte("costs:\n  tls12_rsa:\n    resumed: 2s\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3: field costs.tls12_rsa.resumed") {
		t.Errorf("a cost over 1s: %v", err)
	}
	_, err = ParseScenario([]byte("workload:\n  rsa_share: -1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2: field workload.rsa_share") {
		t.Errorf("a negative share: %v", err)
	}
}
