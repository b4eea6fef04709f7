package spanstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/tracingtest"
)

// BenchSpans is how many spans the read benchmarks load:
// SEXTANT_BENCH_SPANS, default 10 000 000 (the figure).
func BenchSpans() int {
	if n, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_SPANS")); err == nil && n > 0 {
		return n
	}
	return 10_000_000
}

const benchWindow = 6 * time.Hour

var benchEnd = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func genBatch(i int) ptrace.Traces { return tracingtest.Batch(i, benchEnd, benchWindow) }

// BenchmarkWrite stores 1 000-span requests from 4 writers, durably.
func BenchmarkWrite(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Now: func() time.Time { return benchEnd }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batches := make([]ptrace.Traces, 64)
	for i := range batches {
		batches[i] = genBatch(i)
	}
	b.ReportAllocs()
	b.SetParallelism(2) // 4 writers on 2 cores
	var next sync.Mutex
	i := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			td := batches[i%len(batches)]
			i++
			next.Unlock()
			if err := s.WriteTraces(context.Background(), td); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*tracingtest.BatchSpans)/b.Elapsed().Seconds(), "spans/s")
}

// loaded is the store the read benchmarks share: BenchSpans() spans,
// loaded once per process.
var loaded struct {
	once sync.Once
	s    *Store
	err  error
	dir  string
}

func loadedStore(b *testing.B) *Store {
	loaded.once.Do(func() {
		loaded.dir, loaded.err = os.MkdirTemp("", "spanstore-bench")
		if loaded.err != nil {
			return
		}
		loaded.s, loaded.err = Open(loaded.dir, Options{Now: func() time.Time { return benchEnd }, CacheSize: 256 << 20})
		if loaded.err != nil {
			return
		}
		n := BenchSpans() / tracingtest.BatchSpans
		start := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range 4 {
			wg.Go(func() {
				for i := range work {
					if err := loaded.s.WriteTraces(context.Background(), genBatch(i)); err != nil {
						loaded.err = err
					}
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		fmt.Fprintf(os.Stderr, "loaded %d spans in %v\n", n*tracingtest.BatchSpans, time.Since(start).Round(time.Millisecond))
	})
	if loaded.err != nil {
		b.Fatal(loaded.err)
	}
	return loaded.s
}

// TestMain removes the shared benchmark store and checks that no store
// left a goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if loaded.s != nil {
		loaded.s.Close()
		os.RemoveAll(loaded.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// BenchmarkGetTrace reads random traces of the loaded store and reports
// latency percentiles.
func BenchmarkGetTrace(b *testing.B) {
	s := loadedStore(b)
	traces := BenchSpans() / tracingtest.TraceSpans
	r := rand.New(rand.NewPCG(7, 7))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		n := r.IntN(traces)
		per := tracingtest.BatchSpans / tracingtest.TraceSpans
		id := tracing.TraceID(tracingtest.TraceID(n/per, n%per))
		t0 := time.Now()
		got, err := s.GetTrace(context.Background(), id)
		lat = append(lat, time.Since(t0))
		if err != nil || len(got.Spans) != tracingtest.TraceSpans {
			b.Fatalf("trace %v: %d spans, %v", id, len(got.Spans), err)
		}
	}
	report(b, lat)
}

// BenchmarkSearch runs service + operation + duration searches over the
// loaded store, newest 20 traces over the whole window, and reports
// latency percentiles.
func BenchmarkSearch(b *testing.B) {
	benchSearch(b, 9, func(r *rand.Rand, q *tracing.Query) {
		q.Operation = fmt.Sprintf("op-%d", r.IntN(tracingtest.Operations))
		q.MinDuration = 50 * time.Millisecond
	})
}

// BenchmarkSearchAttribute searches a service for one user's traces
// (user.id is one of 1 000 values per span): the search entries' blooms
// decide most entries without reading blocks.
func BenchmarkSearchAttribute(b *testing.B) {
	benchSearch(b, 11, func(r *rand.Rand, q *tracing.Query) {
		q.Attributes = []tracing.AttrFilter{{Key: "user.id", Value: fmt.Sprint("u", r.IntN(1000))}}
	})
}

// BenchmarkSearchRegex searches a service for users matching a regex (10
// of the 1 000 user ids): the hour's value dictionary turns it into 10
// exact values for the blooms.
func BenchmarkSearchRegex(b *testing.B) {
	benchSearch(b, 13, func(r *rand.Rand, q *tracing.Query) {
		re := regexp.MustCompile(fmt.Sprintf("^(?:u%d[0-9])$", 10+r.IntN(90)))
		q.Attributes = []tracing.AttrFilter{{Key: "user.id", Match: tracing.MatchRegex, Regex: re}}
	})
}

// benchSearch runs searches of a random service, newest 20 traces over
// the whole window, with what edit adds, and reports latency percentiles
// and traces found per search.
func benchSearch(b *testing.B, seed uint64, edit func(*rand.Rand, *tracing.Query)) {
	s := loadedStore(b)
	r := rand.New(rand.NewPCG(seed, seed))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	found := 0
	for b.Loop() {
		q := tracing.Query{
			Service: fmt.Sprintf("svc-%02d", r.IntN(tracingtest.Services)),
			Start:   benchEnd.Add(-benchWindow).UnixNano(), End: benchEnd.UnixNano(), Limit: 20,
		}
		edit(r, &q)
		t0 := time.Now()
		got, err := s.FindTraces(context.Background(), q)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		found += len(got)
	}
	b.ReportMetric(float64(found)/float64(b.N), "traces/op")
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
