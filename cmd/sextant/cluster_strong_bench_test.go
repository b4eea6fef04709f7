package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sextant-dev/sextant/ingest/kafkalog"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// BenchmarkStrongReadBurst measures a burst of 100 concurrent strong
// reads, as the alert rules of a query node make at the close of a step,
// on a kfake cluster of 3 brokers (64 partitions), in-process: one op is
// the burst. list-each is what the burst cost when every strong read
// listed the log's end offsets itself (100 listings); fetch-strong is the
// burst of fetches through the fan-out, whose reads share listings
// (listings/op), over one in-process store node that has applied
// everything; fetch-eventual the same fetches without the listings.
func BenchmarkStrongReadBurst(b *testing.B) {
	const burst, parts = 100, 64
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, "bench-metrics", "bench-spans"))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	r, err := kafkalog.NewEndReader(kc.ListenAddrs())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	list := func(ctx context.Context, l fanout.Log) ([]int64, error) {
		return r.EndOffsets(ctx, logTopic("bench", l))
	}
	if _, err := list(context.Background(), fanout.LogMetrics); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli() / 1000 * 1000
	store, err := db.Open("", db.Options{Step: 1000, MemoryRetention: 3600_000, IngestMaxAge: 3600_000, Now: func() int64 { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	batch := &tsdb.Batch{}
	for i := range 20 {
		batch.Points = append(batch.Points, tsdb.Datapoint{Tags: tags.New("name", "burst", "i", string(rune('a'+i)), "atlas.dstype", "gauge"), T: now - 1000, V: float64(i)})
	}
	if err := store.Append(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer spans.Close()
	h, err := fanout.NewHandler(fanout.HandlerOptions{Querier: store, Reader: spans, Catalog: spans, Deps: spans,
		WaitApplied: func(context.Context, fanout.Log, int, int64) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	all := map[int]bool{}
	for p := range parts {
		all[p] = true
	}
	reg := lib.NewRegistry(lib.RegistryOptions{})
	fan, err := fanout.New(fanout.Options{Owners: oneNode{fanout.Node{ID: "store", Addr: srv.Listener.Addr().String()}, parts, all},
		EndOffsets: list, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	defer fan.Close()
	req := tsdb.FetchRequest{Query: tags.Eq("name", "burst"), Start: now - 60_000, End: now, Step: 1000, Aggregation: tsdb.AggSum}
	run := func(b *testing.B, read func() error) {
		b.ReportAllocs()
		cpu0 := rusageCPU(b)
		for b.Loop() {
			var wg sync.WaitGroup
			for range burst {
				wg.Go(func() {
					if err := read(); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64((rusageCPU(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
	b.Run("list-each", func(b *testing.B) {
		run(b, func() error { _, err := list(context.Background(), fanout.LogMetrics); return err })
	})
	fetch := func(c fanout.Consistency) func() error {
		return func() error {
			_, err := fan.Fetch(fanout.WithConsistency(context.Background(), c), req)
			return err
		}
	}
	b.Run("fetch-strong", func(b *testing.B) {
		listings := reg.Counter("sextant.cluster.fanout.endListings")
		before := listings.Count()
		run(b, fetch(fanout.Strong))
		b.ReportMetric((listings.Count()-before)/float64(b.N), "listings/op")
	})
	b.Run("fetch-eventual", func(b *testing.B) { run(b, fetch(fanout.Eventual)) })
}

// rusageCPU is the user and system CPU time the process used so far.
func rusageCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
