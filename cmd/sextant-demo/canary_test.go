package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCanaryFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"--canary-latency", "1.3", "--canary-errors", "0.05"}, nil)
	if err != nil || !c.Canary.enabled() || c.Canary.Latency != 1.3 || c.Canary.Errors != 0.05 {
		t.Errorf("parseFlags = %+v, %v", c.Canary, err)
	}
	if c, _ := parseFlags(nil, nil); c.Canary.enabled() {
		t.Error("canary on by default")
	}
	for _, args := range [][]string{{"--canary-latency", "-1"}, {"--canary-errors", "2"}} {
		if _, err := parseFlags(args, nil); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("parseFlags(%v) = %v, want an error naming %s", args, err, args[0])
		}
	}
}

// TestDemoCanaryAgainstServer runs the demo with a slow canary against
// the real server and judges it: the canary's playback latency is high.
func TestDemoCanaryAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	addr := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := config{Sextant: "http://" + addr, Host: "127.0.0.1", Step: time.Second, RPS: 80, Fault: "none",
		Canary: canaryConfig{Latency: 10}} // far beyond scheduling noise on a loaded machine
	go func() { done <- runDemo(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	<-ready
	started := time.Now()
	// Traffic until both sides have published calls in at least 8 steps
	// after the first two (a loaded machine may need longer than 12 s of
	// wall time for that); the judgement needs at least 5 per side.
	steps := func(node string) int {
		n := 0
		for _, l := range graph(t, addr, "name,ipc.server.call,:eq,nf.app,playback,:eq,:and,statistic,count,:eq,:and,nf.cluster,"+node+",:eq,:and,:sum") {
			for _, v := range l.values {
				if v > 0 {
					n++
				}
			}
		}
		return n
	}
	waitFor(t, 3*time.Minute, "8 steps of calls at the baseline and at the canary", func() bool {
		return time.Since(started) > 12*time.Second && steps("playback-baseline") >= 10 && steps("playback-canary") >= 10
	})
	stopped := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	body := `{"baseline":"nf.cluster,playback-baseline,:eq","canary":"nf.cluster,playback-canary,:eq","s":"START","e":"END","step":"1s",
"metrics":[{"name":"latency","q":"name,ipc.server.call,:eq,nf.app,playback,:eq,:and,:dist-avg","direction":"increase","critical":true},
{"name":"calls","q":"name,ipc.server.call,:eq,nf.app,playback,:eq,:and,statistic,count,:eq,:and,:sum","direction":"decrease"}]}`
	// The window of steady traffic, whenever the judgement runs.
	body = strings.NewReplacer("START", strconv.FormatInt(started.Add(2*time.Second).UnixMilli(), 10),
		"END", strconv.FormatInt(stopped.Add(-time.Second).UnixMilli(), 10)).Replace(body)
	resp, err := http.Post("http://"+addr+"/api/v1/canary/judge", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Result  string
		Reason  string
		Metrics []struct {
			Name, Classification, Reason string
			Baseline, Canary             struct{ Count int }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("judge: %d %v", resp.StatusCode, err)
	}
	lat := a.Metrics[0]
	if lat.Classification != "high" || a.Result != "fail" || lat.Baseline.Count < 5 || lat.Canary.Count < 5 {
		t.Errorf("slow canary judged %s/%s: %+v (%s)", lat.Classification, a.Result, a.Metrics, a.Reason)
		for _, l := range graph(t, addr, "name,ipc.server.call,:eq,nf.app,playback,:eq,:and,statistic,count,:eq,:and,(,nf.node,),:by") {
			t.Logf("%v: %v", l.tags, l.values)
		}
	}
}
