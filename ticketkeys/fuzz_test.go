// fuzz_test.go: Open never panics and opens only what Seal made.

package ticketkeys

import (
	"testing"
	"time"
)

func FuzzOpen(f *testing.F) {
	c := newClock(epochStart.Add(time.Second))
	k := newRing(f, &member{Store: newMemStore(c), self: "a", owner: "a"}, Options{Period: period, Retention: retention, Now: c.now})
	refresh(f, k)
	tk, _ := k.Seal([]byte("seed"))
	f.Add(tk)
	f.Add([]byte{TicketVersion})
	f.Add(make([]byte, Overhead))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := k.Open(b)
		if err == nil && string(pt) != "seed" {
			t.Fatalf("opened a ticket Seal never made: %q", pt)
		}
	})
}
