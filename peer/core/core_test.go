// Tests of construction: defaults, refused configurations, and the
// transfer part function every version must share.

package core

import (
	"hash/fnv"
	"testing"
	"time"
)

func TestNewDefaultsAndErrors(t *testing.T) {
	c, err := New(Config{Self: "a", Members: []string{"a", "b"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	if got.Replicas != DefaultReplicas || got.HedgeAfter != DefaultHedgeAfter || got.ProbeInterval != DefaultProbeInterval ||
		got.DownAfter != DefaultDownAfter || got.TombstoneTTL != DefaultTombstoneTTL || got.HintBytes != DefaultHintBytes || c.Self() != "a" {
		t.Fatalf("defaults not filled: %+v", got)
	}
	for name, cfg := range map[string]Config{
		"no self":           {Members: []string{"a"}},
		"self not a member": {Self: "x", Members: []string{"a"}},
		"no members":        {Self: "a"},
		"duplicate":         {Self: "a", Members: []string{"a", "a"}},
		"negative replicas": {Self: "a", Members: []string{"a"}, Replicas: -1},
		"too many replicas": {Self: "a", Members: []string{"a"}, Replicas: 65},
		"negative duration": {Self: "a", Members: []string{"a"}, HedgeAfter: -time.Second},
		"negative bytes":    {Self: "a", Members: []string{"a"}, HintBytes: -1},
	} {
		if _, err := New(cfg, t0); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestPartOf: the transfer part is FNV-1a (64-bit) of the key modulo the
// parts, checked against the standard library's.
func TestPartOf(t *testing.T) {
	for _, k := range []string{"", "a", "session-key", "\xff\x00\x01", "0123456789abcdef0123456789abcdef"} {
		h := fnv.New64a()
		h.Write([]byte(k))
		for _, parts := range []int{1, 7, 16} {
			if got, want := PartOf([]byte(k), parts), int(h.Sum64()%uint64(parts)); got != want {
				t.Errorf("PartOf(%q, %d) = %d, want %d", k, parts, got, want)
			}
		}
	}
}
