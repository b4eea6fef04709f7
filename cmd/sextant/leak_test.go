package main

import (
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a goroutine outlives them: every
// goroutine that the servers, stores and clients its tests start must be
// stopped by the test that started it.
//
// regexp2 (the Atlas-compatible regular expressions) keeps one process-wide
// clock goroutine while any match timeout is pending and ends it by itself
// about a second later, so it is not a leak of ours. Idle keep-alive
// connections pooled by http.DefaultTransport (tests use http.Get) are
// closed first: a pool, not a leak.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock")); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
