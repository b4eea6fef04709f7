//go:build unix

package head

import (
	"context"
	"fmt"
	"math"
	"syscall"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// BenchmarkBackfill appends hours-old data time-major, as sextant-load
// does, with an idle seal every 30 steps as the store's maintenance makes
// every 30 s while a backfill runs: it seals every open block of a past
// period mid-period. 2 000 series (counters, random-walk gauges,
// constants) × 360 steps per op; figures per datapoint, sealing included.
func BenchmarkBackfill(b *testing.B) {
	const n, steps = 2000, 360
	pts := make([]tsdb.Datapoint, n)
	for i := range pts {
		dst := []string{"counter", "gauge", "gauge", "counter", "gauge"}[i%5]
		pts[i] = pt(tags.New("name", fmt.Sprintf("metric_%02d", i%50), "node", fmt.Sprintf("i-%08x", i*2654435761),
			"atlas.dstype", dst), 0, 0)
	}
	batch := &tsdb.Batch{Points: pts}
	b.ReportAllocs()
	var late float64
	cpu0 := cpuNanos()
	for b.Loop() {
		c := &clock{t0 + 24*hour}
		h := newHead(b, c, func(o *Options) { o.MaxAge = 1 << 50 })
		cnt := make([]float64, n)
		walk := make([]float64, n)
		for s := range steps {
			for i := range batch.Points {
				p := &batch.Points[i]
				p.T, p.Ref = t0+int64(s)*minute, 0
				switch i % 5 {
				case 0, 3:
					cnt[i] += float64(i%97 + s%7)
					p.V = cnt[i]
				case 1, 2:
					walk[i] += math.Sin(float64(s*i)) * 0.37
					p.V = 50 + walk[i]
				default:
					p.V = 3
				}
			}
			if _, err := h.Append(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			if s%30 == 29 {
				h.SealIdle(c.t)
			}
		}
		h.SealIdle(c.t)
		late += h.m.late.Count()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*steps), "ns/dp")
	b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N*n*steps), "cpu-ns/dp")
	b.ReportMetric(late/float64(b.N*n*steps), "late/dp")
}

// cpuNanos returns the process's user and system CPU time: on a machine
// shared with other builds, wall time also counts waiting for a core.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
