package db

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// TestRestart loads 100 000 series × 1 h of the tsdbtest workload, restarts the
// store, and requires bit-identical answers.
func TestRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 6 M datapoints")
	}
	t.Parallel()
	w := tsdbtest.LoadWorkload(t, 100_000, 60, benchStart)
	dir := t.TempDir()
	opts := benchOptions(w)
	opts.Fsync = wal.SyncBatch
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	loadAll(t, db, w)
	// Checkpoint halfway through the last sample's batches, so that the
	// restart needs the checkpoint and the WAL both.
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	end := w.Start + int64(w.Samples())*w.Interval
	var more tsdb.Batch
	w.Batch(&more, w.Samples()-1, 0, 1000, nil)
	for i := range more.Points {
		more.Points[i].V++ // overwrite: gauges keep the max, counters add a rate
	}
	if err := db.Append(context.Background(), &more); err != nil {
		t.Fatal(err)
	}
	name := w.Series[0].Name()
	reqs := []tsdb.FetchRequest{
		{Query: tags.Eq("name", name)},
		{Query: tags.True(), Aggregation: tsdb.AggSum, GroupBy: []string{"app"}},
		{Query: tags.True(), Aggregation: tsdb.AggCount},
		{Query: tags.Starts("app", "api"), Aggregation: tsdb.AggMax, GroupBy: []string{"region", "status"}},
		{Query: tags.Eq("name", w.Series[2].Name()), Step: 5 * minute, CF: tsdb.CFAvg, Aggregation: tsdb.AggSum},
	}
	fetchAll := func(db *DB) []*tsdb.SeriesSet {
		var out []*tsdb.SeriesSet
		for _, req := range reqs {
			if req.Step == 0 {
				req.Step = w.Interval
			}
			req.Start, req.End = w.Start/req.Step*req.Step+req.Step, end/req.Step*req.Step
			set, err := db.Fetch(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, set)
		}
		return out
	}
	before := fetchAll(db)
	series := db.Head().NumSeries()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Head().NumSeries() != series {
		t.Fatalf("%d series after restart, want %d", db.Head().NumSeries(), series)
	}
	after := fetchAll(db)
	for i := range reqs {
		if len(before[i].Series) == 0 {
			t.Errorf("query %d found nothing", i)
		}
		if diff := cmp.Diff(before[i].Series, after[i].Series, bitsEqual); diff != "" {
			t.Errorf("query %d (%s) differs after restart (-before +after):\n%s", i, reqs[i].Query, diff)
		}
	}
}

// bitsEqual compares floats by their bits: restarts must not change a value.
var bitsEqual = cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })

func TestRetention(t *testing.T) {
	t.Parallel()
	now := int64(tsdbtest.T0)
	opts := Options{
		Now: func() int64 { return now }, MemoryRetention: 4 * hour, Retention: 12 * hour,
		IngestMaxAge: hour, MaintenanceInterval: 1 << 40, CheckpointInterval: 1,
	}
	dir := t.TempDir()
	db := openDB(t, dir, opts)
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	write := func(v float64) {
		t.Helper()
		b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: g, T: now, V: v}}}
		if err := db.Append(context.Background(), b); err != nil || len(b.Rejected) > 0 {
			t.Fatalf("Append: %v %v", err, b.Rejected)
		}
	}
	read := func() []float64 {
		t.Helper()
		set, err := db.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "g"),
			Start: tsdbtest.T0, End: tsdbtest.T0 + 24*hour, Step: hour, CF: tsdb.CFMax})
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Series) == 0 {
			return nil
		}
		return set.Series[0].Values
	}
	write(1) // at T0: the step ending at T0 is output point 0
	now += 5 * hour
	write(2)
	now += 2 * hour // T0 is now out of the memory window but on disk
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if db.Head().MemoryStats().SealedSlots != 120 {
		t.Errorf("sealed steps in memory = %d, want one block", db.Head().MemoryStats().SealedSlots)
	}
	if v := read(); v[0] != 1 || v[5] != 2 {
		t.Fatalf("after the memory window moved: %v", v[:6])
	}
	now += 8 * hour // T0 is past retention; T0+5h is not
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if v := read(); !math.IsNaN(v[0]) || v[5] != 2 {
		t.Fatalf("after retention: %v, want only the newer point", v[:6])
	}
	now += 10 * hour // everything is past retention: the series goes
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n := db.Head().NumSeries(); n != 0 {
		t.Errorf("%d series after all data expired, want 0", n)
	}
	if v := read(); v != nil {
		t.Errorf("read after expiry = %v, want no series", v)
	}
	// And it stays gone after a restart.
	db.Close()
	db = openDB(t, dir, opts)
	if n := db.Head().NumSeries(); n != 0 {
		t.Errorf("%d series after restart, want 0", n)
	}
}

// TestMetamorphic runs the same random operations on an in-memory store and
// on a disk store that restarts now and then, and requires equal answers.
func TestMetamorphic(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			metamorphic(t, seed)
		})
	}
}

func metamorphic(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	now := int64(tsdbtest.T0 + 10*hour)
	opts := Options{Now: func() int64 { return now }, IngestMaxAge: 6 * hour, MemoryRetention: 12 * hour,
		MaintenanceInterval: 1 << 40, CheckpointInterval: 1}
	mem := openDB(t, "", opts)
	dir := t.TempDir()
	dsk := openDB(t, dir, opts)
	var series []tags.Set
	for i := range 30 {
		series = append(series, tags.New("name", fmt.Sprint("m", i%4), "app", fmt.Sprint("a", i%7), "i", fmt.Sprint(i),
			"atlas.dstype", []string{"gauge", "sum", "rate", "counter"}[i%4]))
	}
	counters := make([]float64, len(series))
	for step := range 150 {
		switch op := rng.IntN(20); {
		case op < 14:
			var pts []tsdb.Datapoint
			for range 1 + rng.IntN(40) {
				i := rng.IntN(len(series))
				ts := now - int64(rng.IntN(int(5*hour)))
				if rng.IntN(3) > 0 {
					ts = now - int64(rng.IntN(60_000))
				}
				v := rng.NormFloat64() * 10
				if i%4 == 3 {
					counters[i] += float64(rng.IntN(50))
					v = counters[i]
				}
				pts = append(pts, tsdb.Datapoint{Tags: series[i], T: ts, V: v})
			}
			for _, s := range []*DB{mem, dsk} {
				b := &tsdb.Batch{Points: append([]tsdb.Datapoint(nil), pts...)}
				if err := s.Append(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
		case op < 16:
			now += int64(rng.IntN(int(hour)))
		case op < 17:
			mem.Maintain()
			dsk.Maintain()
		case op < 18:
			if err := dsk.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		default:
			if err := dsk.Close(); err != nil {
				t.Fatal(err)
			}
			dsk = openDB(t, dir, opts)
		}
		for _, req := range []tsdb.FetchRequest{
			{Query: tags.True()},
			{Query: tags.Eq("name", "m1"), Aggregation: tsdb.AggSum, GroupBy: []string{"app"}},
			{Query: tags.Starts("app", "a1"), Aggregation: tsdb.AggCount, Step: 5 * minute, CF: tsdb.CFAvg},
		} {
			if req.Step == 0 {
				req.Step = minute
			}
			req.End = now / req.Step * req.Step
			req.Start = req.End - 8*hour
			a, err := mem.Fetch(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := dsk.Fetch(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a.Series, b.Series, cmpopts.EquateNaNs()); diff != "" {
				t.Fatalf("step %d: %s differs between memory and disk (-memory +disk):\n%s", step, req.Query, diff)
			}
		}
	}
}
