package peer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tlsring/tlsring/transport"
)

// sum adds the values of every series of the named family in reg whose
// labels include want.
func sum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			total += value(m)
		}
	}
	return total
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestMetrics: the member's metrics count what it did, with its own name
// as a const label so members can share a registry.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newCluster(t, 3, func(cfg *Config) { cfg.Registerer = reg })
	ctx := ctxT(t)
	reader := c.peers[c.names[0]]
	keys := remoteKeys(reader, 10)
	for _, k := range keys {
		if err := reader.Set(ctx, k, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.Get(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	self := map[string]string{"member": reader.Self()}
	if got := sum(t, reg, "tlsring_peer_operation_duration_seconds", map[string]string{"member": reader.Self(), "op": "get", "result": "hit"}); got != 10 {
		t.Errorf("get hits = %v, want 10", got)
	}
	// 10 sets to two remote copies, 10 gets answered by the first.
	if got := sum(t, reg, "tlsring_peer_calls_total", map[string]string{"member": reader.Self(), "result": "ok"}); got < 30 {
		t.Errorf("ok calls = %v, want at least 30", got)
	}
	var entries float64
	for _, name := range c.names[1:] {
		entries += sum(t, reg, "tlsring_store_entries", map[string]string{"member": name})
	}
	if entries != 20 {
		t.Errorf("entries on the other members = %v, want 20 (10 keys, 2 copies)", entries)
	}
	if got := sum(t, reg, "tlsring_peer_members", self); got != 3 {
		t.Errorf("members = %v, want 3", got)
	}
	if got := sum(t, reg, "tlsring_peer_up", self); got != 2 {
		t.Errorf("peers up = %v, want 2", got)
	}
	// A member that really refuses (so the probe cannot bring it back).
	c.net.SetFault(c.names[1], transport.Refusing)
	reader.WarmUp(ctx)
	waitFor(t, func() bool { return sum(t, reg, "tlsring_peer_up", self) == 1 }, "peers up with one refusing to be 1")
	if got := sum(t, reg, "tlsring_peer_ready", self); got != 1 {
		t.Errorf("ready with one of two others down = %v, want 1", got)
	}
	c.net.SetFault(c.names[2], transport.Refusing)
	reader.WarmUp(ctx)
	waitFor(t, func() bool { return sum(t, reg, "tlsring_peer_ready", self) == 0 }, "not ready with no other member reachable")
}
