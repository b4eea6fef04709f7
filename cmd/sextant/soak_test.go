package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak is `make soak` (skipped unless SEXTANT_SOAK is set to a
// duration, e.g. 10m): the real binary under mixed load — publishes, OTLP
// traces, small queries, wide-range queries, costly expressions,
// backtracking regexes, and live subscribers over WebSocket and SSE — for
// that long. It reports the peak RSS, the p99 latency of small queries and
// of publishes and the live lag, checks that nothing acknowledged was
// lost, and that every live subscription got every step (soak_live_test.go).
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SEXTANT_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("set SEXTANT_SOAK=10m (make soak) to run")
	}
	bin := buildBinary(t)
	otlpHTTP := freeAddr(t)
	b := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "3h", "--step", soakStep.String(),
		"--live-delay", soakLiveDelay.String(), "--otlp-http-listen", otlpHTTP)
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
	base := "http://" + b.addr
	client := &http.Client{Timeout: 60 * time.Second}
	started := time.Now()
	deadline := started.Add(d)
	// Live subscribers: 3 WebSocket connections of 4 subscriptions each (the
	// same 4 expressions, evaluated once per step for all of them) and 2 SSE
	// streams, one of them sharing an expression with the WebSockets.
	live := startSoakLive(t, b.addr, 3)

	var (
		mu                     sync.Mutex
		publishLat, smallLat   []time.Duration
		published, tracesAcked atomic.Int64
		errs                   atomic.Int64
	)
	record := func(dst *[]time.Duration, v time.Duration) {
		mu.Lock()
		*dst = append(*dst, v)
		mu.Unlock()
	}
	post := func(u, ct string, body []byte) (int, error) {
		resp, err := client.Post(u, ct, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	get := func(u string) (int, []byte, error) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes(), nil
	}
	var wg sync.WaitGroup
	// Publishers: 4 of them, 20 new gauge series of value 1 per request, so
	// that the store's sum over all of them counts what was acknowledged.
	const perRequest = 20
	for p := range 4 {
		wg.Go(func() {
			for round := 0; time.Now().Before(deadline); round++ {
				now := time.Now().UnixMilli()
				var sb strings.Builder
				fmt.Fprintf(&sb, `{"tags":{"name":"soak.pub","atlas.dstype":"gauge","pub":"p%d"},"metrics":[`, p)
				for i := range perRequest {
					if i > 0 {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, `{"tags":{"series":"r%d-%d"},"timestamp":%d,"value":1}`, round, i, now)
				}
				sb.WriteString("]}")
				t0 := time.Now()
				code, err := post(base+"/api/v1/publish", "application/json", []byte(sb.String()))
				record(&publishLat, time.Since(t0))
				if err != nil || code != 200 {
					errs.Add(1)
					continue
				}
				published.Add(perRequest)
				time.Sleep(200 * time.Millisecond) // a client's pace, not a wait for an event
			}
		})
	}
	// OTLP traces.
	var traceIDs sync.Map
	wg.Go(func() {
		for n := 0; time.Now().Before(deadline); n++ {
			body, tid := crashTraceRequest(n)
			code, err := post("http://"+otlpHTTP+"/v1/traces", "application/x-protobuf", body)
			if err != nil || code != 200 {
				errs.Add(1)
				continue
			}
			traceIDs.Store(fmt.Sprintf("%x", tid[:]), true)
			tracesAcked.Add(1)
			time.Sleep(50 * time.Millisecond) // paces the soak's load generator (real time by design); no timing is asserted
		}
	})
	// Small queries.
	wg.Go(func() {
		for time.Now().Before(deadline) {
			t0 := time.Now()
			code, _, err := get(base + "/api/v1/graph?format=json&s=e-5m&q=" + url.QueryEscape("name,soak.pub,:eq,:sum"))
			record(&smallLat, time.Since(t0))
			if err != nil || code != 200 {
				errs.Add(1)
			}
			time.Sleep(100 * time.Millisecond) // paces the soak's load generator (real time by design); no timing is asserted
		}
	})
	// Costly and hostile queries: wide ranges, big expressions, backtracking
	// regexes. They may be refused (400/422), never a 5xx.
	hostile := []string{
		"/api/v1/graph?format=json&s=0&q=" + url.QueryEscape("name,soak.pub,:eq,(,series,),:by"),
		"/api/v1/graph?format=json&s=e-20y&q=" + url.QueryEscape("name,soak.pub,:eq,:max"),
		"/api/v1/graph?format=json&q=" + url.QueryEscape("name,soak.pub,:eq,:sum"+strings.Repeat(",:dup,:add", 12)),
		"/api/v1/graph?format=json&q=" + url.QueryEscape("name,soak.pub,:eq,:sum"+strings.Repeat(",:dup,:add", 30)),
		"/api/v1/graph?format=json&q=" + url.QueryEscape("name,soak.pub,:eq,series,(?=s)(s+)+x,:re,:and,:sum"),
		"/api/v1/graph?format=png&layout=canvas&w=4000&h=4000&q=" + url.QueryEscape("name,soak.pub,:eq,(,series,pub,),:by"),
	}
	var hostileCodes sync.Map // "query index/status" -> *atomic.Int64
	for w := range 2 {
		wg.Go(func() {
			for i := w; time.Now().Before(deadline); i++ {
				code, body, err := get(base + hostile[i%len(hostile)])
				if err != nil || code >= 500 {
					t.Errorf("hostile query %d: %d %v %.200s", i%len(hostile), code, err, body)
				}
				n, _ := hostileCodes.LoadOrStore(fmt.Sprintf("q%d/%d", i%len(hostile), code), new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	lf := live.check(t, b.addr, started, deadline)
	live.close()

	// Nothing lost: every acknowledged datapoint is counted by the store.
	time.Sleep(time.Second) // paces the soak's load generator (real time by design); no timing is asserted
	// Each series has one value 1 in one step: the sum over the steps
	// counts the series. (A graph point T covers (T-step, T], the last one
	// ends at e: e is past the last publish.)
	from, to := started.Add(-time.Minute).UnixMilli(), time.Now().Add(30*time.Second).UnixMilli()
	code, body, err := get(fmt.Sprintf("%s/api/v1/graph?format=json&step=10s&s=%d&e=%d&q=%s", base, from, to,
		url.QueryEscape("name,soak.pub,:eq,:sum")))
	if err != nil || code != 200 {
		t.Fatalf("count query: %d %v %.300s", code, err, body)
	}
	var g struct{ Values [][]float64 }
	json.Unmarshal(body, &g)
	stored := 0.0
	for _, row := range g.Values {
		for _, v := range row {
			if v == v {
				stored += v
			}
		}
	}
	if int64(stored+0.5) != published.Load() {
		t.Errorf("acknowledged %d datapoints, the store counts %v", published.Load(), stored)
	}
	lost := 0
	traceIDs.Range(func(k, _ any) bool {
		if code, _, _ := get(base + "/api/traces/" + k.(string)); code != 200 {
			lost++
		}
		return true
	})
	if lost > 0 {
		t.Errorf("%d of %d acknowledged traces not found", lost, tracesAcked.Load())
	}
	p99 := func(v []time.Duration) time.Duration {
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)*99/100]
	}
	t.Logf("soak %v: peak RSS %d MiB; publish p99 %v (%d requests, %d datapoints); small query p99 %v (%d); %d traces; %d errors",
		d, vmHWM(t, b.cmd.Process.Pid)>>10, p99(publishLat), len(publishLat), published.Load(), p99(smallLat), len(smallLat),
		tracesAcked.Load(), errs.Load())
	var codes []string
	hostileCodes.Range(func(k, v any) bool {
		codes = append(codes, fmt.Sprintf("%s×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(codes)
	t.Logf("hostile queries (query/status×count): %s", strings.Join(codes, " "))
	slices.Sort(lf.lags)
	pct := func(v []time.Duration, p float64) time.Duration {
		if len(v) == 0 {
			return 0
		}
		return v[int(p*float64(len(v)-1))]
	}
	t.Logf("live: %d subscriptions, %d live steps received; lag from a step's close to its arrival p50 %v, p99 %v, max %v (--live-delay %v included); "+
		"the sum's live value was below the stored one (late datapoints) at %d of %d steps",
		lf.subscriptions, lf.steps, pct(lf.lags, 0.5), pct(lf.lags, 0.99), pct(lf.lags, 1), soakLiveDelay, lf.late, lf.compared)
	if errs.Load() > 0 {
		t.Errorf("%d requests failed", errs.Load())
	}
}
