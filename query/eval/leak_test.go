package eval_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the stores its tests open must be stopped by the test that started it.
//
// regexp2 (the Atlas-compatible regular expressions) keeps one process-wide
// clock goroutine while any match timeout is pending and ends it by itself
// about a second later, so it is not a leak of ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
}
