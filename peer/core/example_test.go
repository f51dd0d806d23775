// An example of driving a Core the way a simulator does: virtual time, a
// single goroutine, and the driver performing each decision.

package core_test

import (
	"fmt"
	"time"

	"github.com/tlsring/tlsring/peer/core"
	"github.com/tlsring/tlsring/ring"
)

// A member's core, driven in virtual time: a copy stops answering, writes
// to it are kept, probes find it back, and its delayed writes go out.
func Example() {
	r, _ := ring.New([]string{"a", "b", "c"})
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := core.New(core.Config{Self: "a", Ring: r, Seed: 1}, start)
	now := start

	// Find a key whose copies are a and b.
	var key []byte
	for i := 0; ; i++ {
		key = fmt.Appendf(nil, "k%d", i)
		if o := r.Owners(key, 2); (o[0] == "a" || o[1] == "a") && (o[0] == "b" || o[1] == "b") {
			break
		}
	}

	// b is unreachable: the first failed call marks it down.
	fmt.Println("b marked down:", c.CallFailed(now, "b", false, "unreachable"))
	order, up := c.Route(core.RouteWrite, key)
	fmt.Println("write to", order[:up], "keep for", order[up:])
	for _, m := range order[up:] {
		c.HintAdd(now, m, key, c.SetHintAt(now, []byte("v"), time.Minute))
	}

	// The probe round is due at NextTick; its ping finds b answering.
	now = c.NextTick()
	d := c.Tick(now)
	fmt.Println("probe", d.Probe)
	if c.CallOK(now, d.Probe[0]) && c.HintsClaim(now, "b") {
		dl := c.HintsTake(now, "b")
		fmt.Println("deliver to b:", len(dl.Sets), "set(s), ttl", dl.Sets[0].TTL)
		c.HintsDone(now, "b")
	}
	// Output:
	// b marked down: true
	// write to [a] keep for [b]
	// probe [b]
	// deliver to b: 1 set(s), ttl 59.8s
}
