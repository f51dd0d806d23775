// realcluster_scenario.go: `tlsring real-cluster -scenario FILE`: the
// parameters of a simulator scenario (package simulations) applied to the
// real run, so that both play the same scenario. Only what a real cluster
// on loopback can play is accepted: a random balancer, one certificate
// type, one tlsring deadline, at most one crash; the modelled network,
// CPU and handshake costs are the real machine's.

package main

import (
	"fmt"

	"github.com/tlsring/tlsring/cmd/internal/certgen"
	"github.com/tlsring/tlsring/simulations"
)

// applyScenario sets every option the flags in set did not give from the
// scenario file at path.
func (o *rcOptions) applyScenario(path string, set map[string]bool) error {
	sc, err := simulations.LoadScenario(path)
	if err != nil {
		return usagef("-scenario: %v", err)
	}
	bad := func(format string, args ...any) error {
		return usagef("-scenario %s: %s", path, fmt.Sprintf(format, args...))
	}
	w := sc.Workload
	switch {
	case sc.Balancer.Policy != "random":
		return bad("balancer.policy %q: the real cluster's balancer is random", sc.Balancer.Policy)
	case len(w.DailyCurve) > 0:
		return bad("workload.daily_curve: the real cluster runs a constant arrival rate")
	case w.ParallelShare > 0 && w.Parallel > 1:
		return bad("workload.parallel_share: the real cluster's clients open one connection a visit")
	case w.RSAShare != 0 && w.RSAShare != 1:
		return bad("workload.rsa_share %v: the real cluster serves one certificate type (0 or 1)", w.RSAShare)
	case len(sc.TLSRing.Deadlines) != 1 && !set["deadline"]:
		return bad("tlsring.deadlines: %d deadlines; pick one with -deadline", len(sc.TLSRing.Deadlines))
	case len(sc.Faults) > 1:
		return bad("faults: the real cluster plays at most one crash")
	}
	var crash *simulations.Fault
	if len(sc.Faults) == 1 {
		crash = &sc.Faults[0]
		if crash.Kind != "crash" || crash.Member == nil || crash.For != 0 {
			return bad("faults: the real cluster plays one crash of one member, without a restart (for: 0)")
		}
	}
	setDefault := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}
	setDefault("members", func() { o.members = sc.Members })
	setDefault("duration", func() { o.load.duration = sc.Duration.D() })
	setDefault("arrival-rate", func() { o.load.arrivalRate = w.ArrivalRate })
	setDefault("return-probability", func() { o.load.returnProb = w.ReturnProbability })
	setDefault("tls13-share", func() { o.load.tls13Share = *w.TLS13Share }) // set by LoadScenario (unset = 1)
	setDefault("cert", func() {
		o.cert = certgen.ECDSA
		if w.RSAShare == 1 {
			o.cert = certgen.RSA
		}
	})
	setDefault("detect-after", func() { o.detectAfter = sc.Balancer.DetectAfter.D() })
	setDefault("seed", func() { o.load.seed = sc.Seed })
	if !set["deadline"] {
		o.deadline = sc.TLSRing.Deadlines[0].D()
	}
	if !set["return-after"] {
		if o.load.returnAfter, err = rcDistOf(w.ReturnAfter); err != nil {
			return bad("workload.return_after: %v", err)
		}
	}
	if !set["kill-at"] && !set["kill-member"] {
		o.killAt, o.killMember = -1, 0
		if crash != nil {
			o.killAt, o.killMember = crash.At.D(), *crash.Member
		}
	}
	return nil
}

// rcDistOf converts a scenario's distribution.
func rcDistOf(d simulations.Dist) (rcDist, error) {
	switch d.Kind {
	case "fixed":
		return rcDist{kind: d.Kind, a: d.Value.D()}, nil
	case "exponential":
		return rcDist{kind: d.Kind, a: d.Mean.D()}, nil
	case "uniform":
		return rcDist{kind: d.Kind, a: d.Min.D(), b: d.Max.D()}, nil
	case "lognormal":
		return rcDist{kind: d.Kind, a: d.Median.D(), b: d.P99.D()}, nil
	}
	return rcDist{}, fmt.Errorf("distribution %q", d.Kind)
}
