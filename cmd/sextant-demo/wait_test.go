package main

import (
	"testing"
	"time"
)

// waitFor polls cond until it holds, and fails t when timeout passes
// first. The demo runs real services and a real server binary on real
// sockets, which a testing/synctest bubble cannot hold, so the test waits
// for what it needs to see instead of sleeping a fixed time. The timeout
// only bounds a failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", timeout, what)
		}
		<-tick.C
	}
}
