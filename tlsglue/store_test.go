package tlsglue

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tlsring/tlsring/internal/memstore"
)

// TestIsNotFound: a Store reports a miss with ErrNotFound (wrapped or not)
// or with its own error that has NotFound() true, as peer.ErrNotFound and
// the test store do.
func TestIsNotFound(t *testing.T) {
	for err, want := range map[error]bool{
		ErrNotFound:                               true,
		fmt.Errorf("lookup: %w", ErrNotFound):     true,
		memstore.ErrNotFound:                      true,
		fmt.Errorf("x: %w", memstore.ErrNotFound): true,
		errors.New("tlsglue: session not found"):  false, // same text, another error
		nil:                                       false,
	} {
		if got := isNotFound(err); got != want {
			t.Errorf("isNotFound(%v) = %v, want %v", err, got, want)
		}
	}
}
