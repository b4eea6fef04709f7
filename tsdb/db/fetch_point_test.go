package db

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestFetchPointAndSelection checks the live evaluator's path through the
// store: a one-step fetch (the point read from the open block) with a
// cached Selection answers what a two-step fetch (the block scan, without
// a Selection) answers for that step, for every step of a range that
// crosses a period boundary (sealed blocks, the point read's fallback),
// for every aggregation, grouped or not; and a series added after the
// Selection was filled in is seen.
func TestFetchPointAndSelection(t *testing.T) {
	t.Parallel()
	const step = minute
	start := int64(1_700_006_400_000) // period-aligned
	var now atomic.Int64
	now.Store(start)
	db := openDB(t, "", Options{Now: now.Load, MaintenanceInterval: 1 << 40})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	types := []string{"gauge", "rate", "sum", "counter"}
	var series []tags.Set
	for i := range 40 {
		series = append(series, tags.New("name", fmt.Sprintf("m%d", i%3), "node", fmt.Sprintf("n%d", i%5),
			"atlas.dstype", types[i%4], "i", fmt.Sprint(i)))
	}
	type query struct {
		q       *tags.Query
		agg     tsdb.Aggregation
		groupBy []string
	}
	in := tags.And(tags.In("name", []string{"m0", "m2"}), tags.Not(tags.Eq("node", "n1")))
	queries := []query{
		{q: tags.Eq("name", "m1")},
		{q: in, agg: tsdb.AggSum},
		{q: in, agg: tsdb.AggMax, groupBy: []string{"node"}},
		{q: tags.Eq("node", "n2"), agg: tsdb.AggCount},
		{q: tags.Eq("name", "m0"), agg: tsdb.AggMin, groupBy: []string{"nokey"}},
	}
	sels := make([]tsdb.Selection, len(queries))
	fetch := func(qu query, s, e int64, sel *tsdb.Selection) *tsdb.SeriesSet {
		t.Helper()
		set, err := db.Fetch(ctx, tsdb.FetchRequest{Query: qu.q, Start: s, End: e, Step: step,
			Aggregation: qu.agg, GroupBy: qu.groupBy, Selection: sel})
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	pointReads := 0
	var b tsdb.Batch
	for k := range int64(200) {
		t0 := start + k*step
		now.Store(t0 + step)
		b.Reset()
		for i, s := range series {
			if rng.IntN(6) == 0 {
				continue // gaps
			}
			for range 1 + rng.IntN(2) {
				b.Points = append(b.Points, tsdb.Datapoint{Tags: s, T: t0 + rng.Int64N(step), V: float64(rng.IntN(50) + i)})
			}
		}
		if k >= 150 {
			// A new series of a selected name, after the Selections were filled in.
			b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.New("name", "m1", "node", "n9", "i", "new", "atlas.dstype", "gauge"), T: t0, V: 7})
		}
		if err := db.Append(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if k%7 == 0 {
			if err := db.Maintain(); err != nil { // seals the period that ended
				t.Fatal(err)
			}
		}
		// The newest closed point and the one before (late data lands there).
		for _, p := range []int64{t0 - step, t0} {
			if p < start {
				continue
			}
			if _, ok := db.head.AppendPoints(nil, []uint32{0}, floorDiv(p, step)); ok {
				pointReads++
			}
			for i, qu := range queries {
				got := fetch(qu, p, p+step, &sels[i])
				want := fetch(qu, p-step, p+step, nil)
				kept := want.Series[:0]
				for _, s := range want.Series {
					s.Values = s.Values[1:]
					if qu.agg == tsdb.AggNone && math.IsNaN(s.Values[0]) {
						continue // no data in the step: not part of its answer
					}
					kept = append(kept, s)
				}
				want.Series = kept
				if diff := cmp.Diff(want.Series, got.Series, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("step %d query %d (%v): point read differs from scan (-scan +point):\n%s", k, i, qu.q, diff)
				}
			}
		}
	}
	if pointReads < 100 {
		t.Errorf("the point read answered %d times, want most steps", pointReads)
	}
	last := fetch(queries[0], start+199*step, start+200*step, &sels[0])
	found := false
	for _, s := range last.Series {
		if v, _ := s.Tags.Get("i"); v == "new" {
			found = true
		}
	}
	if !found {
		t.Errorf("a series added after the selection is missing: %v", last.Series)
	}
}
