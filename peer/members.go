// members.go: changing the member list with an error for a list that
// cannot be a ring, for callers that read it from somewhere a person edits.

package peer

import (
	"fmt"

	"github.com/tlsring/tlsring/ring"
)

// CheckMembers reports what is wrong with a member list that SetMembers
// would ignore: an empty list, an empty name, a name listed twice.
func CheckMembers(members []string) error {
	if _, err := ring.New(members); err != nil {
		return fmt.Errorf("peer: member list: %w", err)
	}
	return nil
}

// ChangeMembers is SetMembers for a list that may be wrong: it returns
// CheckMembers's error, or ErrClosed, instead of logging it and keeping the
// current ring. A list without this member hands its entries off, as
// SetMembers does.
func (p *Peer) ChangeMembers(members []string) error {
	if err := CheckMembers(members); err != nil {
		return err
	}
	if p.closed.Load() {
		return ErrClosed
	}
	p.SetMembers(members)
	return nil
}
