package disk

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the Pebble store it opens (compactions, flushes) must be stopped by the test that started it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
