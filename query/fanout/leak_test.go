package fanout_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them.
// regexp2 keeps a process-wide clock goroutine for match timeouts that
// ends by itself; pebble's and net/http's idle goroutines are closed by
// the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"))
}
