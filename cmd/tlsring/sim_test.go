// sim_test.go: `tlsring sim`: flags, errors naming the scenario's field and
// line, and a small run's table, output folder and JSON.

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSim(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	js := filepath.Join(dir, "v5.json")
	code, stdout, stderr := runCmd("sim", "../../simulations/scenarios/validate-5.yaml", "-out", out, "-scale", "0.2", "-json", js)
	if code != 0 {
		t.Fatalf("tlsring sim: code %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"strategy", "none", "tlsring", "resumed before / after 30s (crash m2)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout)
		}
	}
	// Not a terminal: plain progress lines.
	if !strings.Contains(stderr, "tlsring sim: 100% of virtual time") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on a non-terminal: %q", stderr)
	}
	for _, f := range []string{"report.md", "timeseries.csv", "summary.csv", "summary.json", "resumption.svg", "handshake_latency.svg", "lookup_latency.svg", "memory.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		SplitAt    string `json:"split_at"`
		Strategies []struct {
			Strategy       string  `json:"strategy"`
			Handshakes     int64   `json:"handshakes"`
			ResumptionRate float64 `json:"resumption_rate"`
		} `json:"strategies"`
		Before, After []struct {
			ResumptionRate float64 `json:"resumption_rate"`
			HandshakeP99Us float64 `json:"handshake_p99_us"`
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SplitAt != "30s" || len(rep.Strategies) != 2 || len(rep.Before) != 2 || len(rep.After) != 2 || rep.Strategies[1].Handshakes == 0 {
		t.Errorf("JSON summary: %s", b)
	}
}

func TestSimErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("members: 5\nworkload:\n  arival_rate: 10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sim"}, exitUsage, "missing SCENARIO"},
		{[]string{"sim", bad, "-scale", "0"}, exitUsage, "-scale 0"},
		{[]string{"sim", bad, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"sim", bad}, exitError, "line 3: field workload.arival_rate: unknown field"},
		{[]string{"sim", "/nonexistent.yaml"}, exitError, "no such file"},
	} {
		code, _, stderr := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("tlsring %v: code %d, stderr %q; want code %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	code, out, _ := runCmd("sim", "-h")
	if code != 0 || !strings.Contains(out, "Usage: tlsring sim SCENARIO") {
		t.Errorf("tlsring sim -h: code %d, %q", code, out)
	}
}
