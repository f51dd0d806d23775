package simulations

import (
	"strings"
	"testing"
)

func TestQuickSteady(t *testing.T) {
	sc, err := LoadScenario("scenarios/steady.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Options{Scale: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Strategies {
		c := s.Total
		t.Logf("%-10s hs=%d offered=%d resumed=%d ret=%d retres=%d hits=%d miss=%d to=%d err=%d p50=%d p99=%d lk=%d/%d mem=%d", s.Name, c.Handshakes, c.Offered, c.Resumed, c.Returning, c.ReturnResume, c.Hits, c.Misses, c.Timeouts, c.Errors, s.HSP50, s.HSP99, s.LkP50, s.LkP99, s.MemPeak)
	}
}

func TestQuickOut(t *testing.T) {
	sc, err := LoadScenario("scenarios/validate-5.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteDir("/tmp/simout"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	res.WriteTable(&b)
	t.Log("\n" + b.String())
}
