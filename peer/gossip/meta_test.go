// The metadata decoder takes bytes from other members: it must refuse
// what it cannot read with an error, never panic, and read back what
// encodeMeta wrote.

package gossip

import (
	"bytes"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []meta{
		{addr: "127.0.0.1:7000"},
		{addr: "[::1]:7000", leaving: true},
		{addr: "peer-3.tlsring.default.svc.cluster.local:7000"},
	} {
		got, err := decodeMeta(encodeMeta(m))
		if err != nil || got != m {
			t.Errorf("decodeMeta(encodeMeta(%+v)) = %+v, %v", m, got, err)
		}
	}
	for _, b := range [][]byte{
		nil,
		{1},
		{2, 0, '1', ':', '1'},    // unknown version
		{1, 0x80, '1', ':', '1'}, // unknown flag
		append([]byte{1, 0}, "nohost"...),
		append([]byte{1, 0}, ":7000"...),
		append([]byte{1, 0}, "h:0"...),
		append([]byte{1, 0}, "h:65536"...),
		append([]byte{1, 0}, bytes.Repeat([]byte("a"), 300)...),
	} {
		if m, err := decodeMeta(b); err == nil {
			t.Errorf("decodeMeta(%q) = %+v, want an error", b, m)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(meta{addr: "127.0.0.1:7000"}))
	f.Add(encodeMeta(meta{addr: "[::1]:7000", leaving: true}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, ':'})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if checkAddr(m.addr) != nil {
			t.Fatalf("decodeMeta(%q) accepted bad address %q", b, m.addr)
		}
		if again, err := decodeMeta(encodeMeta(m)); err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}
