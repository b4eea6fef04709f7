package canary

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// startOwnedRunner is startRunner for one of several runners sharing kv
// (query nodes of a cluster): it judges the runs owns says it owns.
func startOwnedRunner(t *testing.T, j *Judge, kv tsdb.KV, n *notified, owns func(string) bool) (*Runner, func()) {
	t.Helper()
	r, err := NewRunner(RunnerOptions{Judge: j, KV: kv, Notify: n.notify, Owns: owns})
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

// TestRunOwners: two runners share a store. A run started on the one that
// does not own it is judged by its owner once that one syncs; when the
// run moves (its owner died), the other takes it up from the store, where
// it left off, and the verdict is delivered once.
func TestRunOwners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now().UnixMilli()
		j, err := New(Options{Querier: querytest.Open(t, step, t0, liveFleet(t0, 1)...), StorageStep: step})
		if err != nil {
			t.Fatal(err)
		}
		kv := tsdbtest.NewKV()
		var owner atomic.Value
		owner.Store("b")
		var na, nb notified
		a, _ := startOwnedRunner(t, j, kv, &na, func(string) bool { return owner.Load() == "a" })
		b, stopB := startOwnedRunner(t, j, kv, &nb, func(string) bool { return owner.Load() == "b" })
		run, err := a.Start(context.Background(), runRequest())
		if err != nil {
			t.Fatal(err)
		}
		b.Sync()
		time.Sleep(25 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got, err := a.Get(context.Background(), run.ID)
		if err != nil || got.State != StateRunning || len(got.Intervals) != 2 {
			t.Fatalf("after 25 minutes, judged by b: %+v, %v", got, err)
		}
		// b dies; the run is a's now.
		stopB()
		owner.Store("a")
		a.Sync()
		time.Sleep(40 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got, err = a.Get(context.Background(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateDone || got.Verdict != Pass || got.Notified != "ok" || len(got.Intervals) != 6 {
			t.Fatalf("verdict: %s %s %q, %d intervals", got.State, got.Verdict, got.Notified, len(got.Intervals))
		}
		if na.count() != 1 || nb.count() != 0 {
			t.Errorf("webhook calls: a %d, b %d; want 1 from a", na.count(), nb.count())
		}
		// A sync after the verdict changes nothing.
		a.Sync()
		synctest.Wait()
		if na.count() != 1 {
			t.Errorf("%d webhook calls after another sync", na.count())
		}
	})
}
