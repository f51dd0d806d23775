package ticketkeys

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tlsring/tlsring/internal/memstore"
)

// TestIsNotFound: a miss is ErrNotFound (wrapped or not) or a Store's own
// error with NotFound() true (peer.ErrNotFound, the test store's).
func TestIsNotFound(t *testing.T) {
	for err, want := range map[error]bool{
		ErrNotFound:                         true,
		fmt.Errorf("get: %w", ErrNotFound):  true,
		memstore.ErrNotFound:                true,
		errors.New("ticketkeys: not found"): false,
		nil:                                 false,
	} {
		if got := isNotFound(err); got != want {
			t.Errorf("isNotFound(%v) = %v, want %v", err, got, want)
		}
	}
}
