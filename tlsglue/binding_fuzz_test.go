package tlsglue

import "testing"

// FuzzBinding feeds checkBinding arbitrary Extra entries (what a forged or
// foreign session state could carry) and arbitrary connection names: it
// must never panic, must accept exactly the entry bindingEntry makes for
// the same names, and must refuse it for any other.
func FuzzBinding(f *testing.F) {
	f.Add([]byte("tlsglue1\x00\x09localhost\x00\x02h2\x00\x00"), "localhost", "h2", "")
	f.Add([]byte("tlsglue1\x00"), "a", "", "")
	f.Add([]byte("tlsglue1\xff\xff"), "", "", "")
	f.Add([]byte("quic-go\x01"), "example.com", "h3", "label")
	f.Add([]byte{}, "", "", "")
	f.Fuzz(func(t *testing.T, entry []byte, sni, alpn, label string) {
		checkBinding([][]byte{entry}, sni, alpn, label) // no panic, whatever the entry
		own := bindingEntry(sni, alpn, label)
		if len(sni) > 0xffff || len(alpn) > 0xffff || len(label) > 0xffff {
			return // truncated by design; no real SNI or ALPN is that long
		}
		if r := checkBinding([][]byte{entry, own}, sni, alpn, label); r == bindingMissing {
			t.Fatalf("own entry after %q: missing", entry)
		}
		if r := checkBinding([][]byte{own}, sni, alpn, label); r != bindingOK {
			t.Fatalf("own entry for (%q, %q, %q): %v", sni, alpn, label, r)
		}
		if r := checkBinding([][]byte{own}, sni+"x", alpn, label); r != bindingMismatch {
			t.Fatalf("entry for %q accepted for %q: %v", sni, sni+"x", r)
		}
	})
}
