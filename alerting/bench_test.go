package alerting_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// benchStart pins the workload's timestamps (hour-aligned).
const benchStart = int64(1_700_006_400_000)

// stepSource is a SubscribeFunc the benchmark drives: step evaluates every
// subscription over one step with the query engine, as the live evaluator
// does for expressions without state, and hands the lines to the rules.
type stepSource struct {
	engine *query.Engine
	mu     sync.Mutex
	subs   []*stepSub
}

type stepSub struct {
	styles []*expr.Style
	sink   func(alerting.Update)
}

func (s *stepSource) subscribe(_ context.Context, req alerting.Request, sink func(alerting.Update)) (func(), error) {
	styles, err := query.Parse(req.Expr, query.ParseOptions{})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.subs = append(s.subs, &stepSub{styles: styles, sink: sink})
	s.mu.Unlock()
	return func() {}, nil
}

func (s *stepSource) step(ctx context.Context, b *testing.B, t, step int64) {
	s.mu.Lock()
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	for _, sub := range subs {
		lines, err := alerting.EvalRange(ctx, s.engine, sub.styles, t, t+step, step)
		if err != nil {
			b.Fatal(err)
		}
		sub.sink(alerting.Update{End: t + step, Lines: lines})
	}
}

// BenchmarkRuleStep evaluates 10 000 rules over the standard workload
// (about 100 series each, one line per node) for one step: the engine's
// one-step evaluation of every rule, the state machine, the ALERTS series
// and the hand-over to the notifier. Run with -cpu 1 for one core.
func BenchmarkRuleStep(b *testing.B) {
	n, _ := tsdbtest.BenchSize()
	const loaded = 40 // samples in the store; at most this many iterations
	w := tsdbtest.LoadWorkload(b, n, loaded, benchStart)
	step := w.Interval
	last := w.Start + int64(loaded-1)*step
	store := querytest.Open(b, step, last+step)
	var batch tsdb.Batch
	for i := range loaded {
		batch.Reset()
		w.Batch(&batch, i, 0, len(w.Series), nil)
		if err := store.Append(context.Background(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	// 10 000 rules: app × a window of five names (about 100 series) ×
	// a threshold, one line per node.
	apps, names := map[string]bool{}, map[string]bool{}
	for _, s := range w.Series {
		a, _ := s.Get("app")
		nm, _ := s.Get(tags.NameKey)
		apps[a], names[nm] = true, true
	}
	appList, nameList := slices.Sorted(mapsKeys(apps)), slices.Sorted(mapsKeys(names))
	var rules []*alerting.Rule
	for i := 0; len(rules) < 10_000; i++ {
		app := appList[i%len(appList)]
		k := (i / len(appList)) % (len(nameList) / 5)
		thr := 1000 * (1 + i/(len(appList)*(len(nameList)/5)))
		expr := fmt.Sprintf("app,%s,:eq,name,(,%s,),:in,:and,(,node,),:by,%d,:gt", app, joinComma(nameList[5*k:5*k+5]), thr)
		rules = append(rules, &alerting.Rule{Alert: fmt.Sprintf("R%05d", i), Expr: expr, Labels: map[string]string{"severity": "page"}})
	}
	src := &stepSource{engine: query.NewEngine(store, eval.Options{})}
	reg := lib.NewRegistry(lib.RegistryOptions{})
	var notified sync.WaitGroup
	m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: tsdbtest.NewKV(), Appender: store, Step: step,
		Workers: runtime.GOMAXPROCS(0), Registry: reg, Now: func() time.Time { return time.UnixMilli(last + step) },
		Notifier: alerting.NotifierFunc(func(context.Context, []*alerting.Alert) {})})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.SetFileGroups([]*alerting.Group{{Name: "bench", Rules: rules}}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	notified.Go(func() { m.Run(ctx) })
	defer func() { cancel(); notified.Wait() }()
	for len(src.subs) < len(rules) {
		time.Sleep(time.Millisecond) // polls the manager's workers; a benchmark on the real clock, nothing asserted on time
	}
	evals := reg.Timer("alerting.evaluationTime")
	t := w.Start
	done := int64(0)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if t > last {
			b.Fatalf("more than %d iterations: pass -benchtime=%dx at most", loaded, loaded)
		}
		src.step(ctx, b, t, step)
		done += int64(len(rules))
		for evals.Count() < done {
			time.Sleep(100 * time.Microsecond) // polls the manager's workers; a benchmark on the real clock, nothing asserted on time
		}
		t += step
	}
	b.ReportMetric(float64(len(rules)), "rules/step")
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time: on a machine shared
// with other builds it says more than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// BenchmarkBacktest7d backtests one rule over 7 days at 60 s (10 080
// steps) of 100 series, one line per series.
func BenchmarkBacktest7d(b *testing.B) {
	const steps = 7 * 24 * 60
	start := benchStart - steps*minute
	rng := rand.New(rand.NewPCG(1, 2))
	var inputs []querytest.Input
	for i := range 100 {
		v := make([]float64, steps)
		x := 50.0
		for j := range v {
			x = math.Max(0, math.Min(100, x+rng.NormFloat64()*3))
			v[j] = x
		}
		inputs = append(inputs, cpuSeries(fmt.Sprintf("h%03d", i), start, v...))
	}
	store := querytest.Open(b, minute, benchStart, inputs...)
	engine := query.NewEngine(store, eval.Options{})
	rule := &alerting.Rule{Alert: "HighCPU", Expr: "name,cpu,:eq,(,host,),:by,80,:gt", For: alerting.Duration(5 * time.Minute)}
	if err := rule.Check(); err != nil {
		b.Fatal(err)
	}
	var res *alerting.BacktestResult
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		var err error
		res, err = alerting.Backtest(context.Background(), engine, rule, start, benchStart, alerting.BacktestOptions{Step: minute})
		if err != nil {
			b.Fatal(err)
		}
	}
	if res.Steps != steps {
		b.Fatalf("backtest ran %d steps, want %d", res.Steps, steps)
	}
	b.ReportMetric(float64(len(res.Transitions)), "transitions")
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}
