// Package querytest is the test harness of the query packages: it opens a
// real store (tsdb/db, in memory) and loads series into it, so tests
// evaluate expressions over the real fetch path. Only tests import it.
package querytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// Input is one series to load: Values[j] is at Start + j*Step; NaN values
// are not written.
type Input struct {
	Tags   tags.Set
	Start  int64
	Values []float64
}

const day = 24 * 3600_000

// Open returns an in-memory store with the given storage step holding the
// inputs. Its clock stands at now (Unix ms), and it accepts data up to 400
// days older than that. The store is closed when the test ends.
func Open(tb testing.TB, step, now int64, inputs ...Input) *db.DB {
	tb.Helper()
	d, err := db.Open("", db.Options{
		Step: step, MemoryRetention: 400 * day, Retention: 400 * day, IngestMaxAge: 400 * day,
		MaxFuture: 400 * day, Now: func() int64 { return now },
	})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	Load(tb, d, step, inputs...)
	return d
}

// Load appends inputs in time order, failing the test on any rejection.
func Load(tb testing.TB, a tsdb.Appender, step int64, inputs ...Input) {
	tb.Helper()
	var b tsdb.Batch
	maxLen := 0
	for _, in := range inputs {
		maxLen = max(maxLen, len(in.Values))
	}
	// Step by step across all series, so every series sees its samples in
	// time order.
	for j := 0; j < maxLen; j++ {
		b.Reset()
		for _, in := range inputs {
			if j < len(in.Values) && !math.IsNaN(in.Values[j]) {
				b.Points = append(b.Points, tsdb.Datapoint{Tags: in.Tags, T: in.Start + int64(j)*step, V: in.Values[j]})
			}
		}
		if len(b.Points) == 0 {
			continue
		}
		if err := a.Append(context.Background(), &b); err != nil {
			tb.Fatalf("append: %v", err)
		}
		for _, r := range b.Rejected {
			tb.Fatalf("append rejected %v at %d: %v", b.Points[r.Index].Tags, b.Points[r.Index].T, r.Reason)
		}
	}
}

// OpenWorkload returns an in-memory store holding every sample of w, with
// its clock at the end of the workload and its maintenance switched off, as
// the benchmarks of the query packages use it. The store is closed when the
// test ends.
func OpenWorkload(tb testing.TB, w *tsdbtest.Workload) *db.DB {
	tb.Helper()
	d, err := OpenWorkloadStore(w)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return d
}

// OpenWorkloadStore is OpenWorkload for a store that outlives one test or
// benchmark (shared by a package's benchmarks): the caller closes it.
func OpenWorkloadStore(w *tsdbtest.Workload) (*db.DB, error) {
	end := w.Start + int64(w.Samples())*w.Interval
	d, err := db.Open("", db.Options{
		Now: func() int64 { return end }, IngestMaxAge: end - w.Start + 3600_000,
		MemoryRetention: end - w.Start + 4*3600_000, MaintenanceInterval: 1 << 40, CheckpointInterval: 1 << 40,
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Time order across all series, in batches of 10 000 datapoints.
	var batch tsdb.Batch
	for t := 0; t < w.Samples(); t++ {
		for from := 0; from < len(w.Series); from += 10_000 {
			batch.Reset()
			w.Batch(&batch, t, from, min(from+10_000, len(w.Series)), nil)
			if err := d.Append(context.Background(), &batch); err != nil {
				return nil, errors.Join(fmt.Errorf("append: %w", err), d.Close())
			}
		}
	}
	return d, nil
}
