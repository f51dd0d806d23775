// bench_test.go: a smoke test of `tlsring bench`, end to end with tiny
// counts (real TLS servers, ring members over QUIC, memcached when it is
// installed, clients in a child process), checking that --json is well
// formed and has every configuration, ratio, target and transport path;
// and the bench's flag errors.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlsring/tlsring/internal/testenv"
)

// benchClientTestEnv makes TestBenchClientProcess, in a child test binary,
// serve as the bench's client process.
const benchClientTestEnv = "TLSRING_TEST_BENCH_CLIENT"

// TestBenchClientProcess is the client process of TestBench: the test
// binary re-executed, standing in for `tlsring bench-client`. In any
// other run it returns at once.
func TestBenchClientProcess(t *testing.T) {
	if os.Getenv(benchClientTestEnv) != "1" {
		return
	}
	if err := serveBenchClient(context.Background(), os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

func TestBench(t *testing.T) {
	args := []string{"--json", "--rounds", "2", "--handshakes", "6", "--clients", "6",
		"--tls", "1.3,1.2", "--cert", "ecdsa", "--inflight", "1,8", "--deadline", "1s",
		"--transport-samples", "50", "--transport-duration", "50ms", "--transport-conc", "4", "--value", "128"}
	saved := filepath.Join(t.TempDir(), "report.json")
	o, err := parseBenchFlags(append(args, "--json-file", saved), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o.clientCmd = func(ctx context.Context) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchClientProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), benchClientTestEnv+"=1")
		return cmd, nil
	}
	_, lookErr := exec.LookPath("memcached")
	haveMemcached := lookErr == nil
	if !haveMemcached && testenv.InCI() {
		// By hand the bench runs without its memcached rows (and says so);
		// CI must run them.
		testenv.Missing(t, "memcached", "memcached", lookErr)
	}
	// Without schedstat, memcached's CPU is read in 10 ms ticks: 0 is possible.
	_, statErr := os.Stat("/proc/self/schedstat")
	haveSchedstat := statErr == nil

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := benchMain(ctx, o, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}

	// Well-formed: one JSON object and nothing else.
	var rep struct {
		Command string `json:"command"`
		Machine struct {
			CPUs      int    `json:"cpus"`
			Go        string `json:"go"`
			Memcached string `json:"memcached"`
		} `json:"machine"`
		Notices []string `json:"notices"`
		Cells   []struct {
			TLS      string `json:"tls"`
			Cert     string `json:"cert"`
			InFlight int    `json:"in_flight"`
			Configs  []struct {
				Name    string           `json:"name"`
				Skipped string           `json:"skipped"`
				Median  *benchTestPhase  `json:"median"`
				Rounds  []benchTestPhase `json:"rounds"`
			} `json:"configs"`
			Ratios []benchTestRatio `json:"ratios"`
		} `json:"cells"`
		Transport *struct {
			Paths []struct {
				Name    string `json:"name"`
				Skipped string `json:"skipped"`
				Median  *struct {
					P50  float64 `json:"p50_us"`
					Rate float64 `json:"lookups_per_s"`
				} `json:"median"`
				Rounds []json.RawMessage `json:"rounds"`
			} `json:"paths"`
			Ratios []benchTestRatio `json:"ratios"`
		} `json:"transport"`
		Targets []struct {
			Name     string  `json:"name"`
			Where    string  `json:"where"`
			Ratio    float64 `json:"ratio"`
			Measured bool    `json:"measured"`
		} `json:"targets"`
	}
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("--json output does not decode: %v\n%s", err, stdout.String())
	}
	if dec.More() {
		t.Fatalf("--json output has more than one value:\n%s", stdout.String())
	}
	var generic map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"command", "machine", "params", "elapsed_s", "notices", "cells", "transport", "targets"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("--json output has no %q", k)
		}
	}
	if rep.Machine.CPUs < 1 || rep.Machine.Go == "" || !strings.HasPrefix(rep.Command, "tlsring bench --json") {
		t.Errorf("machine %+v, command %q", rep.Machine, rep.Command)
	}

	// Every cell, every configuration, in the report's order.
	if len(rep.Cells) != 4 {
		t.Fatalf("%d cells, want 4 (TLS 1.3 and 1.2, ECDSA, 1 and 8 in flight)", len(rep.Cells))
	}
	for _, c := range rep.Cells {
		where := c.TLS + " " + c.Cert + " " + fmt.Sprint(c.InFlight, " in flight")
		var names []string
		for _, cf := range c.Configs {
			names = append(names, cf.Name)
			if cf.Name == cfgMemcache && !haveMemcached {
				if cf.Skipped == "" || len(cf.Rounds) != 0 {
					t.Errorf("%s: memcached is not installed but its row was not skipped: %+v", where, cf)
				}
				continue
			}
			if cf.Skipped != "" {
				t.Errorf("%s %s: skipped: %s", where, cf.Name, cf.Skipped)
				continue
			}
			if len(cf.Rounds) != 2 || cf.Median == nil {
				t.Errorf("%s %s: %d rounds, median %v; want 2 and a median", where, cf.Name, len(cf.Rounds), cf.Median)
				continue
			}
			for _, r := range cf.Rounds {
				if r.Handshakes+r.Errors != 6 || r.Handshakes == 0 || r.CPU <= 0 || r.P50 <= 0 || r.P99 < r.P50 {
					t.Errorf("%s %s: round %+v", where, cf.Name, r)
				}
			}
			m := cf.Median
			if cf.Name == cfgFull {
				if m.ResumedFraction != nil || m.Offered != 0 {
					t.Errorf("%s full: offered %d, resumed fraction %v; want no sessions offered", where, m.Offered, *m.ResumedFraction)
				}
			} else if m.ResumedFraction == nil || *m.ResumedFraction < 0.5 || m.Offered == 0 {
				t.Errorf("%s %s: median %+v; want sessions offered and mostly resumed", where, cf.Name, m)
			}
			if cf.Name != cfgMemcache && m.MemcachedCPU != 0 || cf.Name == cfgMemcache && (m.MemcachedCPU < 0 || haveSchedstat && m.MemcachedCPU == 0) {
				t.Errorf("%s %s: memcached CPU per handshake %v", where, cf.Name, m.MemcachedCPU)
			}
		}
		if !slices.Equal(names, benchConfigNames()) {
			t.Errorf("%s: configurations %v, want %v", where, names, benchConfigNames())
		}
		for _, want := range []string{"tlsring / ideal", "tlsring-single / ideal", "go-tickets / ideal", "full / ideal"} {
			if !hasRatio(c.Ratios, want, 2) {
				t.Errorf("%s: no ratio %q over 2 rounds in %+v", where, want, c.Ratios)
			}
		}
		if hasRatio(c.Ratios, "tlsring / memcached", 2) != haveMemcached {
			t.Errorf("%s: ratio tlsring / memcached present: %v, memcached installed: %v", where, !haveMemcached, haveMemcached)
		}
	}

	// The targets: TLS 1.3 ECDSA at 1 and 8 in flight against the ideal
	// store (and memcached), the transport p50 (and throughput).
	want := 2 + 1
	if haveMemcached {
		want = 4 + 2
	}
	if len(rep.Targets) != want {
		t.Errorf("%d targets, want %d: %+v", len(rep.Targets), want, rep.Targets)
	}
	for _, tg := range rep.Targets {
		if !tg.Measured || tg.Ratio <= 0 || tg.Where == "" {
			t.Errorf("target %+v", tg)
		}
	}

	if rep.Transport == nil {
		t.Fatal("no transport rows")
	}
	var paths []string
	for _, p := range rep.Transport.Paths {
		paths = append(paths, p.Name)
		if p.Name == pathMemcached && !haveMemcached {
			if p.Skipped == "" {
				t.Error("memcached is not installed but its transport row was not skipped")
			}
			continue
		}
		if len(p.Rounds) != 2 || p.Median == nil || p.Median.P50 <= 0 || p.Median.Rate <= 0 {
			t.Errorf("transport %s: %d rounds, median %+v", p.Name, len(p.Rounds), p.Median)
		}
	}
	if !slices.Equal(paths, []string{pathQUIC, pathTCP, pathMemcached}) {
		t.Errorf("transport paths %v", paths)
	}
	if !hasRatio(rep.Transport.Ratios, "quic / tcp", 2) {
		t.Errorf("no quic / tcp ratio: %+v", rep.Transport.Ratios)
	}
	// The saved report is the same, and prints again as tables and Markdown.
	if b, err := os.ReadFile(saved); err != nil || !bytes.Equal(b, stdout.Bytes()) {
		t.Errorf("-json-file holds %d bytes (%v), not what -json printed", len(b), err)
	}
	for _, md := range []bool{false, true} {
		args := []string{"bench", "--report", saved}
		if md {
			args = append(args, "--markdown")
		}
		code, out, errs := runCmd(args...)
		if code != 0 {
			t.Fatalf("%v: code %d, %s", args, code, errs)
		}
		for _, want := range append(benchConfigNames(), "TLS 1.2 ECDSA, 8 in flight", "tlsring / ideal", "quic / tcp") {
			if !strings.Contains(out, want) {
				t.Errorf("%v does not show %q:\n%s", args, want, out)
			}
		}
	}
	if code, _, errs := runCmd("bench", "--report", filepath.Join(t.TempDir(), "nope.json")); code != exitError || !strings.Contains(errs, "nope.json") {
		t.Errorf("-report of a missing file: code %d, %q", code, errs)
	}
	if !haveMemcached && !slices.ContainsFunc(rep.Notices, func(n string) bool { return strings.Contains(n, "memcached") }) {
		t.Errorf("memcached is not installed and no notice says so: %q", rep.Notices)
	}
}

// benchTestPhase is the part of a phaseResult the smoke test checks.
type benchTestPhase struct {
	Handshakes      int64    `json:"handshakes"`
	Offered         int64    `json:"offered"`
	Errors          int64    `json:"errors"`
	ResumedFraction *float64 `json:"resumed_fraction"`
	CPU             float64  `json:"cpu_us_per_handshake"`
	MemcachedCPU    float64  `json:"memcached_cpu_us_per_handshake"`
	P50             float64  `json:"p50_us"`
	P99             float64  `json:"p99_us"`
}

type benchTestRatio struct {
	Name     string    `json:"name"`
	Median   float64   `json:"median"`
	PerRound []float64 `json:"per_round"`
}

// hasRatio reports whether rs has a positive ratio name over rounds rounds.
func hasRatio(rs []benchTestRatio, name string, rounds int) bool {
	return slices.ContainsFunc(rs, func(r benchTestRatio) bool {
		return r.Name == name && r.Median > 0 && len(r.PerRound) == rounds
	})
}

func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls", "1.1"}, `-tls "1.1": want 1.3 or 1.2`},
		{[]string{"--cert", "dsa"}, `-cert "dsa": want ecdsa or rsa`},
		{[]string{"--inflight", "0"}, `-inflight "0": want a number from 1 to 256`},
		{[]string{"--configs", "tlsring,redis"}, `-configs "redis": want some of full,go-tickets,ideal,tlsring,tlsring-single,memcached`},
		{[]string{"--rounds", "0"}, "-rounds 0: want at least 1"},
		{[]string{"--duration", "0s"}, "-duration 0s: want a positive duration"},
		{[]string{"--tls", ","}, `-tls ",": empty`},
	} {
		code, _, errs := runCmd(append([]string{"bench"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("bench %v: code %d, %q; want %q", tc.args, code, errs, tc.want)
		}
	}
	o, err := parseBenchFlags([]string{"--quick", "--inflight", "8"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 3 || o.duration != 200*time.Millisecond || len(o.cells()) != 1 || o.cells()[0].inflight != 8 {
		t.Errorf("--quick --inflight 8: %d rounds of %v, cells %v", o.rounds, o.duration, o.cells())
	}
	if code, out, _ := runCmd("bench", "-h"); code != 0 || !strings.Contains(out, "Usage: tlsring bench") {
		t.Errorf("bench -h: code %d, %.80q", code, out)
	}
}
