package head

import (
	"context"
	"fmt"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
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
