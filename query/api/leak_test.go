package api_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the stores and HTTP servers its tests start must be
// stopped by the test that started it, and the benchmarks' shared setup
// (benchEnv) is closed before the check.
//
// regexp2 (the Atlas-compatible regular expressions) keeps one process-wide
// clock goroutine while any match timeout is pending and ends it by itself
// about a second later, so it is not a leak of ours.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := closeBench(); err != nil {
		fmt.Fprintln(os.Stderr, "close the benchmarks' store:", err)
		code = max(code, 1)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
