// helpers_test.go: scenarios built in tests.

package simulations

import (
	"testing"
)

// mustParse parses a scenario or fails the test.
func mustParse(t testing.TB, y string) *Scenario {
	t.Helper()
	sc, err := ParseScenario([]byte(y))
	if err != nil {
		t.Fatalf("ParseScenario: %v\n%s", err, y)
	}
	return sc
}

func mustRun(t testing.TB, sc *Scenario, opt Options) *Result {
	t.Helper()
	res, err := Run(sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func strat(t testing.TB, res *Result, name string) Summary {
	t.Helper()
	for _, s := range res.Report().Strategies {
		if s.Strategy == name {
			return s
		}
	}
	t.Fatalf("no strategy %q in the result", name)
	return Summary{}
}
