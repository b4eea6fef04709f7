package live

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const benchStart = int64(1_700_006_400_000)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStep10kExpressions evaluates one step of 10 000 distinct live
// expressions, each aggregating about 100 series of tsload's workload
// (100 000 series, 1 h at 60 s; SEXTANT_BENCH_SERIES shrinks it): one
// metric over five apps (5 × 20 series), :sum or :max. Run it with -cpu 1
// for the one-core figure.
func BenchmarkStep10kExpressions(b *testing.B) {
	n, samples := tsdbtest.BenchSize()
	samples = min(samples, 60)
	w := tsdbtest.LoadWorkload(b, n, samples, benchStart)
	end := w.Start + int64(w.Samples())*w.Interval
	store := querytest.OpenWorkload(b, w)
	var names, apps []string
	seen := map[string]bool{}
	for _, s := range w.Series {
		name, _ := s.Get("name")
		app, _ := s.Get("app")
		if !seen["n"+name] {
			seen["n"+name] = true
			names = append(names, name)
		}
		if !seen["a"+app] {
			seen["a"+app] = true
			apps = append(apps, app)
		}
	}
	ev, err := New(Options{Querier: store, StorageStep: 60_000, Delay: 0, Now: func() time.Time { return time.UnixMilli(end) }, MaxExpressions: 20_000})
	if err != nil {
		b.Fatal(err)
	}
	// 10 000 distinct expressions, or as many as a smoke run's small
	// workload allows.
	qs := map[string]bool{}
	for k := 0; k < 4*10_000 && len(qs) < 10_000; k++ {
		name := names[k%len(names)]
		first := (k / len(names)) % len(apps)
		var in []string
		for j := 0; j < min(5, len(apps)); j++ {
			in = append(in, apps[(first+j)%len(apps)])
		}
		agg := []string{":sum", ":max", ":min", ":count"}[(k/(len(names)*len(apps)))%4]
		qs[fmt.Sprintf("name,%s,:eq,app,(,%s,),:in,:and,%s", name, strings.Join(in, ","), agg)] = true
	}
	for q := range qs {
		if _, err := ev.Subscribe(context.Background(), Request{Expr: q}, func(Update) {}); err != nil {
			b.Fatal(err)
		}
	}
	exprs := int64(len(qs))
	if got := ev.Expressions(); got != len(qs) {
		b.Fatalf("%d distinct expressions, want %d", got, len(qs))
	}
	ev.mu.Lock()
	groups := make([]*group, 0, exprs)
	for _, g := range ev.mu.groups {
		groups = append(groups, g)
	}
	ev.mu.Unlock()
	ctx := context.Background()
	step := func() {
		// Evaluate the newest step again: step it back and run what is due.
		for _, g := range groups {
			g.last -= g.step
		}
		before := ev.Evaluations()
		ev.evaluateDue(ctx)
		if got := ev.Evaluations() - before; got != exprs {
			b.Fatalf("%d evaluations, want %d", got, exprs)
		}
	}
	// The first step selects every expression's series (and keeps them);
	// the steps after read the step that closed for the known series.
	cpuFirst := cpuTime()
	step()
	first := (cpuTime() - cpuFirst).Seconds()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		step()
	}
	// CPU time is what the target is about: on a machine shared with other
	// builds the wall clock also counts waiting for a core.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(first, "first-step-cpu-s")
	b.ReportMetric(float64(exprs), "expressions")
	b.ReportMetric(float64(len(w.Series)), "series")
}
