package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// liveFleet is a baseline and a canary publishing every minute from 10
// minutes before t0 to 2 hours after it (a store accepts data ahead of
// its clock in tests).
func liveFleet(t0 int64, latencyFactor float64) []querytest.Input {
	const n = 130
	start := (t0/step)*step - 10*step
	in := func(name, cluster string, vals []float64) querytest.Input {
		return querytest.Input{Tags: tags.New("name", name, "nf.app", "api", "nf.cluster", cluster), Start: start, Values: vals}
	}
	return []querytest.Input{
		in("latency", "api-baseline", noisy(1, n, 100, 0.05)),
		in("latency", "api-canary", noisy(2, n, 100*latencyFactor, 0.05)),
		in("errors", "api-baseline", noisy(3, n, 2, 0.3)),
		in("errors", "api-canary", noisy(4, n, 2, 0.3)),
	}
}

// notified records webhook calls; the first failFirst calls fail with
// failWith (a receiver that is down, or one that refuses).
type notified struct {
	mu        sync.Mutex
	calls     []*Run
	urls      []string
	at        []time.Time
	failFirst int
	failWith  error
}

func (n *notified) notify(_ context.Context, url string, r *Run) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, r)
	n.urls = append(n.urls, url)
	n.at = append(n.at, time.Now())
	if len(n.calls) <= n.failFirst {
		return n.failWith
	}
	return nil
}

func (n *notified) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.calls)
}

func runRequest() *RunRequest {
	r := &RunRequest{Request: *request(), Interval: "10m", Lifetime: "1h", Webhook: "http://hooks.example/canary"}
	r.S, r.E = "", "" // from now on
	return r
}

// startRunner runs a runner in the bubble until the returned stop is
// called.
func startRunner(t *testing.T, j *Judge, kv tsdb.KV, n *notified) (*Runner, func()) {
	t.Helper()
	r, err := NewRunner(RunnerOptions{Judge: j, KV: kv, Notify: n.notify})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

func TestRunFailsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now().UnixMilli()
		j, err := New(Options{Querier: querytest.Open(t, step, t0, liveFleet(t0, 1.3)...), StorageStep: step})
		if err != nil {
			t.Fatal(err)
		}
		var n notified
		r, stop := startRunner(t, j, tsdbtest.NewKV(), &n)
		defer stop()
		run, err := r.Start(context.Background(), runRequest())
		if err != nil {
			t.Fatal(err)
		}
		if run.State != StateRunning || run.Next != run.Start+10*step {
			t.Errorf("started run: %+v", run)
		}
		time.Sleep(9 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if n.count() != 0 {
			t.Fatal("notified before the first interval")
		}
		time.Sleep(2 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got, err := r.Get(context.Background(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateDone || got.Verdict != Fail || len(got.Intervals) != 1 || got.Notified != "ok" {
			t.Fatalf("after one interval: state %s verdict %s intervals %d notified %q", got.State, got.Verdict, len(got.Intervals), got.Notified)
		}
		a := got.Intervals[0].Answer
		if a == nil || a.Metrics[0].Classification != High || !a.Metrics[1].Passed {
			t.Errorf("interval answer: %+v %+v", a, a.Metrics)
		}
		if n.count() != 1 || n.urls[0] != "http://hooks.example/canary" || n.calls[0].Verdict != Fail || len(n.calls[0].Intervals) != 1 {
			t.Errorf("webhook calls: %d %v", n.count(), n.urls)
		}
	})
}

// TestRunPassesAndResumes judges a healthy canary every 10 minutes for an
// hour, with the server restarting half-way: the second runner resumes
// the run from the KV store and reaches the verdict.
func TestRunPassesAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now().UnixMilli()
		j, err := New(Options{Querier: querytest.Open(t, step, t0, liveFleet(t0, 1)...), StorageStep: step})
		if err != nil {
			t.Fatal(err)
		}
		kv := tsdbtest.NewKV()
		var n notified
		r, stop := startRunner(t, j, kv, &n)
		run, err := r.Start(context.Background(), runRequest())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		stop()
		got, err := r.Get(context.Background(), run.ID)
		if err != nil || got.State != StateRunning || len(got.Intervals) != 2 {
			t.Fatalf("before restart: %+v, %v", got, err)
		}
		time.Sleep(10 * time.Minute) // down for a while
		r2, stop2 := startRunner(t, j, kv, &n)
		defer stop2()
		synctest.Wait()
		time.Sleep(30 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got, err = r2.Get(context.Background(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateDone || got.Verdict != Pass || got.Notified != "ok" {
			t.Fatalf("verdict: %s %s %q (%s)", got.State, got.Verdict, got.Notified, got.Reason)
		}
		// 10, 20, then the missed 30 at restart (35), 40, 50, 60.
		if len(got.Intervals) != 6 {
			t.Errorf("%d intervals, want 6", len(got.Intervals))
		}
		last := got.Intervals[len(got.Intervals)-1]
		if last.At != got.End || last.Answer.Result != Pass {
			t.Errorf("last interval at %d (end %d): %+v", last.At, got.End, last.Answer)
		}
		// Each window grows from the start of the run.
		if a, b := got.Intervals[0].Answer, last.Answer; a.Start != b.Start || !(a.End < b.End) || b.Metrics[0].Baseline.Count < 50 {
			t.Errorf("windows [%d,%d) then [%d,%d) count %d", a.Start, a.End, b.Start, b.End, b.Metrics[0].Baseline.Count)
		}
		if n.count() != 1 {
			t.Errorf("%d webhook calls, want 1", n.count())
		}
	})
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	j := newJudge(t, querytest.Open(t, step, now))
	r, err := NewRunner(RunnerOptions{Judge: j, KV: tsdbtest.NewKV()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		field string
		edit  func(*RunRequest)
	}{
		{"interval", func(r *RunRequest) { r.Interval = "" }},
		{"interval", func(r *RunRequest) { r.Interval = "soon" }},
		{"interval", func(r *RunRequest) { r.Interval = "1m" }}, // fewer than minCount steps
		{"lifetime", func(r *RunRequest) { r.Lifetime = "" }},
		{"lifetime", func(r *RunRequest) { r.Lifetime = "5m" }},
		{"lifetime", func(r *RunRequest) { r.Lifetime = "forever" }},
		{"webhook", func(r *RunRequest) { r.Webhook = "ftp://x/y" }},
		{"s", func(r *RunRequest) { r.S = "e-1h" }},
		{"metrics[0].q", func(r *RunRequest) { r.Metrics[0].Q = ":frob" }},
	}
	for _, tc := range cases {
		req := runRequest()
		tc.edit(req)
		_, err := r.Start(context.Background(), req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError naming %s", tc.field, err, tc.field)
		}
	}
	if _, err := r.Get(context.Background(), "0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v", err)
	}
	if _, err := r.Get(context.Background(), "../../x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(bad id) = %v", err)
	}
}

// TestRunCriticalNoData: a critical metric without data fails the run at
// its first interval, even with every other metric healthy.
func TestRunCriticalNoData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now().UnixMilli()
		j, err := New(Options{Querier: querytest.Open(t, step, t0, liveFleet(t0, 1)...), StorageStep: step})
		if err != nil {
			t.Fatal(err)
		}
		var n notified
		r, _ := startRunner(t, j, tsdbtest.NewKV(), &n)
		req := runRequest()
		req.Metrics = append(req.Metrics, Metric{Name: "saturation", Q: "name,saturation,:eq,:max", Critical: true})
		run, err := r.Start(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(11 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got, err := r.Get(context.Background(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateDone || got.Verdict != Fail || len(got.Intervals) != 1 || n.count() != 1 {
			t.Fatalf("state %s verdict %s (%s), %d intervals, %d notified", got.State, got.Verdict, got.Reason, len(got.Intervals), n.count())
		}
		if m := got.Intervals[0].Answer.Metrics[2]; m.Classification != NoData {
			t.Errorf("saturation: %s", m.Reason)
		}
	})
}

// TestWebhookRetries checks the delivery of a verdict: a receiver that is
// down is retried with doubling waits until it answers; one that refuses
// the payload is not retried; a delivery cut short by a restart is made by
// the next runner.
func TestWebhookRetries(t *testing.T) {
	judge := func(t *testing.T, t0 int64) *Judge {
		j, err := New(Options{Querier: querytest.Open(t, step, t0, liveFleet(t0, 1.3)...), StorageStep: step})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	t.Run("down then up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now().UnixMilli()
			n := notified{failFirst: 3, failWith: errors.New("connection refused")}
			r, stop := startRunner(t, judge(t, t0), tsdbtest.NewKV(), &n)
			defer stop()
			run, err := r.Start(context.Background(), runRequest())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(11 * time.Minute) // synctest: advances the bubble's fake clock
			synctest.Wait()
			got, err := r.Get(context.Background(), run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != Fail || got.Notified != "ok" || n.count() != 4 {
				t.Fatalf("verdict %s notified %q after %d calls, want ok on the 4th", got.Verdict, got.Notified, n.count())
			}
			for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
				if d := n.at[i+1].Sub(n.at[i]); d != want {
					t.Errorf("wait before attempt %d = %v, want %v", i+2, d, want)
				}
			}
		})
	})
	t.Run("refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now().UnixMilli()
			n := notified{failFirst: 100, failWith: fmt.Errorf("hook answered 400 Bad Request: %w", ErrPermanent)}
			r, stop := startRunner(t, judge(t, t0), tsdbtest.NewKV(), &n)
			defer stop()
			run, err := r.Start(context.Background(), runRequest())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Minute) // synctest: advances the bubble's fake clock
			synctest.Wait()
			got, _ := r.Get(context.Background(), run.ID)
			if n.count() != 1 || !strings.Contains(got.Notified, "400") {
				t.Fatalf("%d calls, notified %q: want one call and the refusal recorded", n.count(), got.Notified)
			}
		})
	})
	t.Run("restart while pending", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Now().UnixMilli()
			j, kv := judge(t, t0), tsdbtest.NewKV()
			down := notified{failFirst: 100, failWith: errors.New("connection refused")}
			r, stop := startRunner(t, j, kv, &down)
			run, err := r.Start(context.Background(), runRequest())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(10*time.Minute + 2*time.Second) // synctest: the verdict, then some of the retries' waits
			synctest.Wait()
			stop()
			got, _ := r.Get(context.Background(), run.ID)
			if got.Notified != "pending" || down.count() == 0 || down.count() >= webhookAttempts {
				t.Fatalf("before the restart: notified %q after %d calls, want pending after some", got.Notified, down.count())
			}
			var up notified
			r2, stop2 := startRunner(t, j, kv, &up)
			defer stop2()
			synctest.Wait()
			got, _ = r2.Get(context.Background(), run.ID)
			if got.Notified != "ok" || up.count() != 1 || up.calls[0].Verdict != Fail {
				t.Fatalf("after the restart: notified %q, %d calls", got.Notified, up.count())
			}
		})
	})
}
