package db

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestFetchWorkerSameBits checks that a fetch whose batches are read on
// two goroutines, split by series (fetch_batch.go) or by time
// (fetch_segment.go), answers exactly what the same fetch on one core
// answers: the same series, the same bits (sums add in the same order),
// the same stats; for every aggregation, grouped (with series lacking the
// key) or not, at the storage step and consolidated, over whole and
// partial blocks with gaps. It changes GOMAXPROCS, so it does not run in
// parallel.
func TestFetchWorkerSameBits(t *testing.T) {
	const step = minute
	start := int64(1_700_006_400_000) // period-aligned
	const steps = 300                 // two sealed blocks of 120 steps and an open one
	end := start + steps*step
	var now atomic.Int64 // each step is written when it is recent
	db := openDB(t, "", Options{Now: now.Load, MaintenanceInterval: 1 << 40})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	types := []string{"gauge", "rate"}
	var series []tags.Set
	for i := range 400 {
		kv := []string{"name", fmt.Sprintf("m%d", i%2), "atlas.dstype", types[i%2], "i", fmt.Sprint(i)}
		if i%11 != 0 {
			kv = append(kv, "app", fmt.Sprintf("a%d", i%7)) // the others lack the group-by key
		}
		series = append(series, tags.New(kv...))
	}
	var b tsdb.Batch
	for k := range int64(steps) {
		now.Store(start + (k+1)*step)
		b.Reset()
		for i, s := range series {
			if rng.IntN(9) == 0 || (i%13 == 0 && k < 150) {
				continue // gaps, and series that start late
			}
			b.Points = append(b.Points, tsdb.Datapoint{Tags: s, T: start + k*step, V: rng.NormFloat64() * 1e3})
		}
		if err := db.Append(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	type query struct {
		name string
		req  tsdb.FetchRequest
	}
	m0 := tags.Eq("name", "m0")
	var queries []query
	for _, agg := range []tsdb.Aggregation{tsdb.AggNone, tsdb.AggSum, tsdb.AggCount, tsdb.AggMin, tsdb.AggMax} {
		for _, by := range [][]string{nil, {"app"}} {
			if agg == tsdb.AggNone && by != nil {
				continue
			}
			for _, r := range []struct{ s, e, step int64 }{
				{start, end, step},                             // whole range
				{start + 37*step, end - 41*step, step},         // partial blocks
				{start + 5*step, end, 5 * step},                // consolidated
				{start - 3600_000, end + 3600_000, 3 * step},   // beyond the data
				{start + 200*step, start + 230*step, step * 2}, // inside the open block
				{start + 121*step, start + 241*step, step},     // one sealed block: split by series
				{start + 60*step, start + 281*step, step},      // segments of 60, 120 and 41 steps
			} {
				queries = append(queries, query{
					name: fmt.Sprintf("agg%d/by%v/%d-%d/%d", agg, by, (r.s-start)/step, (r.e-start)/step, r.step/step),
					req:  tsdb.FetchRequest{Query: tags.True(), Start: r.s, End: r.e, Step: r.step, Aggregation: agg, GroupBy: by},
				})
			}
		}
	}
	queries = append(queries, query{"one-name-sum-by-app", tsdb.FetchRequest{Query: m0, Start: start, End: end, Step: step,
		Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}})

	fetchAll := func(procs int) []*tsdb.SeriesSet {
		t.Helper()
		prev := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(prev)
		var out []*tsdb.SeriesSet
		for _, q := range queries {
			set, err := db.Fetch(ctx, q.req)
			if err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			out = append(out, set)
		}
		return out
	}
	one, two := fetchAll(1), fetchAll(2)
	bits := cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
	for i, q := range queries {
		if !hasValues(one[i]) {
			t.Errorf("%s: no values", q.name)
		}
		if diff := cmp.Diff(one[i], two[i], bits); diff != "" {
			t.Errorf("%s: two goroutines differ from one (-one +two):\n%s", q.name, diff)
		}
	}

	// The second goroutine did read: the grouped sum over three blocks by
	// segments, over one block by series.
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	lo, hi, err := db.dataPeriods()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		start, end int64
		segments   int
	}{{start, end, 3}, {start + 120*step, start + 240*step, 0}} {
		req := queries[len(queries)-1].req
		req.Start, req.End = tc.start, tc.end
		f := newFetch(db, &req, lo, hi)
		sel, err := db.selectFor(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.run(ctx, sel); err != nil {
			t.Fatal(err)
		}
		if f.splits == 0 || len(f.segs) != tc.segments {
			t.Errorf("a fetch of %d series × %d steps: %d batches split, %d segments; want some split, %d segments",
				sel.card(), len(f.prim), f.splits, len(f.segs), tc.segments)
		}
	}
}

func hasValues(set *tsdb.SeriesSet) bool {
	for _, s := range set.Series {
		if anyData(s.Values) {
			return true
		}
	}
	return false
}
