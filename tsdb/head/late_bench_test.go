//go:build unix

package head

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// boundaryLoad is the workload of BenchmarkLateBoundary: lateSeries
// series (half gauges, half sums) that several senders write, as the
// senders of one aggregate do.
const (
	lateSeries  = 2000
	lateSenders = 4
	lateSteps   = 5 // late steps each sender writes per series
)

// boundaryPoints returns the series' datapoints with no time or value.
func boundaryPoints() []tsdb.Datapoint {
	pts := make([]tsdb.Datapoint, lateSeries)
	for i := range pts {
		dst := []string{"gauge", "sum"}[i%2]
		pts[i] = pt(tags.New("name", fmt.Sprintf("metric_%02d", i%50), "node", fmt.Sprintf("i-%08x", i*2654435761),
			"atlas.dstype", dst), 0, 0)
	}
	return pts
}

// fillPeriod writes steps [from, to) of the period starting at start, one
// batch a step, by ref after the first.
func fillPeriod(tb testing.TB, h *Head, pts []tsdb.Datapoint, start int64, from, to int) {
	tb.Helper()
	b := &tsdb.Batch{Points: pts}
	for s := from; s < to; s++ {
		for i := range pts {
			pts[i].T, pts[i].V = start+int64(s)*minute, float64(i%97+s)
		}
		if _, err := h.Append(context.Background(), b); err != nil {
			tb.Fatal(err)
		}
	}
}

// crossBoundary is one block boundary B under concurrent senders: one
// sender runs ahead and writes the first step of the new period for every
// series; then lateSenders senders each write the last lateSteps steps of
// the old period (late: the new period is open) and the first two of the
// new one. It returns the datapoints written.
func crossBoundary(tb testing.TB, h *Head, pts []tsdb.Datapoint, bnd int64) int {
	tb.Helper()
	ahead := append([]tsdb.Datapoint(nil), pts...)
	for i := range ahead {
		ahead[i].T, ahead[i].V = bnd, 1
	}
	if _, err := h.Append(context.Background(), &tsdb.Batch{Points: ahead}); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range lateSenders {
		mine := append([]tsdb.Datapoint(nil), pts...)
		wg.Go(func() {
			b := &tsdb.Batch{Points: mine}
			for k := lateSteps; k >= -1; k-- {
				for i := range mine {
					mine[i].T, mine[i].V = bnd-int64(k)*minute, float64(s+i%7)
				}
				if _, err := h.Append(context.Background(), b); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return len(pts) * (1 + lateSenders*(lateSteps+2))
}

// BenchmarkLateBoundary measures, in-process, concurrent senders writing
// around a block boundary: late datapoints into the period that just
// ended after one sender opened the next (see crossBoundary), then the
// maintenance seal once the period's seal delay has passed. "first" is a
// series' first such boundary, "steady" the next one. Figures are per
// datapoint written across the boundary, the seal included; reencodes/dp
// counts the sealed blocks encoded again (sextant.tsdb.blocksReencoded).
func BenchmarkLateBoundary(b *testing.B) {
	for _, steady := range []bool{false, true} {
		name := "first"
		if steady {
			name = "steady"
		}
		b.Run(name, func(b *testing.B) {
			pts := boundaryPoints()
			var dps, reenc float64
			var mallocs uint64
			var ms runtime.MemStats
			cpu := int64(0)
			for b.Loop() {
				b.StopTimer()
				bnd := int64(t0 + 2*hour)
				c := &clock{bnd + minute}
				h := newHead(b, c, func(o *Options) { o.MaxAge = hour })
				fillPeriod(b, h, pts, t0, 0, 115)
				if steady {
					crossBoundary(b, h, pts, bnd)
					c.t = bnd + 10*minute
					h.SealIdle(c.t)
					fillPeriod(b, h, pts, bnd, 2, 115)
					bnd += 2 * hour
					c.t = bnd + minute
				}
				reenc0 := h.m.reencoded.Count()
				runtime.ReadMemStats(&ms)
				m0 := ms.Mallocs
				cpu0 := cpuNanos()
				b.StartTimer()
				dps += float64(crossBoundary(b, h, pts, bnd))
				// Past the seal delay, the senders quiet: the seal.
				c.t = bnd + 10*minute
				h.SealIdle(c.t)
				b.StopTimer()
				cpu += cpuNanos() - cpu0
				runtime.ReadMemStats(&ms)
				mallocs += ms.Mallocs - m0
				reenc += h.m.reencoded.Count() - reenc0
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/dps, "ns/dp")
			b.ReportMetric(float64(cpu)/dps, "cpu-ns/dp")
			b.ReportMetric(float64(mallocs)/dps, "allocs/dp")
			b.ReportMetric(reenc/dps, "reencodes/dp")
		})
	}
}
