package simulations

import "testing"

func BenchmarkProfCrash(b *testing.B) {
	sc, err := LoadScenario("scenarios/crash.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(sc, Options{Scale: 0.1}); err != nil {
			b.Fatal(err)
		}
	}
}
