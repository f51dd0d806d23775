// Tests of Follow with a source the test drives and a recording target,
// on the real clock (grace periods of a fraction of a second, waits with
// generous deadlines).

package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chanSource reports every list sent on its channel.
type chanSource chan []string

func (c chanSource) Run(ctx context.Context, update func([]string)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-c:
			update(m)
		}
	}
}

// recorder is a Target and a Liveness that remembers what it was told.
type recorder struct {
	mu     sync.Mutex
	rings  [][]string
	events []string
}

func (r *recorder) SetMembers(m []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rings = append(r.rings, slices.Clone(m))
}

func (r *recorder) MemberDown(m string, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "down "+m)
}

func (r *recorder) MemberUp(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "up "+m)
}

func (r *recorder) state() (rings [][]string, events []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rings), slices.Clone(r.events)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	src := make(chanSource)
	rec := &recorder{}
	m := NewMetrics(prometheus.Labels{"member": "a:1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const grace = 400 * time.Millisecond
	go func() {
		done <- Follow(ctx, src, rec, Config{Self: "a:1", Members: []string{"a:1", "b:1"}, Source: "test",
			Grace: grace, Liveness: rec, Metrics: m})
	}()
	lastRing := func(want ...string) func() (bool, string) {
		return func() (bool, string) {
			rings, events := rec.state()
			return len(rings) > 0 && slices.Equal(rings[len(rings)-1], want), fmt.Sprint(rings, events)
		}
	}
	// A join applies at once.
	src <- []string{"a:1", "b:1", "c:1"}
	waitUntil(t, 5*time.Second, "c to join", lastRing("a:1", "b:1", "c:1"))
	// Gone: down at once, out of the ring only after the grace period.
	gone := time.Now()
	src <- []string{"a:1", "b:1"}
	waitUntil(t, 5*time.Second, "c reported down", func() (bool, string) {
		_, ev := rec.state()
		return slices.Contains(ev, "down c:1"), fmt.Sprint(ev)
	})
	waitUntil(t, 10*time.Second, "c to leave", lastRing("a:1", "b:1"))
	if d := time.Since(gone); d < grace {
		t.Fatalf("c left the ring %v after it was gone from the source, before the grace period of %v", d, grace)
	}
	// A flap: gone and back within the grace period moves nothing.
	src <- []string{"a:1", "b:1", "c:1"}
	waitUntil(t, 5*time.Second, "c to join again", lastRing("a:1", "b:1", "c:1"))
	nRings := len(must(rec.state()))
	src <- []string{"a:1", "b:1"}
	src <- []string{"a:1", "b:1", "c:1"}
	waitUntil(t, 5*time.Second, "c reported up", func() (bool, string) {
		_, ev := rec.state()
		return slices.Contains(ev, "up c:1"), fmt.Sprint(ev)
	})
	// Refused lists keep the ring.
	src <- []string{}
	src <- []string{"b:1", "c:1"}
	waitUntil(t, 5*time.Second, "both refusals counted", func() (bool, string) {
		e := testutil.ToFloat64(m.sourceErrors.WithLabelValues("test", "empty"))
		s := testutil.ToFloat64(m.sourceErrors.WithLabelValues("test", "self_missing"))
		return e == 1 && s == 1, fmt.Sprint(e, s)
	})
	time.Sleep(2 * grace) // nothing may happen now: check that it does not
	if rings, ev := rec.state(); len(rings) != nRings {
		t.Fatalf("the ring changed after a flap or a refused list: %v %v", rings, ev)
	}
	if got := testutil.ToFloat64(m.damped); got != 1 {
		t.Errorf("flaps damped %v, want 1", got)
	}
	if j, l := testutil.ToFloat64(m.joins), testutil.ToFloat64(m.leaves); j != 2 || l != 1 {
		t.Errorf("joins %v leaves %v, want 2 and 1", j, l)
	}
	if a := testutil.ToFloat64(m.members.WithLabelValues("active")); a != 3 {
		t.Errorf("active members %v, want 3", a)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v, want context.Canceled", err)
	}
}

func must[T, U any](t T, _ U) T { return t }

// failing stops at once with an error.
type failing struct{}

func (failing) Run(context.Context, func([]string)) error { return errors.New("boom") }

func TestFollowSourceStops(t *testing.T) {
	err := Follow(context.Background(), failing{}, &recorder{}, Config{Self: "a:1", Members: []string{"a:1"}, Source: "test"})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Follow returned %v, want the source's error", err)
	}
}
