// Benchmarks of the decisions a simulator makes most often, at 1000
// members, next to the ring lookup they build on (the baseline: a route is
// a ring lookup plus ordering by health).

package core

import (
	"fmt"
	"testing"

	"github.com/tlsring/tlsring/ring"
)

func bench1000(b *testing.B, down int) (*Core, [][]byte) {
	ms := members(1000)
	r, err := ring.New(ms)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Config{Self: ms[0], Ring: r}, t0)
	if err != nil {
		b.Fatal(err)
	}
	for i := range down {
		c.CallFailed(t0, ms[1+i*7], false, "down")
	}
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "session-key-%08d", i)
	}
	return c, keys
}

// BenchmarkRingOwners1000 is the baseline: the ring lookup alone.
func BenchmarkRingOwners1000(b *testing.B) {
	c, keys := bench1000(b, 0)
	r := c.Ring()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Owners(keys[i&4095], 2)
		i++
	}
}

// BenchmarkRoute1000 routes a read of a key at 1000 members, 20 of them
// marked down.
func BenchmarkRoute1000(b *testing.B) {
	c, keys := bench1000(b, 20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Route(RouteRead, keys[i&4095])
		i++
	}
}

// BenchmarkRead1000 is a whole read decision: route, then the tracker for
// the copy that answers.
func BenchmarkRead1000(b *testing.B) {
	c, keys := bench1000(b, 20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		order, _ := c.Route(RouteRead, keys[i&4095])
		rd := NewRead(order, false)
		rd.Ask()
		rd.Answer(Found)
		i++
	}
}

func BenchmarkCallOK1000(b *testing.B) {
	c, _ := bench1000(b, 0)
	ms := c.Ring().Members()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.CallOK(t0, ms[i%1000])
		i++
	}
}

func BenchmarkMiss1000(b *testing.B) {
	c, keys := bench1000(b, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Miss(t0, keys[i&4095], false)
		i++
	}
}

// BenchmarkNewShared1000 builds a core of a 1000-member ring it shares:
// what a simulator pays per simulated member.
func BenchmarkNewShared1000(b *testing.B) {
	ms := members(1000)
	r, _ := ring.New(ms)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := New(Config{Self: ms[i%1000], Ring: r}, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkTick1000(b *testing.B) {
	c, _ := bench1000(b, 20)
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		now = now.Add(DefaultProbeInterval)
		c.Tick(now)
	}
}

// BenchmarkRouteDecision1000 is the core's own share of a route, without
// the ring lookup: ordering a key's copies by health, with 20 of 1000
// members marked down.
func BenchmarkRouteDecision1000(b *testing.B) {
	c, keys := bench1000(b, 20)
	owners := make([][]string, 64)
	for i := range owners {
		owners[i] = c.Ring().Owners(keys[i], 2)
	}
	buf := make([]string, 2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		copy(buf, owners[i&63])
		c.mu.RLock()
		c.order(RouteRead, buf)
		c.mu.RUnlock()
		i++
	}
}
