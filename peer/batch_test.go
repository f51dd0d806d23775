package peer

import (
	"fmt"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/tlsring/tlsring/transport"
)

// TestSetBatch: a batch lands on exactly each key's owner and replica, with
// one request per member, and bad entries get their own errors.
func TestSetBatch(t *testing.T) {
	c := newCluster(t, 5, nil)
	ctx := ctxT(t)
	w := c.peers[c.names[0]]
	const n = 200
	keys, values, ttls := make([][]byte, n), make([][]byte, n), make([]time.Duration, n)
	for i := range keys {
		keys[i], values[i], ttls[i] = key(i), []byte(fmt.Sprint("v", i)), time.Minute
	}
	keys[7] = nil                            // invalid key
	values[9] = make([]byte, MaxValueSize+1) // too large
	ttls[11] = 0                             // invalid ttl
	errs := w.SetBatch(ctx, keys, values, ttls)
	for i, err := range errs {
		bad := i == 7 || i == 9 || i == 11
		if (err != nil) != bad {
			t.Fatalf("entry %d: err = %v", i, err)
		}
	}
	for i := range keys {
		if i == 7 || i == 9 || i == 11 {
			continue
		}
		owners := w.Owners(keys[i])
		for _, name := range c.names {
			if has := c.peers[name].HasLocal(keys[i]); has != slices.Contains(owners, name) {
				t.Fatalf("key %d: %s holds it = %v, owners %v", i, name, has, owners)
			}
		}
		if v, err := c.peers[c.names[3]].Get(ctx, keys[i]); err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("key %d: %q, %v", i, v, err)
		}
	}
	// One request per member, not one per entry and copy.
	for _, name := range c.names[1:] {
		var m dto.Metric
		if err := c.peers[name].metrics.served.WithLabelValues("set_many", "ok").Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != 1 {
			t.Errorf("%s served %v set_many requests, want 1", name, got)
		}
	}
	if errs := w.SetBatch(ctx, keys[:2], values[:1], ttls[:2]); errs[0] == nil || errs[1] == nil {
		t.Fatal("mismatched slices accepted")
	}
}

// TestSetBatchMemberDown: entries whose copy is on a member marked down
// still land on the live copy at once, and on the down member once it
// answers again (in the background); an entry whose every copy is down is
// an error.
func TestSetBatchMemberDown(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t)
	w := c.peers[c.names[0]]
	gone := c.names[1]
	c.net.SetFault(gone, transport.Refusing)
	w.health.failed(gone, transport.ErrUnreachable)
	var keys [][]byte
	for i := 0; len(keys) < 20; i++ {
		if slices.Contains(w.Owners(key(i)), gone) {
			keys = append(keys, key(i))
		}
	}
	values := make([][]byte, len(keys))
	ttls := make([]time.Duration, len(keys))
	for i := range keys {
		values[i], ttls[i] = []byte("v"), time.Minute
	}
	for i, err := range w.SetBatch(ctx, keys, values, ttls) {
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	for _, k := range keys {
		if _, err := c.peers[c.names[2]].Get(ctx, k); err != nil {
			t.Fatalf("live copy missing: %v", err)
		}
	}
	// Every copy down: an error, at once.
	c.net.SetFault(c.names[2], transport.Refusing)
	w.health.failed(c.names[2], transport.ErrUnreachable)
	var lonely []byte
	for i := 0; ; i++ {
		if !slices.Contains(w.Owners(key(i)), w.Self()) {
			lonely = key(i)
			break
		}
	}
	if errs := w.SetBatch(ctx, [][]byte{lonely}, [][]byte{[]byte("v")}, []time.Duration{time.Minute}); errs[0] == nil {
		t.Fatal("a batch entry with every copy down reported success")
	}
}
