package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitFor polls cond until it holds, and fails t when timeout passes
// first. The tests of this package run the real server on real sockets, or
// the real binary in another process, which a testing/synctest bubble
// cannot hold (a goroutine in a socket read is not durably blocked, so the
// bubble's clock would never move); they wait for the condition they need
// instead of sleeping for a time that is too short on a loaded machine and
// too long on an idle one. The timeout only bounds a failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %v for %s", timeout, what)
		}
		<-tick.C
	}
}

// metricValue returns the value of the first sample of metric in a
// Prometheus text exposition, or 0 when it is absent.
func metricValue(body, metric string) float64 {
	for _, line := range strings.Split(body, "\n") {
		name, rest, ok := strings.Cut(line, " ")
		if !ok || (name != metric && !strings.HasPrefix(name, metric+"{")) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			return v
		}
	}
	return 0
}

// selfMetricsStored waits until the server at addr has appended its own
// metrics to its store at least once.
func selfMetricsStored(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the server to store its own metrics", func() bool {
		code, body := get(t, "http://"+addr+"/metrics")
		return code == 200 && metricValue(body, "sextant_tsdb_datapointsAppended_total") > 0
	})
}
