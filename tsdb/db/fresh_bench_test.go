package db

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

var (
	freshOnce sync.Once
	freshDB   *DB
	freshW    *tsdbtest.Workload
)

// freshStore returns a store loaded the way `make bench-vs` loads the
// server, and then not maintained: the workload starts an hour into a block
// (sextant-load starts it on the hour that ends it just before now, so the
// first block is half in range), 4 writers share its batches time-major
// (bodies of neighbouring steps reach the store out of order, as they do
// from 4 senders), and the last block stays open. Only the blocks the
// writes themselves sealed are sealed: nothing ran SealIdle.
func freshStore(b *testing.B) (*DB, *tsdbtest.Workload) {
	b.Helper()
	freshOnce.Do(func() {
		n, samples := benchSize()
		w := tsdbtest.LoadWorkload(b, n, samples, benchStart+hour)
		db := openBench(b, "", benchOptions(w), 0)
		refs := createSeries(b, db, w)
		batches := len(w.Series)/10_000 + 1
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				var batch tsdb.Batch
				for {
					k := int(next.Add(1)) - 1
					t, from := 1+k/batches, (k%batches)*10_000
					if t >= w.Samples() {
						return
					}
					if from >= len(w.Series) {
						continue
					}
					batch.Reset()
					w.Batch(&batch, t, from, min(from+10_000, len(w.Series)), refs)
					if err := db.Append(context.Background(), &batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		freshDB, freshW = db, w
	})
	if freshDB == nil {
		b.Skip("no store")
	}
	return freshDB, freshW
}

// BenchmarkQueryFresh is the grouped sum of `make bench-vs` (sum by app of
// the first gauge name, 2 000 series at the full size, over the whole
// workload at its interval) on a freshly loaded store (freshStore), with
// every core the machine gives (a fetch decodes on two goroutines). One op
// is one fetch; p50-ms is the median fetch, cpu-ms/op the process CPU per
// fetch.
func BenchmarkQueryFresh(b *testing.B) {
	db, w := freshStore(b)
	var name string
	for i, s := range w.Series {
		if w.Kinds[i] == tsdbtest.Gauge {
			name = s.Name()
			break
		}
	}
	for _, tc := range []struct {
		name string
		req  tsdb.FetchRequest
	}{
		{"grouped-sum", tsdb.FetchRequest{Query: tags.Eq("name", name), Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}},
		{"sum", tsdb.FetchRequest{Query: tags.Eq("name", name), Aggregation: tsdb.AggSum}},
		{"max-5m", tsdb.FetchRequest{Query: tags.Eq("name", name), Aggregation: tsdb.AggMax, GroupBy: []string{"app"},
			CF: tsdb.CFMax, Step: 5 * w.Interval}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := tc.req
			if req.Step == 0 {
				req.Step = w.Interval
			}
			req.Start, req.End = w.Start+req.Step, w.End()+req.Step
			var set *tsdb.SeriesSet
			var lat []time.Duration
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				start := time.Now()
				var err error
				if set, err = db.Fetch(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(set.Stats.SeriesScanned), "series")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}
