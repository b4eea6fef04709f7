package alerting_test

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// wave is a noisy-free periodic baseline of n points with spikes added.
func wave(n int, spikes map[int]float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 100 + 20*math.Sin(2*math.Pi*float64(i)/120)
		if s, ok := spikes[i]; ok {
			v[i] += s
		}
	}
	return v
}

const flappyRules = `
groups:
  - name: hosts
    rules:
      - alert: Flappy
        expr: name,cpu,:eq,(,host,),:by,80,:gt,5,:rolling-count,3,:ge
        for: 1m
        keep_firing_for: 2m
`

// TestBacktestEqualsLive runs a rule live (synctest clock, poll source
// over a real store) and as a backtest over the same data: the same
// transitions at the same times.
func TestBacktestEqualsLive(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		vals := []float64{50, 90, 50, 90, 90, 50, 50, 50, 50, 90, 90, 90, 90, 90, 50, 50, 50, 50, 50, 50, 90, 50, 90, 50, 90, 50, 50, 50, 50, 50}
		store := querytest.Open(t, minute, t0+time.Hour.Milliseconds(),
			cpuSeries("a", t0-10*minute, append(make([]float64, 10), vals...)...),
			cpuSeries("b", t0-10*minute, append(make([]float64, 10), wave(30, nil)...)...))
		e := startEnv(t, store, tsdbtest.NewKV(), parseGroups(t, flappyRules))
		time.Sleep(30*time.Minute + time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		e.stop()
		live, err := e.m.History(context.Background(), "Flappy", 0, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if len(live) < 4 {
			t.Fatalf("live made only %d transitions: %+v", len(live), live)
		}
		engine := query.NewEngine(store, eval.Options{})
		rule := parseGroups(t, flappyRules)[0].Rules[0]
		// The live manager's first evaluation was at t0 + 1 step.
		bt, err := alerting.Backtest(context.Background(), engine, rule, t0+minute, t0+30*minute+minute, alerting.BacktestOptions{Step: minute, Warmup: 10 * minute})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(live, bt.Transitions); diff != "" {
			t.Errorf("backtest differs from live (-live +backtest):\n%s", diff)
		}
	})
}

// TestDESRule: a :des band rule stays quiet on a periodic baseline and
// fires on an injected spike.
func TestDESRule(t *testing.T) {
	t.Parallel()
	const n = 600
	start := t0 - n*minute
	rule := &alerting.Rule{Alert: "Anomaly", Expr: "name,cpu,:eq,:sum,10,0.1,0.5,0.2,0.2,10,:des-epic-signal"}
	if err := rule.Check(); err != nil {
		t.Fatal(err)
	}
	check := func(spikes map[int]float64, wantFiring int) {
		t.Helper()
		store := querytest.Open(t, minute, t0, cpuSeries("a", start, wave(n, spikes)...))
		engine := query.NewEngine(store, eval.Options{})
		bt, err := alerting.Backtest(context.Background(), engine, rule, start+200*minute, t0, alerting.BacktestOptions{Step: minute, Warmup: 200 * minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(bt.Firing) != wantFiring {
			t.Errorf("spikes %v: %d firing intervals, want %d: %+v", spikes, len(bt.Firing), wantFiring, bt.Firing)
		}
	}
	check(nil, 0)
	check(map[int]float64{450: 80}, 1)
}
