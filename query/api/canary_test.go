package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/canary"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const canaryStep = int64(60_000)

// canaryFleet publishes a baseline and a canary of one service every
// minute from 3 h before now to 2 h after it: latency with the canary's
// factor, errors the same on both sides.
func canaryFleet(now int64, latencyFactor float64) []querytest.Input {
	const n = 300
	start := (now/canaryStep)*canaryStep - 179*canaryStep
	noisy := func(seed uint64, mean, rel float64) []float64 {
		rng := rand.New(rand.NewPCG(seed, 9))
		out := make([]float64, n)
		for i := range out {
			out[i] = mean * (1 + rel*rng.NormFloat64())
		}
		return out
	}
	in := func(name, cluster string, vals []float64) querytest.Input {
		return querytest.Input{Tags: tags.New("name", name, "nf.app", "api", "nf.cluster", cluster), Start: start, Values: vals}
	}
	return []querytest.Input{
		in("latency", "api-v1", noisy(1, 100, 0.05)),
		in("latency", "api-v2", noisy(2, 100*latencyFactor, 0.05)),
		in("errors", "api-v1", noisy(3, 2, 0.1)),
		in("errors", "api-v2", noisy(4, 2, 0.1)),
	}
}

// canaryMux serves the canary API over a store holding inputs, with its
// clock at now; the runner is not running.
func canaryMux(t *testing.T, now int64, kv tsdb.KV, notify canary.NotifyFunc, inputs ...querytest.Input) (*http.ServeMux, *canary.Runner) {
	t.Helper()
	clock := func() time.Time { return time.UnixMilli(now) }
	if now == 0 {
		clock = time.Now
		now = time.Now().UnixMilli()
	}
	j, err := canary.New(canary.Options{Querier: querytest.Open(t, canaryStep, now, inputs...), StorageStep: canaryStep, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := canary.NewRunner(canary.RunnerOptions{Judge: j, KV: kv, Notify: notify, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewCanary(api.CanaryOptions{Judge: j, Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	return mux, runner
}

const judgeBody = `{"baseline":"nf.cluster,api-v1,:eq","canary":"nf.cluster,api-v2,:eq","s":"e-3h","e":"now","step":"60s",
"metrics":[{"name":"latency","q":"name,latency,:eq,:avg","direction":"increase","critical":true,"weight":1},
{"name":"errors","q":"name,errors,:eq,:sum","direction":"increase"}],"thresholds":{"pass":75,"marginal":50}}`

func post(t *testing.T, base, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func TestCanaryJudgeAPI(t *testing.T) {
	t.Parallel()
	now := t0 + 24*3600_000
	for _, tc := range []struct {
		name    string
		factor  float64
		result  string
		latency string
	}{
		{"regression", 1.3, "fail", "high"},
		{"healthy", 1.0, "pass", "pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mux, _ := canaryMux(t, now, tsdbtest.NewKV(), nil, canaryFleet(now, tc.factor)...)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			code, a := post(t, srv.URL, "/api/v1/canary/judge", judgeBody)
			if code != 200 || a["result"] != tc.result {
				t.Fatalf("judge = %d %v", code, a)
			}
			ms := a["metrics"].([]any)
			lat, errs := ms[0].(map[string]any), ms[1].(map[string]any)
			if lat["classification"] != tc.latency || errs["classification"] != "pass" {
				t.Errorf("latency %v errors %v", lat["classification"], errs["classification"])
			}
			// The contract's keys.
			for _, k := range []string{"score", "result", "reason", "metrics"} {
				if _, ok := a[k]; !ok {
					t.Errorf("answer lacks %q", k)
				}
			}
			for _, k := range []string{"name", "classification", "pValue", "effect", "baseline", "canary", "reason"} {
				if _, ok := lat[k]; !ok {
					t.Errorf("metric lacks %q", k)
				}
			}
			eff := lat["effect"].(map[string]any)
			if _, ok := eff["ratio"].(float64); !ok {
				t.Errorf("effect.ratio = %v", eff["ratio"])
			}
			if _, ok := eff["hodgesLehmann"].(float64); !ok {
				t.Errorf("effect.hodgesLehmann = %v", eff["hodgesLehmann"])
			}
			b := lat["baseline"].(map[string]any)
			if b["count"] != 180.0 || b["median"] == nil || b["mean"] == nil {
				t.Errorf("baseline = %v", b)
			}
		})
	}
}

func TestCanaryAPIErrors(t *testing.T) {
	t.Parallel()
	now := t0 + 24*3600_000
	mux, _ := canaryMux(t, now, tsdbtest.NewKV(), nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cases := []struct {
		path, body string
		code       int
		param      string
	}{
		{"/api/v1/canary/judge", `{`, 400, "body"},
		{"/api/v1/canary/judge", `{"baseline":1}`, 400, "baseline"},
		{"/api/v1/canary/judge", `{"interval":"5m"}`, 400, "interval"},
		{"/api/v1/canary/judge", strings.Replace(judgeBody, `"name,errors,:eq,:sum"`, `"name,errors,:eq,:sum,:bogus"`, 1), 400, "metrics[1].q"},
		{"/api/v1/canary/judge", strings.Replace(judgeBody, `"60s"`, `"0s"`, 1), 400, "step"},
		{"/api/v1/canary/judge", strings.Replace(judgeBody, `"increase"`, `"up"`, 1), 400, "metrics[0].direction"},
		{"/api/v1/canary/judge", strings.Replace(judgeBody, `"pass":75`, `"pass":175`, 1), 400, "thresholds.pass"},
		{"/api/v1/canary/runs", judgeBody, 400, "s"},
		{"/api/v1/canary/runs", strings.Replace(judgeBody, `"s":"e-3h","e":"now",`, `"lifetime":"1h",`, 1), 400, "interval"},
		{"/api/v1/canary/runs", strings.Replace(judgeBody, `"s":"e-3h"`, `"interval":"5m","lifetime":"1h","webhook":"mailto:x"`, 1), 400, "webhook"},
	}
	for _, tc := range cases {
		code, m := post(t, srv.URL, tc.path, tc.body)
		if code != tc.code || m["param"] != tc.param || m["type"] != "error" || !strings.Contains(m["message"].(string), tc.param) {
			t.Errorf("POST %s %.60s = %d %v, want %d naming %s", tc.path, tc.body, code, m, tc.code, tc.param)
		}
	}
	if code, body := getStatus(t, srv.URL+"/api/v1/canary/runs/0123456789abcdef"); code != 404 || !strings.Contains(body, `"type":"error"`) {
		t.Errorf("unknown run = %d %s", code, body)
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// receiver is a real webhook receiver.
type receiver struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad body", 400)
		return
	}
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, m)
	rc.mu.Unlock()
}

// TestCanaryRunWebhook starts a continuous run through the handler, lets
// the fake clock run, and checks that the verdict reached a real HTTP
// receiver and the run record answers GET.
func TestCanaryRunWebhook(t *testing.T) {
	var rc receiver
	hook := httptest.NewServer(&rc) // outside the bubble: a real server
	defer hook.Close()
	synctest.Test(t, func(t *testing.T) {
		now := time.Now().UnixMilli()
		// No keep-alive: no connection outlives the bubble.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		mux, runner := canaryMux(t, 0, tsdbtest.NewKV(), api.Webhook(client), canaryFleet(now, 1.0)...)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runner.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}()
		body := strings.Replace(judgeBody, `"s":"e-3h","e":"now",`, `"interval":"10m","lifetime":"30m","webhook":"`+hook.URL+`/hook",`, 1)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/canary/runs", strings.NewReader(body)))
		var created struct{ ID string }
		if err := json.Unmarshal(rec.Body.Bytes(), &created); rec.Code != 201 || err != nil || created.ID == "" {
			t.Fatalf("start run = %d %s", rec.Code, rec.Body)
		}
		getRun := func() map[string]any {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/canary/runs/"+created.ID, nil))
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); rec.Code != 200 || err != nil {
				t.Fatalf("get run = %d %s", rec.Code, rec.Body)
			}
			return m
		}
		time.Sleep(15 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if m := getRun(); m["state"] != "running" || len(m["intervals"].([]any)) != 1 {
			t.Errorf("after 15m: state %v, %d intervals", m["state"], len(m["intervals"].([]any)))
		}
		time.Sleep(20 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		m := getRun()
		if m["state"] != "done" || m["verdict"] != "pass" || len(m["intervals"].([]any)) != 3 || m["notified"] != "ok" {
			t.Fatalf("after 35m: %v %v %d intervals, notified %v (%v)", m["state"], m["verdict"], len(m["intervals"].([]any)), m["notified"], m["reason"])
		}
		iv := m["intervals"].([]any)[2].(map[string]any)
		if a := iv["answer"].(map[string]any); a["result"] != "pass" {
			t.Errorf("last interval: %v", a)
		}
	})
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bodies) != 1 || rc.bodies[0]["verdict"] != "pass" || len(rc.bodies[0]["intervals"].([]any)) != 3 {
		t.Fatalf("webhook received %d bodies: %v", len(rc.bodies), rc.bodies)
	}
}

// brokenStore fails every read, as a store with a broken disk would.
type brokenStore struct{ tsdb.Querier }

func (brokenStore) Fetch(context.Context, tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	return nil, errors.New("read block 7: input/output error")
}

// TestCanaryErrorBlame checks that a judgement the store could not read is
// the server's fault (500), while an expression the evaluator refuses is
// the caller's (400 naming the metric).
func TestCanaryErrorBlame(t *testing.T) {
	t.Parallel()
	now := t0 + 24*3600_000
	clock := func() time.Time { return time.UnixMilli(now) }
	j, err := canary.New(canary.Options{Querier: brokenStore{}, StorageStep: canaryStep, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := canary.NewRunner(canary.RunnerOptions{Judge: j, KV: tsdbtest.NewKV(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewCanary(api.CanaryOptions{Judge: j, Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if code, m := post(t, srv.URL, "/api/v1/canary/judge", judgeBody); code != http.StatusInternalServerError {
		t.Errorf("judge over a failing store = %d %v, want 500", code, m)
	}

	good, _ := canaryMux(t, now, tsdbtest.NewKV(), nil, canaryFleet(now, 1.5)...)
	gsrv := httptest.NewServer(good)
	defer gsrv.Close()
	body := strings.Replace(judgeBody, `"name,errors,:eq,:sum"`, `"name,errors,:eq,:sum,:stat-max,:add"`, 1)
	if code, m := post(t, gsrv.URL, "/api/v1/canary/judge", body); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["message"]), "metrics[1].q") {
		t.Errorf("judge of a refused expression = %d %v, want 400 naming metrics[1].q", code, m)
	}
}
