// Fuzzing of the byte-size flag parser (-max-bytes): any text is a size
// or a clear error, and every size it accepts prints back to itself.

package main

import (
	"strings"
	"testing"
)

func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"0", "1048576", "64MiB", "64M", "64mb", "2g", "512 KiB", "10B", " 7 k ", "+5", "-0",
		"", "x", "-1", "1.5M", "KiB", "4611686018427387904", "4611686018427387905", "4194304G", "4194305G", "99999999999G", "64Mıb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b byteSize
		if err := b.Set(s); err != nil {
			if err.Error() == "" || b != 0 {
				t.Fatalf("Set(%q): error %q, value %d", s, err, b)
			}
			return
		}
		if b < 0 || b > 1<<62 {
			t.Fatalf("Set(%q) = %d, out of range", s, b)
		}
		// Only digits, spaces, a sign and a unit are accepted.
		if strings.ContainsFunc(s, func(r rune) bool { return r > 0x7f }) {
			t.Fatalf("Set(%q) accepted non-ASCII text as %d", s, b)
		}
		var back byteSize
		if err := back.Set(b.String()); err != nil || back != b {
			t.Fatalf("Set(%q) = %d prints as %q, which reads back as %d, %v", s, b, b.String(), back, err)
		}
	})
}
