// golden_test.go: placement pinned to a checked-in table of owners, so that
// a change of hash, point layout or library version that would move keys
// between versions of this package (members running different builds during
// a rolling deploy disagree on every moved key) fails here.

package ring

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current code")

// goldenMemberCounts are the rings the table covers.
var goldenMemberCounts = []int{1, 2, 3, 5, 7, 20, 100}

// ordinaryKeys are keys placed by hashing the whole key: session store keys
// of the first handle format (16 bytes), memcached-face text keys such as
// Apache's, and edge cases of length and first byte.
func ordinaryKeys() [][]byte {
	var keys [][]byte
	for i := range 48 {
		keys = append(keys, key(i))
	}
	for _, s := range []string{
		"a", "k", "session", "mod_ssl-sess-0123456789abcdef0123456789abcdef",
		"mod_ssl-sess-FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210",
		strings.Repeat("x", 250),
	} {
		keys = append(keys, []byte(s))
	}
	keys = append(keys, bytes.Repeat([]byte{0xff}, 24), bytes.Repeat([]byte{0xff}, 26),
		append([]byte{0xfe}, bytes.Repeat([]byte{7}, 24)...), []byte{0}, bytes.Repeat([]byte{0x80}, 25))
	return keys
}

// goldenTable prints, for each ring and key, the key in hex and its three
// first owners.
func goldenTable(keys [][]byte) string {
	var b strings.Builder
	for _, n := range goldenMemberCounts {
		r, err := New(members(n))
		if err != nil {
			panic(err)
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%d %s %s\n", n, hex.EncodeToString(k), strings.Join(r.Owners(k, 3), ","))
		}
	}
	return b.String()
}

// checkGolden compares got with testdata/name, line by line, or rewrites the
// file with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./ring -run Golden -update, from a version known good)", err)
	}
	gs, ws := bufio.NewScanner(strings.NewReader(got)), bufio.NewScanner(bytes.NewReader(want))
	gs.Buffer(nil, 1<<20)
	ws.Buffer(nil, 1<<20)
	line, bad := 0, 0
	for {
		g, w := gs.Scan(), ws.Scan()
		if !g && !w {
			break
		}
		line++
		if g != w || gs.Text() != ws.Text() {
			if bad++; bad <= 10 {
				t.Errorf("%s line %d:\n got  %q\n want %q", path, line, gs.Text(), ws.Text())
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d lines differ: placement drifted from the checked-in table", path, bad, line)
	}
}

// TestGoldenOwners: ordinary keys are placed exactly as the checked-in table
// (generated before placement tokens existed) says.
func TestGoldenOwners(t *testing.T) {
	checkGolden(t, "owners.golden", goldenTable(ordinaryKeys()))
}
