package head

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// BenchmarkAppend appends batches of 10 000 datapoints to existing series
// (the tsdbtest workload's shape: counters, gauges and constants), by tags and by ref, in
// memory only. One op is one datapoint.
func BenchmarkAppend(b *testing.B) {
	for _, byRef := range []bool{false, true} {
		name := "tags"
		if byRef {
			name = "ref"
		}
		b.Run(name, func(b *testing.B) {
			c := &clock{t0}
			h := newHead(b, c, func(o *Options) { o.MaxAge = 1 << 50; o.MaxFuture = 1 << 50 })
			const n = 10000
			pts := make([]tsdb.Datapoint, n)
			for i := range pts {
				dst := []string{"counter", "gauge", "gauge"}[i%3]
				pts[i] = pt(tags.New("name", fmt.Sprintf("metric_%02d", i%50), "app", fmt.Sprintf("app%02d", i%100),
					"node", fmt.Sprintf("i-%08x", i*2654435761), "region", "us-east-1", "status", "200", "atlas.dstype", dst), 0, 0)
			}
			batch := &tsdb.Batch{Points: pts}
			ts := int64(t0)
			cnt := make([]float64, n)
			fill := func() {
				ts += minute
				for i := range batch.Points {
					p := &batch.Points[i]
					p.T = ts
					if !byRef {
						p.Ref = 0 // Append fills refs in; measure the lookup by tags
					}
					cnt[i] += float64(i % 97)
					p.V = cnt[i]
				}
			}
			for range 3 {
				fill()
				h.Append(context.Background(), batch)
			}
			if byRef {
				for i := range batch.Points {
					batch.Points[i].Tags = nil
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += n {
				b.StopTimer()
				fill()
				b.StartTimer()
				if _, err := h.Append(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mdp/s")
		})
	}
}

// BenchmarkSeriesMemory loads the tsdbtest workload (SEXTANT_BENCH_SERIES
// series, default 100 000, × 60 samples: a series' fixed costs next to
// little data) into a head in memory, as bench-vs sends it (time-major,
// 10 000 datapoints a batch, tags with every one), and reports the live
// heap per series after a collection, and the parts the head accounts for
// (MemoryStats). In-process: no WAL, no ingest handler, no runtime
// headroom; see docs/benchmarks.md, "Memory per series at a million
// series". One op is one load.
func BenchmarkSeriesMemory(b *testing.B) {
	n, _ := tsdbtest.BenchSize()
	w := tsdbtest.LoadWorkload(b, n, 60, t0)
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c := &clock{t: w.End()}
		h := newHead(b, c, func(o *Options) { o.MaxAge = 4 * hour })
		var batch tsdb.Batch
		for t := range w.Samples() {
			for from := 0; from < len(w.Series); from += 10_000 {
				batch.Points = batch.Points[:0]
				for i := from; i < min(from+10_000, len(w.Series)); i++ {
					if v := w.Values[i][t]; v == v {
						batch.Points = append(batch.Points, tsdb.Datapoint{Tags: w.Series[i], T: w.Start + int64(t)*w.Interval, V: v})
					}
				}
				if _, err := h.Append(context.Background(), &batch); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		st := h.MemoryStats()
		per := func(x int) float64 { return float64(x) / float64(st.Series) }
		b.ReportMetric(per(int(m1.HeapAlloc)-int(m0.HeapAlloc)), "heap-B/series")
		b.ReportMetric(per(st.SeriesBytes), "struct-B/series")
		b.ReportMetric(per(st.TableBytes), "table-B/series")
		b.ReportMetric(per(st.TagIDBytes+st.PairBytes), "tags-B/series")
		b.ReportMetric(per(st.TagBytes), "canonical-tags-B/series")
		b.ReportMetric(per(st.OpenBytes), "open-B/series")
		b.ReportMetric(per(st.IndexBytes), "index-B/series")
		runtime.KeepAlive(h)
	}
}
