package db

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// Benchmarks run on the tsdbtest workload (tsdbtest.NewWorkload). The full
// size, as docs/benchmarks.md reports, is 100 000 series × 360 samples at
// 60 s; SEXTANT_BENCH_SERIES and SEXTANT_BENCH_SAMPLES shrink it for smoke
// runs.
const benchStart = int64(1_700_006_400_000) // a block boundary

func benchSize() (series, samples int) { return tsdbtest.BenchSize() }

var (
	benchWorkloadOnce sync.Once
	benchWorkload     *tsdbtest.Workload
)

func workload(b *testing.B) *tsdbtest.Workload {
	b.Helper()
	benchWorkloadOnce.Do(func() {
		n, t := benchSize()
		benchWorkload = tsdbtest.LoadWorkload(b, n, t, benchStart)
	})
	if benchWorkload == nil {
		b.Skip("no workload")
	}
	return benchWorkload
}

func benchOptions(w *tsdbtest.Workload) Options {
	end := w.Start + int64(w.Samples())*w.Interval
	return Options{
		Now:                 func() int64 { return end },
		IngestMaxAge:        end - w.Start + hour,
		MemoryRetention:     end - w.Start + 4*hour,
		MaintenanceInterval: 1 << 40,
		CheckpointInterval:  1 << 40,
	}
}

// cpuSeconds returns the user and system CPU time of the process.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkAppend appends time-major batches of 10 000 datapoints to
// existing series. One op is one datapoint.
//
//   - memory/tags, memory/ref: an in-memory store, single writer;
//   - durable-batch: a store on disk with --fsync batch and 4 concurrent
//     writers, each on a quarter of the series, every batch durable before
//     Append returns. Mdp/cpu-s is datapoints per CPU-second of the whole
//     process, i.e. per core.
func BenchmarkAppend(b *testing.B) {
	w := workload(b)
	b.Run("memory/tags", func(b *testing.B) { benchAppendMemory(b, w, false) })
	b.Run("memory/ref", func(b *testing.B) { benchAppendMemory(b, w, true) })
	b.Run("durable-batch", func(b *testing.B) { benchAppendDurable(b, w, wal.SyncBatch, 4) })
}

func benchAppendMemory(b *testing.B, w *tsdbtest.Workload, byRef bool) {
	// Time keeps moving forward past the workload's end (values repeat), so
	// every datapoint takes the normal path of a live series.
	var now atomic.Int64
	now.Store(w.Start + w.Interval)
	opts := benchOptions(w)
	opts.Now = now.Load
	db := openBench(b, "", opts, 0)
	defer db.Close()
	refs := createSeries(b, db, w)
	var batch tsdb.Batch
	b.ReportAllocs()
	b.ResetTimer()
	for t, done := 1, 0; done < b.N; t++ {
		for from := 0; from < len(w.Series) && done < b.N; from += 10_000 {
			b.StopTimer()
			batch.Reset()
			r := refs
			if !byRef {
				r = nil
			}
			to := min(from+10_000, len(w.Series))
			w.Batch(&batch, t%w.Samples(), from, to, r)
			ts := w.Start + int64(t)*w.Interval
			for i := range batch.Points {
				batch.Points[i].T = ts
			}
			now.Store(ts)
			b.StartTimer()
			if err := db.Append(context.Background(), &batch); err != nil {
				b.Fatal(err)
			}
			done += len(batch.Points)
		}
		if t%w.Samples() == 0 {
			// Keep memory bounded on long runs, as the maintenance loop would.
			b.StopTimer()
			db.Maintain()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mdp/s")
}

func benchAppendDurable(b *testing.B, w *tsdbtest.Workload, mode wal.SyncMode, writers int) {
	opts := benchOptions(w)
	opts.Fsync = mode
	db := openBench(b, b.TempDir(), opts, 0)
	defer db.Close()
	refs := createSeries(b, db, w)
	per := (len(w.Series) + writers - 1) / writers
	// Pre-build every writer's batches for enough samples to cover b.N.
	samples := min(w.Samples()-1, max(1, b.N/len(w.Series)+1))
	batches := make([][]*tsdb.Batch, writers)
	for g := range writers {
		from, to := g*per, min((g+1)*per, len(w.Series))
		for t := 1; t <= samples; t++ {
			for lo := from; lo < to; lo += 10_000 {
				bt := &tsdb.Batch{}
				w.Batch(bt, t, lo, min(lo+10_000, to), refs)
				batches[g] = append(batches[g], bt)
			}
		}
	}
	runtime.GC()
	b.ReportAllocs()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	var wg sync.WaitGroup
	var total int
	var mu sync.Mutex
	for g := range writers {
		wg.Go(func() {
			n := 0
			for _, bt := range batches[g] {
				if err := db.Append(context.Background(), bt); err != nil {
					b.Error(err)
					return
				}
				n += len(bt.Points)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuSeconds() - cpu0
	b.ReportMetric(float64(total)/b.Elapsed().Seconds()/1e6, "Mdp/s")
	b.ReportMetric(float64(total)/cpu/1e6, "Mdp/cpu-s")
	// One op is one datapoint: rescale so ns/op is per datapoint.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/dp")
}

func openBench(b *testing.B, dir string, opts Options, _ int) *DB {
	b.Helper()
	db, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// createSeries writes sample 0 of every series and returns their refs.
func createSeries(b testing.TB, db *DB, w *tsdbtest.Workload) []tsdb.SeriesRef {
	b.Helper()
	refs := make([]tsdb.SeriesRef, len(w.Series))
	var batch tsdb.Batch
	for from := 0; from < len(w.Series); from += 10_000 {
		batch.Reset()
		w.Batch(&batch, 0, from, min(from+10_000, len(w.Series)), nil)
		if err := db.Append(context.Background(), &batch); err != nil {
			b.Fatal(err)
		}
		if len(batch.Rejected) > 0 {
			b.Fatalf("rejected %v", batch.Rejected[0])
		}
		for i, p := range batch.Points {
			refs[from+i] = p.Ref
		}
	}
	return refs
}

// loadAll writes the whole workload into db and seals every block.
func loadAll(b testing.TB, db *DB, w *tsdbtest.Workload) {
	b.Helper()
	refs := createSeries(b, db, w)
	var batch tsdb.Batch
	for t := 1; t < w.Samples(); t++ {
		for from := 0; from < len(w.Series); from += 10_000 {
			batch.Reset()
			w.Batch(&batch, t, from, min(from+10_000, len(w.Series)), refs)
			if err := db.Append(context.Background(), &batch); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func rssBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// BenchmarkMemory loads the workload into an in-memory store and reports
// the process RSS it added per series (index included) and the size of
// the sealed blocks per datapoint. Each op loads the whole workload.
func BenchmarkMemory(b *testing.B) {
	n, samples := benchSize()
	for b.Loop() {
		settle()
		base := rssBytes()
		w := tsdbtest.LoadWorkload(b, n, samples, benchStart)
		db := openBench(b, "", benchOptions(w), 0)
		loadAll(b, db, w)
		end := w.Start + int64(w.Samples())*w.Interval
		db.Head().SealIdle(end + hour)
		points := len(w.Series) * w.Samples()
		w = nil
		settle()
		rss := rssBytes() - base
		st := db.Head().MemoryStats()
		b.ReportMetric(float64(rss)/float64(st.Series), "rss-B/series")
		b.ReportMetric(float64(st.SealedBytes)/float64(points), "sealed-B/dp")
		b.ReportMetric(float64(st.IndexBytes)/float64(st.Series), "index-B/series")
		runtime.KeepAlive(db)
		db.Close()
	}
}

var (
	queryDBOnce sync.Once
	queryDB     *DB
)

// BenchmarkQuery fetches from an in-memory store holding the workload, on
// one core, without caches. One op is one fetch.
func BenchmarkQuery(b *testing.B) {
	w := workload(b)
	queryDBOnce.Do(func() {
		db := openBench(b, "", benchOptions(w), 0)
		loadAll(b, db, w)
		queryDB = db
	})
	db := queryDB
	end := w.Start + int64(w.Samples())*w.Interval
	start := w.Start + w.Interval // the first step with every counter's rate
	name := w.Series[0].Name()
	single := tags.True()
	for _, t := range w.Series[0] {
		single = tags.And(single, tags.Eq(t.Key, t.Value))
	}
	api, err := tags.Re("app", "api")
	if err != nil {
		b.Fatal(err)
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	for _, tc := range []struct {
		name string
		req  tsdb.FetchRequest
	}{
		{"grouped-sum-one-name", tsdb.FetchRequest{Query: tags.Eq("name", name), Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}},
		{"grouped-sum-all", tsdb.FetchRequest{Query: tags.True(), Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}},
		{"single-series", tsdb.FetchRequest{Query: single}},
		{"prefix-regex-sum", tsdb.FetchRequest{Query: tags.And(tags.Eq("name", name), api), Aggregation: tsdb.AggSum}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := tc.req
			req.Start, req.End, req.Step = start, end, w.Interval
			var set *tsdb.SeriesSet
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				var err error
				if set, err = db.Fetch(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(set.Stats.SeriesScanned), "series")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}
