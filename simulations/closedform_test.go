// closedform_test.go: the simulator held to what can be computed by hand.

package simulations

import (
	"fmt"
	"math"
	"testing"
)

// Without sharing, behind a random balancer over N members, a returning
// client lands on the member that issued its ticket with probability 1/N:
// that is its resumption rate, within sampling error (4 standard errors).
func TestClosedFormNoSharingRandom(t *testing.T) {
	for _, n := range []int{2, 5, 12} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sc := mustParse(t, fmt.Sprintf(`
members: %d
duration: 150s
strategies: [none, sticky, stateless]
workload: {arrival_rate: 100, return_probability: 0.8, return_after: {dist: exponential, mean: 30s}, tls13_share: 0.5, rsa_share: 0.5}
`, n))
			res := mustRun(t, sc, Options{})
			s := strat(t, res, "none")
			var ret, resumed int64
			for _, r := range res.Strategies {
				if r.Name == "none" {
					ret, resumed = r.Total.Returning, r.Total.ReturnResume
				}
			}
			p := 1 / float64(n)
			se := math.Sqrt(p * (1 - p) / float64(ret))
			got := float64(resumed) / float64(ret)
			t.Logf("N=%d: %d returning clients, %.4f resumed, 1/N = %.4f, standard error %.4f", n, ret, got, p, se)
			if ret < 5000 {
				t.Fatalf("only %d returning clients: too few to test", ret)
			}
			if math.Abs(got-p) > 4*se {
				t.Errorf("no sharing resumed %.4f of returning clients, want 1/N = %.4f ± %.4f", got, p, 4*se)
			}
			if s.ResumptionRate != s.ReturningRate {
				t.Errorf("with one connection per visit, every offered ticket is a returning client's: %v != %v", s.ResumptionRate, s.ReturningRate)
			}
			// Sticky balancing and shared keys resume every one of them.
			for _, name := range []string{"sticky", "stateless"} {
				if r := strat(t, res, name); r.ReturningRate != 1 {
					t.Errorf("%s resumed %.4f of returning clients, want all", name, r.ReturningRate)
				}
			}
		})
	}
}

// With no failures, tlsring resumes every returning client whose session
// has not expired; with a lifetime shorter than many return times, those
// that expired are not offered and not resumed.
func TestClosedFormTLSRingNoFailures(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
	}{
		{"5 members", "members: 5"},
		{"40 members, round robin", "members: 40\nbalancer: {policy: round_robin}"},
		{"single use", "members: 5\ntlsring: {single_use: true}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := mustParse(t, tc.extra+`
duration: 150s
strategies: [none, tlsring]
workload: {arrival_rate: 100, return_probability: 0.9, return_after: {dist: exponential, mean: 40s}, session_lifetime: 45s}
`)
			res := mustRun(t, sc, Options{})
			var tr StrategyResult
			for _, r := range res.Strategies {
				if r.Name == "tlsring" {
					tr = r
				}
			}
			c := tr.Total
			t.Logf("%d returns, %d returning with an unexpired ticket (offered %d), %d resumed; lookups %d hit, %d miss, %d timeout, %d error", c.Returns, c.Returning,
				c.Offered, c.Resumed, c.Hits, c.Misses, c.Timeouts, c.Errors)
			if c.Offered < 5000 {
				t.Fatalf("only %d offered tickets", c.Offered)
			}
			if c.Resumed != c.Offered || c.Misses+c.Timeouts+c.Errors != 0 {
				t.Errorf("tlsring resumed %d of %d unexpired sessions (%d misses, %d timeouts, %d errors), want all", c.Resumed, c.Offered, c.Misses, c.Timeouts, c.Errors)
			}
			// Returns come after an exponential(40s) wait, and a session
			// lives 45s from its first full handshake (a resumption keeps
			// its creation time): 1-exp(-45/40) = 67.5% of first returns
			// are in time, fewer of later ones, a little more of those
			// seen in a short run (long waits run past its end). So a good
			// share of returning clients hold an expired ticket: not
			// offered, not resumed.
			if share := float64(c.Returning) / float64(c.Returns); share < 0.3 || share > 0.8 {
				t.Errorf("%.3f of %d returning clients held an unexpired ticket, want between 0.3 and 0.8", share, c.Returns)
			}
			if c.Full != c.Handshakes-c.Offered {
				t.Errorf("full handshakes %d, want every handshake without an unexpired ticket: %d", c.Full, c.Handshakes-c.Offered)
			}
		})
	}
}
