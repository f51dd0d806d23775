// Tests of the command-line parser.

package memcache

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	ok := []struct {
		line string
		want Command
	}{
		{"get a\r\n", Command{Name: "get", Keys: [][]byte{[]byte("a")}}},
		{"get a b  c\n", Command{Name: "get", Keys: [][]byte{[]byte("a"), []byte("b"), []byte("c")}}},
		{"gets k", Command{Name: "gets", Keys: [][]byte{[]byte("k")}}},
		{"set k 0 60 5\r\n", Command{Name: "set", Keys: [][]byte{[]byte("k")}, Exptime: 60, Bytes: 5, Storage: true}},
		{"set k 7 -1 0 noreply\r\n", Command{Name: "set", Keys: [][]byte{[]byte("k")}, Flags: 7, Exptime: -1, NoReply: true, Storage: true}},
		{"cas k 0 0 1 99\r\n", Command{Name: "cas", Keys: [][]byte{[]byte("k")}, Bytes: 1, Storage: true}},
		{"delete k\r\n", Command{Name: "delete", Keys: [][]byte{[]byte("k")}}},
		{"delete k noreply\r\n", Command{Name: "delete", Keys: [][]byte{[]byte("k")}, NoReply: true}},
		{"delete k 0\r\n", Command{Name: "delete", Keys: [][]byte{[]byte("k")}}},
		{"version\r\n", Command{Name: "version"}},
		{"verbosity 1 noreply\r\n", Command{Name: "verbosity", NoReply: true}},
		{"quit\r\n", Command{Name: "quit"}},
		{"get " + strings.Repeat("k", MaxKeyLen) + "\r\n", Command{Name: "get", Keys: [][]byte{[]byte(strings.Repeat("k", MaxKeyLen))}}},
	}
	for _, tc := range ok {
		got, err := ParseCommand([]byte(tc.line))
		if err != nil {
			t.Errorf("ParseCommand(%q): %v", tc.line, err)
			continue
		}
		if got.Name != tc.want.Name || got.Flags != tc.want.Flags || got.Exptime != tc.want.Exptime ||
			got.Bytes != tc.want.Bytes || got.NoReply != tc.want.NoReply || got.Storage != tc.want.Storage ||
			len(got.Keys) != len(tc.want.Keys) {
			t.Errorf("ParseCommand(%q) = %+v, want %+v", tc.line, got, tc.want)
			continue
		}
		for i := range got.Keys {
			if string(got.Keys[i]) != string(tc.want.Keys[i]) {
				t.Errorf("ParseCommand(%q) key %d = %q, want %q", tc.line, i, got.Keys[i], tc.want.Keys[i])
			}
		}
	}
	bad := []struct{ line, reply string }{
		{"\r\n", "ERROR"},
		{"bogus\r\n", "ERROR"},
		{"get\r\n", "ERROR"},
		{"GET a\r\n", "ERROR"},
		{"set k 0 0\r\n", "ERROR"},
		{"set k x 0 1\r\n", "CLIENT_ERROR bad command line format"},
		{"set k 4294967296 0 1\r\n", "CLIENT_ERROR bad command line format"},
		{"set k 0 zz 1\r\n", "CLIENT_ERROR bad command line format"},
		{"set k 0 0 -1\r\n", "CLIENT_ERROR bad data chunk"},
		{"set k 0 0 99999999999999999999\r\n", "CLIENT_ERROR bad data chunk"},
		{"get " + strings.Repeat("k", MaxKeyLen+1) + "\r\n", "CLIENT_ERROR key longer than 250 bytes"},
		{"get a\tb\r\n", "CLIENT_ERROR key contains a control character"},
		{"delete\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"},
		{"delete a b c\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"},
		{"get" + strings.Repeat(" k", MaxKeysPerGet+1) + "\r\n", "CLIENT_ERROR too many keys (at most 64)"},
		{"get" + strings.Repeat(" k", MaxKeysPerGet+2) + "\r\n", "CLIENT_ERROR too many tokens"},
		{strings.Repeat("x", MaxLineLen) + "\r\n", "CLIENT_ERROR line too long"},
	}
	for _, tc := range bad {
		_, err := ParseCommand([]byte(tc.line))
		e, ok := err.(*Error)
		if !ok {
			t.Errorf("ParseCommand(%.40q) = %v, want an *Error", tc.line, err)
			continue
		}
		if got := string(e.Reply()); got != tc.reply+"\r\n" {
			t.Errorf("ParseCommand(%.40q) reply %q, want %q", tc.line, got, tc.reply+"\r\n")
		}
	}
}

// FuzzParseCommand checks that the parser never panics and that what it
// accepts respects the protocol limits.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"get a b\r\n", "set k 0 0 5 noreply\r\n", "delete k 0 noreply\r\n", "cas k 1 2 3 4\r\n", "verbosity 1\r\n", "", " \r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := ParseCommand(line)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if len(c.Keys) > MaxKeysPerGet {
			t.Fatalf("%d keys", len(c.Keys))
		}
		for _, k := range c.Keys {
			if len(k) == 0 || len(k) > MaxKeyLen {
				t.Fatalf("key of %d bytes accepted", len(k))
			}
		}
		if c.Storage && c.Bytes < 0 {
			t.Fatalf("negative size accepted")
		}
	})
}
