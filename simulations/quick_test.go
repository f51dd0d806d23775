package simulations

import (
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
