package tsdbtest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the stores its tests open must be stopped by the test that started it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
