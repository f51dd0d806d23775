package peer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestChangeMembersRefusesABadList(t *testing.T) {
	c := newCluster(t, 2, nil)
	p := c.peers[c.names[0]]
	before := p.Members()
	for _, bad := range [][]string{nil, {c.names[0], c.names[0]}, {c.names[0], ""}} {
		err := p.ChangeMembers(bad)
		if err == nil || !strings.HasPrefix(err.Error(), "peer: member list: ring: ") {
			t.Errorf("ChangeMembers(%q) = %v, want a member-list error", bad, err)
		}
	}
	if got := p.Members(); len(got) != len(before) {
		t.Fatalf("a refused list changed the ring: %v -> %v", before, got)
	}
	if err := p.ChangeMembers(c.names[:1]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(p.Members()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("members %v after ChangeMembers of one", p.Members())
		}
		time.Sleep(time.Millisecond)
	}
	p.Close()
	if err := p.ChangeMembers(c.names); !errors.Is(err, ErrClosed) {
		t.Errorf("ChangeMembers after Close = %v, want ErrClosed", err)
	}
}
