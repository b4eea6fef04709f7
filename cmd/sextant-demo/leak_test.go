package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the demo services and load generator its tests run must be stopped by the test that started it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
