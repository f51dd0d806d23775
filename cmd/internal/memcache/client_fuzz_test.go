// Fuzzing of Client's answer parsing: whatever a server (or something
// posing as one) sends, the client never crashes, never returns more than
// it announced, and tells a miss from a value from an error.

package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"testing"
)

func FuzzClientAnswer(f *testing.F) {
	for _, s := range []string{
		"END\r\n",
		"VALUE a2V5 0 3\r\nabc\r\nEND\r\n",
		"VALUE a2V5 0 0 0\r\n\r\nEND\r\n",
		"VALUE a2V5 0 5\r\nab\r\n\r\nEND\r\n",
		"VALUE a2V5 0 3\r\nabcXYEND\r\n",
		"VALUE other 0 1\r\nx\r\nEND\r\n",
		"VALUE a2V5 0 1\r\nx\r\nVALUE a2V5 0 1\r\ny\r\nEND\r\n",
		"VALUE a2V5 0 -1\r\n",
		"VALUE a2V5 0 99999999999999999999\r\n",
		"VALUE a2V5 0 1048577\r\n",
		"SERVER_ERROR out of memory\r\n",
		"CLIENT_ERROR bad command line format\r\n",
		"ERROR\n",
		"VALUE a2V5\r\n",
		"",
		"END",
	} {
		f.Add([]byte(s))
	}
	key := []byte("a2V5") // encodeKey("key")
	f.Fuzz(func(t *testing.T, answer []byte) {
		// The Client reads through a buffer of this size.
		r := bufio.NewReaderSize(bytes.NewReader(answer), MaxLineLen)
		v, err := readValue(r, key)
		first, _, _ := bytes.Cut(answer, []byte("\n"))
		first = bytes.TrimSuffix(first, []byte("\r"))
		var se *ServerError
		switch {
		case err == nil:
			// A value: announced by the first line, for this key, with
			// the size it says, followed by CRLF.
			f := bytes.Fields(first)
			if len(f) < 4 || string(f[0]) != "VALUE" || !bytes.Equal(f[1], key) {
				t.Fatalf("value %q from an answer starting %q", v, first)
			}
			if n, err := strconv.Atoi(string(f[3])); err != nil || n != len(v) || len(v) > maxClientValue {
				t.Fatalf("value of %d bytes from the line %q", len(v), first)
			}
			if !bytes.HasPrefix(answer[len(first):], []byte("\r\n")) && !bytes.HasPrefix(answer[len(first):], []byte("\n")) {
				t.Fatalf("value from a line without its end: %q", answer)
			}
			if !bytes.Contains(answer, append(append([]byte{}, v...), "\r\n"...)) {
				t.Fatalf("value %q is not in the answer", v)
			}
		case errors.Is(err, ErrNotFound):
			if string(first) != "END" {
				t.Fatalf("a miss from an answer starting %q", first)
			}
		case errors.As(err, &se):
			if len(se.Line) > 200 {
				t.Fatalf("error line of %d bytes kept", len(se.Line))
			}
		}
	})
}
