// helpers_test.go: a clock, an in-memory Store with a ring's owners, and
// goleak.

package ticketkeys

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsring/tlsring/internal/memstore"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable clock; skew shifts one member's reading.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) skewed(d time.Duration) func() time.Time {
	return func() time.Time { return c.now().Add(d) }
}

// memStore is the repository's test store (internal/memstore), here on
// the shared clock.
type memStore = memstore.Store

func newMemStore(c *clock) *memStore { return memstore.New(c.now) }

// member is one member's view of the store: its name, the owner of every
// entry, and a switch that cuts it off.
type member struct {
	*memstore.Store
	self, owner string
	cut         atomic.Bool
}

var errCut = errors.New("unreachable")

func (m *member) Get(ctx context.Context, key []byte) ([]byte, error) {
	if m.cut.Load() {
		return nil, errCut
	}
	return m.Store.Get(ctx, key)
}

func (m *member) Set(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if m.cut.Load() {
		return errCut
	}
	return m.Store.Set(ctx, key, value, ttl)
}

func (m *member) Owners([]byte) []string { return []string{m.owner} }
func (m *member) Self() string           { return m.self }

func newRing(t testing.TB, s Store, o Options) *Keyring {
	t.Helper()
	k, err := New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func refresh(t testing.TB, k *Keyring) {
	t.Helper()
	if _, err := k.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t testing.TB, k *Keyring, ticket []byte, want string) {
	t.Helper()
	pt, err := k.Open(ticket)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if string(pt) != want {
		t.Fatalf("Open = %q, want %q", pt, want)
	}
}
