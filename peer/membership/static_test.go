// Tests of the static and file sources' parsing, and a fuzz target for it.

package membership

import (
	"strings"
	"testing"
)

// FuzzParseMembers: any input parses without panicking, and every member
// it yields is a non-empty entry free of separators and comments.
func FuzzParseMembers(f *testing.F) {
	for _, seed := range []string{
		"10.0.0.1:7946,10.0.0.2:7946\n",
		"# comment only\n",
		"a:1 b:2\tc:3\r\nd:4 # tail\n#x:5\n",
		",,,\n\n",
		"[::1]:7946, [fe80::1%eth0]:7946",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		members, err := ParseMembers(data)
		if err != nil {
			if len(members) != 0 {
				t.Fatalf("error %v with members %q", err, members)
			}
			return
		}
		if len(members) == 0 {
			t.Fatal("no error and no members")
		}
		for _, m := range members {
			if m == "" || strings.ContainsAny(m, ", \t\r\n#") {
				t.Fatalf("member %q keeps a separator", m)
			}
		}
	})
}
