package vocab

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPinpointTransaction pins the derivation: stored traces and collectors
// of other versions depend on it.
func TestPinpointTransaction(t *testing.T) {
	trace, seed := PinpointTransaction([]byte("front^1760000000000^7"))
	assert.Equal(t, "d0eb32e5057b70c3e182c146197a3f1a", trace.String())
	assert.Equal(t, uint64(0x2f20b8da6e7f2fc8), seed)
}
