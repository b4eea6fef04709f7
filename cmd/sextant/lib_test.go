package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/lib"
)

// signalTransport tells the test when each publish request completed.
type signalTransport struct{ done chan int }

func (s signalTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	code := -1
	if err == nil {
		code = resp.StatusCode
	}
	s.done <- code
	return resp, err
}

// TestLibAgainstServer publishes with lib's Publisher to a real sextant
// serve for several steps and reads the values back through the graph
// API: counter rates, a timer's :dist-avg and percentile estimates.
func TestLibAgainstServer(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t) // step 1 s
	addr := startServe(t, cfg)

	reg := lib.NewRegistry(lib.RegistryOptions{})
	sent := signalTransport{done: make(chan int, 64)}
	pub, err := lib.NewPublisher(reg, lib.PublisherOptions{
		URI: "http://" + addr + "/api/v1/publish", Step: time.Second, NoEnvTags: true,
		CommonTags: map[string]string{"nf.app": "libtest"}, Client: &http.Client{Transport: sent},
	})
	if err != nil {
		t.Fatal(err)
	}
	requests := reg.Counter("libtest.requests", "path", "home")
	latency := reg.Timer("libtest.latency")
	pct := reg.PercentileTimer("libtest.pct")
	nextStep := func() {
		t.Helper()
		select {
		case code := <-sent.done:
			if code != 200 {
				t.Fatalf("publish answered %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no publish within 10 s")
		}
	}

	start := time.Now()
	pub.Start()
	nextStep()
	// Each step starts when the previous one was sent, so every update
	// below lands in the step the loop means.
	const steps = 4
	for k := 1; k <= steps; k++ {
		for range 10 * k {
			requests.Increment()
		}
		for _, ms := range []int{5, 15, 40} { // mean 20 ms
			latency.Record(time.Duration(ms*k) * time.Millisecond)
		}
		for i := 1; i <= 1000; i++ {
			pct.Record(time.Duration(i) * time.Millisecond)
		}
		nextStep()
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer closeCancel()
	if err := pub.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	end := time.Now().Add(2 * time.Second)

	// A counter incremented 10k times in step k reads 10k per second.
	got := published(first(graph(t, addr, "name,libtest.requests,:eq,statistic,count,:eq,:and,nf.app,libtest,:eq,:and,:sum", start, end)))
	if fmt.Sprint(got) != "[10 20 30 40]" {
		t.Errorf("counter rates %v, want [10 20 30 40]", got)
	}
	// A timer's :dist-avg is the mean recorded in each step, in seconds.
	got = published(first(graph(t, addr, "name,libtest.latency,:eq,:dist-avg", start, end)))
	if len(got) != steps {
		t.Fatalf(":dist-avg %v, want %d steps", got, steps)
	}
	for k, v := range got {
		if want := 0.020 * float64(k+1); math.Abs(v-want) > 1e-9 {
			t.Errorf(":dist-avg step %d = %v, want %v", k+1, v, want)
		}
	}
	// Percentiles of 1..1000 ms, uniform, from the bucket counters.
	for _, p := range []float64{50, 90, 99} {
		got := published(first(graph(t, addr, fmt.Sprintf("name,libtest.pct,:eq,(,%v,),:percentiles", p), start, end)))
		if len(got) != steps {
			t.Fatalf("p%v: %v, want %d steps", p, got, steps)
		}
		for _, v := range got {
			if want := p / 100; math.Abs(v-want)/want > 0.10 {
				t.Errorf("p%v = %.4f s, want %.3f s within 10%%", p, v, want)
			}
		}
	}
	// The publisher's own counters went out too.
	if sentDps := published(first(graph(t, addr, "name,spectator.measurements,:eq,id,sent,:eq,:and,:sum", start, end))); len(sentDps) == 0 {
		t.Error("spectator.measurements{id=sent} was not published")
	}
}

// first is the only line of a single-line graph.
func first(lines map[string][]float64) []float64 {
	for _, v := range lines {
		return v
	}
	return nil
}

// graph queries /api/v1/graph as JSON and returns, per line, its legend
// and values (NaN for "NaN").
func graph(t *testing.T, addr, q string, s, e time.Time) map[string][]float64 {
	t.Helper()
	v := url.Values{"q": {q}, "s": {fmt.Sprint(s.UnixMilli())}, "e": {fmt.Sprint(e.UnixMilli())}, "step": {"1s"}, "format": {"json"}, "tz": {"UTC"}}
	resp, err := http.Get("http://" + addr + "/api/v1/graph?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g struct {
		Legend []string
		Values [][]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode != 200 {
		t.Fatalf("graph %s: %d %v", q, resp.StatusCode, err)
	}
	out := map[string][]float64{}
	for _, row := range g.Values {
		for i, x := range row {
			f, ok := x.(float64)
			if !ok {
				f = math.NaN()
			}
			out[g.Legend[i]] = append(out[g.Legend[i]], f)
		}
	}
	return out
}

// published is the run of steps that saw updates: it drops the NaNs of
// the steps before and after the publisher ran, and the zeros of the steps
// it published idle meters in (an idle timer's :dist-avg is 0/0, which
// Atlas's :div makes 0).
func published(xs []float64) []float64 {
	i, j := 0, len(xs)
	for i < j && (math.IsNaN(xs[i]) || xs[i] == 0) {
		i++
	}
	for j > i && (math.IsNaN(xs[j-1]) || xs[j-1] == 0) {
		j--
	}
	return xs[i:j]
}

// TestLibRetryAgainstServer: a server that answers 503 before it answers
// 200 (here a proxy in front of the real one) still gets the step, after
// the publisher's retries.
func TestLibRetryAgainstServer(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addr := startServe(t, cfg)
	target, _ := url.Parse("http://" + addr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failures atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failures.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	reg := lib.NewRegistry(lib.RegistryOptions{})
	pub, err := lib.NewPublisher(reg, lib.PublisherOptions{URI: front.URL + "/api/v1/publish", Step: time.Second, NoEnvTags: true,
		CommonTags: map[string]string{"nf.app": "retrytest"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 30 {
		reg.Counter("retry.requests").Increment()
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer closeCancel()
	if err := pub.Close(closeCtx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := failures.Load(); n < 3 {
		t.Fatalf("%d requests reached the proxy; the publisher did not retry", n)
	}
	if c := reg.Counter("spectator.measurements", "id", "sent").Count(); c == 0 {
		t.Error("spectator.measurements{id=sent} did not count the retried batch")
	}
	got := published(first(graph(t, addr, "name,retry.requests,:eq,:sum", start.Add(-2*time.Second), time.Now().Add(3*time.Second))))
	if fmt.Sprint(got) != "[30]" {
		t.Errorf("after the retries the server has %v, want [30]", got)
	}
}
