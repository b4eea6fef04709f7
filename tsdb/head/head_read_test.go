package head

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestScanAhead checks ScanAhead's contract: a batch's views stay valid
// while the next batch is collected (each batch is read on a goroutine of
// its own that the next call of fn waits for, so that the race detector
// sees a buffer reused too early), they hold what the series hold, and
// done is called once, last, also when fn stops the scan.
func TestScanAhead(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 3*hour}
	h := newHead(t, c, nil)
	const n = 2*scanBatch + 44 // three batches, the last one short
	var pts []tsdb.Datapoint
	for i := range n {
		ts := tags.New("name", "m", "i", fmt.Sprint(i), "atlas.dstype", "gauge")
		// A sealed block (period 0) and an open one (period 1).
		pts = append(pts, pt(ts, t0+5*minute, float64(i)), pt(ts, t0+2*hour+7*minute, float64(i)+0.5))
	}
	appendOK(t, h, pts...)
	ids := h.Index().Select(tags.Eq("name", "m"))

	// sum decodes the views of a batch: for each series, the value of its
	// sealed and its open block.
	sum := func(vs []View) (float64, error) {
		var s float64
		for _, v := range vs {
			for _, b := range v.Blocks {
				var vals []float64
				if b.Open != nil {
					vals = b.Open.Values(nil, h.BlockSteps())
				} else {
					var err error
					if vals, err = chunk.Decode(nil, b.Data); err != nil {
						return 0, err
					}
				}
				for _, x := range vals {
					if !chunk.IsMissing(x) {
						s += x
					}
				}
			}
		}
		return s, nil
	}
	for _, stopAt := range []int{-1, 1} {
		var (
			wg      sync.WaitGroup
			total   float64
			sums    []float64
			errs    []error
			batches int
			dones   int
			mu      sync.Mutex
		)
		h.ScanAhead(ids, math.MinInt64, math.MaxInt64, func(vs []View) bool {
			if dones > 0 {
				t.Errorf("fn called after done")
			}
			wg.Wait() // the batch before, read while this one was collected
			batches++
			wg.Go(func() {
				s, err := sum(vs)
				mu.Lock()
				sums, errs = append(sums, s), append(errs, err)
				mu.Unlock()
			})
			return batches-1 != stopAt
		}, func() {
			dones++
			wg.Wait()
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			total += sums[i]
		}
		wantBatches, want := 3, 0.0
		if stopAt >= 0 {
			wantBatches = stopAt + 1
		}
		for _, id := range ids.ToArray()[:min(n, wantBatches*scanBatch)] {
			enc, _ := h.SeriesTags(id)
			ts, err := tags.Decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := ts.Get("i")
			i, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			want += 2*float64(i) + 0.5
		}
		if batches != wantBatches || dones != 1 || total != want {
			t.Errorf("stop at %d: %d batches, done called %d times, sum %v; want %d, 1, %v",
				stopAt, batches, dones, total, wantBatches, want)
		}
	}
}
