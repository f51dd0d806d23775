// demo_http3_test.go: `tlsring demo -http3` end to end (the binary, its
// cluster and its client process), and its flag checks.

package main

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoHTTP3 runs `tlsring demo -http3` small and checks its table:
// through the ring nearly every returning client's request goes in 0-RTT
// and its sessions are replay-safe; alone, the servers resume (and take
// early data) only for the clients that come back to them.
func TestDemoHTTP3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster")
	}
	bin := tlsringBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// A generous lookup deadline: this checks the demo's workings, not
	// latency, on a loaded machine and perhaps under -race.
	cmd := exec.CommandContext(ctx, bin, "demo", "-http3", "-handshakes", "150", "-clients", "30", "-deadline", "500ms", "-rtt", "20ms")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	t.Logf("demo output:\n%s", out)
	row := regexp.MustCompile(`\s(\d+)\s+([\d.]+)%\s+([\d.]+)%\s+(yes|no)\s`)
	rates := func(prefix string) (resumed, early float64, safe string) {
		t.Helper()
		for line := range strings.Lines(out) {
			if !strings.HasPrefix(line, prefix) {
				continue
			}
			m := row.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no rates in %q", line)
			}
			if m[1] != "150" {
				t.Errorf("%q: %s requests, want 150", line, m[1])
			}
			resumed, _ = strconv.ParseFloat(m[2], 64)
			early, _ = strconv.ParseFloat(m[3], 64)
			return resumed, early, m[4]
		}
		t.Fatalf("no row %q in the output", prefix)
		return 0, 0, ""
	}
	if r, e, safe := rates("(a) tlsring"); r < 95 || e < 95 || safe != "yes" {
		t.Errorf("tlsring: resumed %v%%, 0-RTT %v%%, replay-safe %s; want >= 95%%, >= 95%%, yes", r, e, safe)
	}
	if r, e, safe := rates("(b) each server alone"); r > 70 || e > r || safe != "no" {
		t.Errorf("servers alone: resumed %v%%, 0-RTT %v%%, replay-safe %s; want about a third, no more 0-RTT, no", r, e, safe)
	}
	if r, e, safe := rates("    each server alone, sticky"); r < 95 || e < 95 || safe != "no" {
		t.Errorf("sticky servers: resumed %v%%, 0-RTT %v%%, replay-safe %s; want about 100%%, 100%%, no", r, e, safe)
	}
	if r, e, _ := rates("(c) tlsring, after losing"); r < 80 || e < 80 {
		t.Errorf("after losing a member: resumed %v%%, 0-RTT %v%%", r, e)
	}
	if !regexp.MustCompile(`\(a\) tlsglue: early data offered 150, accepted \d+`).MatchString(out) {
		t.Errorf("no early-data line for (a) in the output")
	}
	if !strings.Contains(stderr.String(), "(a) tlsring, 3 members: 150 requests in") {
		t.Errorf("no progress line in stderr:\n%s", &stderr)
	}
	if strings.Contains(stderr.String(), "receive buffer") {
		t.Errorf("quic-go's buffer warning in stderr:\n%s", &stderr)
	}
}

// TestDemoHTTP3Flags: HTTP/3 needs TLS 1.3; -rtt is bounded.
func TestDemoHTTP3Flags(t *testing.T) {
	if code, _, errs := runCmd("demo", "-http3", "-tls", "1.2"); code != exitUsage || errs != "tlsring demo: -tls 1.2: HTTP/3 runs over TLS 1.3 only\n" {
		t.Errorf("tlsring demo -http3 -tls 1.2: code %d, %q", code, errs)
	}
	if code, _, errs := runCmd("demo", "-http3", "-rtt", "-1s"); code != exitUsage || errs != "tlsring demo: -rtt -1s: want 0 to 10s\n" {
		t.Errorf("tlsring demo -http3 -rtt -1s: code %d, %q", code, errs)
	}
	o, err := parseDemoFlags([]string{"-http3"}, &strings.Builder{}, &strings.Builder{})
	if err != nil || o.concurrency != 16 || o.rtt != 10*time.Millisecond {
		t.Errorf("-http3 defaults: %+v, %v; want concurrency 16, rtt 10ms", o, err)
	}
	o, err = parseDemoFlags([]string{"-http3", "-concurrency", "3"}, &strings.Builder{}, &strings.Builder{})
	if err != nil || o.concurrency != 3 {
		t.Errorf("-http3 -concurrency 3: %+v, %v", o, err)
	}
	if o, err := parseDemoFlags(nil, &strings.Builder{}, &strings.Builder{}); err != nil || o.concurrency != 4 || o.http3 {
		t.Errorf("defaults: %+v, %v; want concurrency 4, no HTTP/3", o, err)
	}
}
