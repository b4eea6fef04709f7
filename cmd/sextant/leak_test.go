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
// about a second later, so it is not a leak of ours. Keep-alive
// connections pooled by http.DefaultTransport are the process's, shared by
// the tests' clients and the in-process servers' own (notifiers, webhooks):
// idle ones are closed first, and the two goroutines of a pooled
// connection are not counted.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/dlclark/regexp2.runClock"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
