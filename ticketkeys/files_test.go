// files_test.go: the nginx and Apache key files: sizes, order, the
// include file, rotation of slot 0 and erasure of expired keys.

package ticketkeys

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFiles(t *testing.T) {
	c := newClock(epochStart.Add(period / 2))
	ks, _ := fleet(t, c, "a")
	k := ks[0]
	refresh(t, k) // current and next
	dir := t.TempDir()
	if err := k.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	slots := k.NginxSlots()
	if slots != 2+int(retention/period) {
		t.Fatalf("slots = %d", slots)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cur := k.epochAt(c.now())
	inc := string(read(NginxInclude))
	for i := range slots {
		name := filepath.Join(dir, "nginx-"+string(rune('0'+i))+".key")
		b := read(filepath.Base(name))
		if len(b) != NginxKeyLen {
			t.Fatalf("%s: %d bytes", name, len(b))
		}
		if !strings.Contains(inc, "ssl_session_ticket_key "+name+";") {
			t.Fatalf("include lacks %s:\n%s", name, inc)
		}
		want := map[int]uint64{0: cur, 1: cur + 1}
		if e, ok := want[i]; ok && binary.BigEndian.Uint64(b[:8]) != e {
			t.Fatalf("slot %d holds epoch %d, want %d", i, binary.BigEndian.Uint64(b[:8]), e)
		}
	}
	ap := read(ApacheFile)
	if len(ap) != ApacheKeyLen || binary.BigEndian.Uint64(ap[:8]) != cur {
		t.Fatalf("apache file: %d bytes, epoch %d", len(ap), binary.BigEndian.Uint64(ap[:8]))
	}
	if bytes.Equal(ap[16:], read("nginx-0.key")[16:48]) {
		t.Fatal("apache and nginx files share key bytes")
	}
	first := read("nginx-0.key")
	// A period later slot 0 is the next epoch's key (already in slot 1),
	// and the former current key moved to the past slots.
	c.add(period)
	refresh(t, k)
	if err := k.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	if got := read("nginx-0.key"); binary.BigEndian.Uint64(got[:8]) != cur+1 {
		t.Fatalf("after a period slot 0 holds epoch %d", binary.BigEndian.Uint64(got[:8]))
	}
	if got := read("nginx-2.key"); !bytes.Equal(got, first) {
		t.Fatal("the previous key is not in slot 2")
	}
	// Past the retention no file holds it.
	c.add(retention + period)
	refresh(t, k)
	if err := k.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for i := range slots {
		if bytes.Equal(read("nginx-"+string(rune('0'+i))+".key"), first) {
			t.Fatalf("slot %d still holds a key past its retention", i)
		}
	}
	if err := k.WriteFiles(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("WriteFiles into a missing directory succeeded")
	}
}
