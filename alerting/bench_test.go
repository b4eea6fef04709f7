package alerting_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// benchStart pins the workload's timestamps (hour-aligned).
const benchStart = int64(1_700_006_400_000)

// liveSource subscribes rules to a live evaluator, as the server does
// (cmd/sextant liveSubscribe), and counts the subscriptions.
type liveSource struct {
	ev   *live.Evaluator
	subs atomic.Int64
}

func (s *liveSource) subscribe(ctx context.Context, req alerting.Request, sink func(alerting.Update)) (func(), error) {
	sub, err := s.ev.Subscribe(ctx, live.Request{Expr: req.Expr, Step: req.Step, Backfill: req.Backfill}, func(u live.Update) {
		au := alerting.Update{End: u.End, Err: u.Err, Lines: make([]alerting.Line, len(u.Lines))}
		for i, l := range u.Lines {
			au.Lines[i] = alerting.Line{ID: l.ID, Tags: l.Tags, Start: l.Start, Step: l.Step, Values: l.Values}
		}
		sink(au)
	})
	if err != nil {
		return nil, err
	}
	s.subs.Add(1)
	return sub.Close, nil
}

// BenchmarkRuleStep evaluates 10 000 rules over the standard workload
// (about 100 series each, one line per node) for one step: the engine's
// one-step evaluation of every rule, the state machine, the ALERTS series
// and the hand-over to the notifier. Run with -cpu 1 for one core.
func BenchmarkRuleStep(b *testing.B) {
	n, _ := tsdbtest.BenchSize()
	const samples = 40 // at most this many steps: -benchtime=37x at most
	w := tsdbtest.LoadWorkload(b, n, samples, benchStart)
	step := w.Interval
	last := w.Start + int64(samples-1)*step
	store := querytest.Open(b, step, last+step)
	var batch tsdb.Batch
	// ingest appends sample i (at w.Start + i*step), the data of the step
	// that closes next: the rules read the newest step, as live.
	ingest := func(i int) {
		batch.Reset()
		w.Batch(&batch, i, 0, len(w.Series), nil)
		if err := store.Append(context.Background(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	ingest(0)
	ingest(1)
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
	// The clock is the benchmark's: each iteration closes one more step
	// and runs the live evaluator's step, as Run does at the close.
	var clock atomic.Int64
	clock.Store(w.Start + step)
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	ev, err := live.New(live.Options{Querier: store, StorageStep: step, Delay: 0, Now: now, MaxExpressions: 20_000})
	if err != nil {
		b.Fatal(err)
	}
	src := &liveSource{ev: ev}
	reg := lib.NewRegistry(lib.RegistryOptions{})
	var notified sync.WaitGroup
	m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: tsdbtest.NewKV(), Appender: store, Step: step,
		Workers: runtime.GOMAXPROCS(0), Registry: reg, Now: now, Backfill: step,
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
	for src.subs.Load() < int64(len(rules)) {
		time.Sleep(time.Millisecond) // polls the manager's workers; a benchmark on the real clock, nothing asserted on time
	}
	evals := reg.Timer("alerting.evaluationTime")
	// wait polls until the rules evaluated done steps in all.
	wait := func(done int64) {
		for evals.Count() < done {
			time.Sleep(100 * time.Microsecond) // polls the manager's workers; a benchmark on the real clock, nothing asserted on time
		}
	}
	wait(int64(len(rules))) // every rule's backfill step
	done := evals.Count()
	// evalStep closes step i and runs it: the live evaluator's step, then
	// every rule's state machine. Only this is measured, not the ingest.
	var measured time.Duration
	evalStep := func(i int) {
		ingest(i)
		cpu := cpuTime()
		clock.Store(w.Start + int64(i)*step)
		ev.EvaluateDue(ctx)
		done += int64(len(rules))
		wait(done)
		measured += cpuTime() - cpu
	}
	// The first step selects every rule's series (and keeps them).
	evalStep(2)
	first := measured
	measured = 0
	i := 3
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if i >= samples {
			b.Fatalf("more than %d iterations: pass -benchtime=%dx at most", samples-3, samples-3)
		}
		evalStep(i)
		i++
	}
	b.ReportMetric(float64(first.Milliseconds()), "first-step-cpu-ms")
	b.ReportMetric(float64(len(rules)), "rules/step")
	b.ReportMetric(float64(measured.Milliseconds())/float64(b.N), "cpu-ms/op")
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
