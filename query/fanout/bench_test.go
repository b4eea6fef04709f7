package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// BenchmarkFanoutGroupedSum measures the fan-out's overhead on the grouped
// sum of one metric name by app (2 000 series of the standard workload;
// SEXTANT_BENCH_* shrink it): one store answering in-process (single)
// against 3 in-process store nodes over real HTTP on loopback, each
// holding the 4 of 6 partitions it owns (fanout3), the query node merging
// their partial sums. In-process: the nodes share the benchmark's cores.
func BenchmarkFanoutGroupedSum(b *testing.B) {
	n, samples := tsdbtest.BenchSize()
	w := tsdbtest.LoadWorkload(b, n, samples, dataStart)
	end := w.End()
	req := tsdb.FetchRequest{Query: tags.Eq("name", w.Series[0].Name()), Start: w.Start + step, End: end, Step: step,
		Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}
	run := func(b *testing.B, q tsdb.Querier) {
		b.ReportAllocs()
		cpu0 := processCPU(b)
		for b.Loop() {
			set, err := q.Fetch(context.Background(), req)
			if err != nil || len(set.Series) == 0 {
				b.Fatalf("fetch: %d groups, %v", len(set.Series), err)
			}
		}
		// CPU time of the whole process (query node and store nodes) per
		// fetch: on a shared machine a steadier figure than wall time.
		b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
	b.Run("single", func(b *testing.B) { run(b, querytest.OpenWorkload(b, w)) })
	fan := func(limits tsdb.Cost) func(b *testing.B) {
		return func(b *testing.B) {
			q, err := fanout.New(fanout.Options{Owners: benchStoreNodes(b, w), Limits: limits})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			run(b, q)
		}
	}
	b.Run("fanout3", fan(tsdb.Cost{}))
	// With a single node's default query limits on the total: every
	// node tells its share's cost before it reads (a 103 answer), and the
	// query node adds the costs up.
	b.Run("fanout3-limits", fan(tsdb.Cost{Series: 1_000_000, Datapoints: 500_000_000, Bytes: 256 << 20}))
}

// benchStoreNodes starts the 3 in-process store nodes of w's partitions
// (each the 4 of 6 it owns) over real HTTP on loopback, stopped when b
// ends.
func benchStoreNodes(b *testing.B, w *tsdbtest.Workload) staticOwners {
	b.Helper()
	var o staticOwners
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { spans.Close() })
	for i := range numNodes {
		sub := &tsdbtest.Workload{Start: w.Start, Interval: w.Interval}
		for j, s := range w.Series {
			if owns(i, tags.PartitionOf(s, numPartitions)) {
				sub.Series = append(sub.Series, s)
				sub.Values = append(sub.Values, w.Values[j])
				sub.Kinds = append(sub.Kinds, w.Kinds[j])
			}
		}
		store := querytest.OpenWorkload(b, sub)
		h, err := fanout.NewHandler(fanout.HandlerOptions{Querier: store, Reader: spans, Catalog: spans, Deps: spans})
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		h.Register(mux)
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		o.nodes = append(o.nodes, fanout.Node{ID: fmt.Sprint(i), Addr: srv.Listener.Addr().String()})
	}
	return o
}

// processCPU is the user and system CPU time the process used so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// jsonSeries is what a JSON wire format would carry per series: NaN has
// no JSON number, so values are pointers (null for no data).
type jsonSeries struct {
	Tags   map[string]string `json:"tags"`
	DSType int               `json:"dstype"`
	Values []*float64        `json:"values"`
}

// BenchmarkWire compares the binary answer format with JSON on two
// answers: a grouped sum (100 groups × 360 points) and raw series (1 000
// series × 360 points, a tenth of the points missing). It reports the
// encoded size as wire-bytes.
func BenchmarkWire(b *testing.B) {
	mk := func(lines int, kv func(i int) []string) *tsdb.SeriesSet {
		set := &tsdb.SeriesSet{}
		for i := range lines {
			vs := make([]float64, 360)
			for j := range vs {
				vs[j] = float64(i*j%977) * 1.25
				if (i+j)%10 == 0 {
					vs[j] = math.NaN()
				}
			}
			set.Series = append(set.Series, tsdb.Series{Tags: tags.New(kv(i)...), Values: vs})
		}
		return set
	}
	sets := map[string]*tsdb.SeriesSet{
		"grouped": mk(100, func(i int) []string { return []string{"app", fmt.Sprint("app-", i)} }),
		"raw": mk(1000, func(i int) []string {
			return []string{"name", "requests.counter.00", "app", fmt.Sprint("api", i%100), "node", fmt.Sprintf("i-%08x", i), "region", "us-east-1"}
		}),
	}
	for _, name := range []string{"grouped", "raw"} {
		set := sets[name]
		b.Run(name+"/binary", func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				enc := fanout.AppendSeriesSetForBench(nil, set)
				size = len(enc)
				if _, err := fanout.DecodeSeriesSetForBench(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size), "wire-bytes")
		})
		b.Run(name+"/json", func(b *testing.B) {
			var size int
			b.ReportAllocs()
			for b.Loop() {
				js := make([]jsonSeries, len(set.Series))
				for i, s := range set.Series {
					js[i] = jsonSeries{Tags: s.Tags.Map(), DSType: int(s.DSType), Values: make([]*float64, len(s.Values))}
					for j := range s.Values {
						if !math.IsNaN(s.Values[j]) {
							js[i].Values[j] = &s.Values[j]
						}
					}
				}
				enc, err := json.Marshal(js)
				if err != nil {
					b.Fatal(err)
				}
				size = len(enc)
				var back []jsonSeries
				if err := json.Unmarshal(enc, &back); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size), "wire-bytes")
		})
	}
}
