// demo_modes_test.go: `tlsring demo -mode stateless` and `-mode hybrid`
// resume across the fleet, also after losing a member.

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

func TestDemoModes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a cluster")
	}
	bin := tlsringBinary(t)
	for _, tc := range []struct{ mode, tls string }{{"stateless", "1.3"}, {"hybrid", "1.2"}} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "demo", "-mode", tc.mode, "-tls", tc.tls, "-handshakes", "150", "-clients", "30", "-deadline", "500ms")
			var stdout, stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
			}
			out := stdout.String()
			t.Logf("demo output:\n%s", out)
			rate := func(prefix string) float64 {
				for line := range strings.Lines(out) {
					if strings.HasPrefix(line, prefix) {
						m := regexp.MustCompile(`\s(\d+)\s+([\d.]+)%`).FindStringSubmatch(line)
						if m == nil {
							t.Fatalf("no resumption rate in %q", line)
						}
						v, _ := strconv.ParseFloat(m[2], 64)
						return v
					}
				}
				t.Fatalf("no row %q in the output", prefix)
				return 0
			}
			if v := rate("(a) tlsring " + tc.mode); v < 95 {
				t.Errorf("tlsring %s resumed %v%%, want >= 95%%", tc.mode, v)
			}
			if v := rate("(b) each server alone"); v > 70 {
				t.Errorf("servers alone resumed %v%% behind a random balancer, want about a third", v)
			}
			if v := rate("(c) tlsring, after losing"); v < 80 {
				t.Errorf("after losing a member, tlsring %s resumed %v%%", tc.mode, v)
			}
		})
	}
}
