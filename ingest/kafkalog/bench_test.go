package kafkalog

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchIngest appends one step of every series of the standard workload
// per iteration, in batches of 1 000 from 4 writers, through app; drain
// waits until what was appended is in the store. It reports datapoints
// per CPU-second of the whole process and per second.
func benchIngest(b *testing.B, app func(clock *atomic.Int64) (tsdb.Appender, func(total int)), series, samples int) {
	w := tsdbtest.LoadWorkload(b, series, samples, 1_700_006_400_000)
	var clock atomic.Int64
	clock.Store(w.Start)
	a, drain := app(&clock)
	const writers, per = 4, 1000
	total := 0
	b.ReportAllocs()
	cpu0, wall0 := cpuTime(), time.Now()
	for i := 0; b.Loop(); i++ {
		t := i % samples
		shift := int64(i/samples) * int64(samples) * w.Interval
		clock.Store(w.Start + int64(t)*w.Interval + shift)
		var wg sync.WaitGroup
		for k := range writers {
			wg.Go(func() {
				var batch tsdb.Batch
				for from := k * per; from < series; from += writers * per {
					batch.Reset()
					w.Batch(&batch, t, from, min(series, from+per), nil)
					for j := range batch.Points {
						batch.Points[j].T += shift
					}
					if err := a.Append(context.Background(), &batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		total += series
	}
	drain(total)
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.ReportMetric(float64(total)/cpu.Seconds(), "datapoints/cpu-s")
	b.ReportMetric(float64(total)/wall.Seconds(), "datapoints/s")
	b.ReportMetric(0, "ns/op")
}

func benchSize() (int, int) {
	series, samples := tsdbtest.BenchSize()
	return min(series, 20_000), min(samples, 60)
}

// BenchmarkIngestSingleNode: the single-node path, straight into a store
// on disk (fsync batch).
func BenchmarkIngestSingleNode(b *testing.B) {
	series, samples := benchSize()
	benchIngest(b, func(clock *atomic.Int64) (tsdb.Appender, func(int)) {
		store, err := db.Open(b.TempDir(), db.Options{Now: clock.Load})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		return store, func(int) {}
	}, series, samples)
}

// BenchmarkIngestCluster: the cluster path in one process: the Producer
// (an ingest node's writes) → kfake (3 brokers, in-process, so its CPU
// counts) → the Consumer of a store node → a store on disk (fsync batch).
// The clock stops when the store holds every datapoint.
func BenchmarkIngestCluster(b *testing.B) {
	series, samples := benchSize()
	benchIngest(b, func(clock *atomic.Int64) (tsdb.Appender, func(int)) {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		brokers := c.ListenAddrs()
		ctx := context.Background()
		if _, err := EnsureTopics(ctx, brokers, "bench", 16); err != nil {
			b.Fatal(err)
		}
		p, err := NewProducer(ProducerOptions{Brokers: brokers, Prefix: "bench", Partitions: 16, Now: clock.Load})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		store, err := db.Open(b.TempDir(), db.Options{Now: clock.Load, Marks: true})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		spans, err := spanstore.Open(b.TempDir(), spanstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { spans.Close() })
		reg := lib.NewRegistry(lib.RegistryOptions{})
		cons, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "bench", Partitions: 16,
			Appender: store, Traces: spans, KV: store.KV(), Registry: reg, PollWait: 50 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); cons.Run(cctx) }()
		b.Cleanup(func() { cancel(); <-done })
		consumed := reg.Counter("sextant.cluster.consumed", "unit", "datapoints")
		return p, func(total int) {
			deadline := time.Now().Add(5 * time.Minute)
			for int(consumed.Count()) < total && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // polling the consumer's progress
			}
			if n := int(consumed.Count()); n < total {
				b.Fatalf("store node applied %d of %d datapoints", n, total)
			}
		}
	}, series, samples)
}

// BenchmarkStrongRead measures what a strong read adds: "end-offsets" is
// one EndReader.EndOffsets (the query node's round trip to Kafka);
// "write-then-wait" is a one-datapoint write acknowledged by Kafka, the
// end offsets read after it, and the store node's WaitApplied until its
// consumer applied it (the read-after-write latency on an idle store).
// In-process, on kfake.
func BenchmarkStrongRead(b *testing.B) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	ctx := context.Background()
	if _, err := EnsureTopics(ctx, brokers, "test", partitions); err != nil {
		b.Fatal(err)
	}
	r, err := NewEndReader(brokers)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.Run("end-offsets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.EndOffsets(ctx, MetricsTopic("test")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write-then-wait", func(b *testing.B) {
		p, err := NewProducer(ProducerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions, Now: clock})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		store, err := db.Open("", db.Options{Step: step, Now: clock, MaintenanceInterval: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		spans, err := spanstore.Open(b.TempDir(), spanstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer spans.Close()
		c, err := NewConsumer(ConsumerOptions{Brokers: brokers, Prefix: "test", Partitions: partitions,
			Appender: store, Traces: spans, KV: tsdbtest.NewKV(), PollWait: 100 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(cctx) }()
		defer func() { cancel(); <-done }()
		ts := batchOf(1, now, 1).Points[0].Tags
		part := tags.PartitionOf(ts, partitions)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := p.Append(ctx, &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: ts, T: now, V: float64(i)}}}); err != nil {
				b.Fatal(err)
			}
			ends, err := r.EndOffsets(ctx, MetricsTopic("test"))
			if err != nil {
				b.Fatal(err)
			}
			if err := c.WaitApplied(ctx, MetricsTopic("test"), part, ends[part]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// plainWriter hides the span store's marks: the consumer then writes
// without them.
type plainWriter struct{ tracing.Writer }

// BenchmarkApplySpans applies span records of 64 spans each (32 traces
// of a call) as the consumer does after a fetch, to a span store on disk,
// without Kafka: plain/fetch=1 is one write and one sync per record,
// without a mark (the consumer before marks); marked/fetch=1 adds the
// mark to each write; marked/fetch=64 is the consumer on a fetch of 64
// records, merged into one write and one sync. It reports spans per
// CPU-second of the process and per second.
func BenchmarkApplySpans(b *testing.B) {
	for _, bc := range []struct {
		name   string
		marked bool
		fetch  int
	}{{"plain/fetch=1", false, 1}, {"marked/fetch=1", true, 1}, {"marked/fetch=64", true, 64}} {
		b.Run(bc.name, func(b *testing.B) {
			spans, err := spanstore.Open(b.TempDir(), spanstore.Options{Now: func() time.Time { return time.UnixMilli(now) }})
			if err != nil {
				b.Fatal(err)
			}
			defer spans.Close()
			var w tracing.Writer = spans
			if !bc.marked {
				w = plainWriter{spans}
			}
			store, err := db.Open("", db.Options{Step: step, Now: clock, MaintenanceInterval: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			c, err := NewConsumer(ConsumerOptions{Brokers: []string{"unused:9092"}, Partitions: 1,
				Appender: store, Traces: w, KV: tsdbtest.NewKV()})
			if err != nil {
				b.Fatal(err)
			}
			// 64 records, encoded once, applied again and again at
			// growing offsets.
			values := make([][]byte, 64)
			for i := range values {
				td := ptrace.NewTraces()
				for k := range 32 {
					callTrace(traceID(i*32+k), "op").ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
				}
				if values[i], err = AppendSpans(nil, td); err != nil {
					b.Fatal(err)
				}
			}
			recs := make([]*kgo.Record, bc.fetch)
			b.ReportAllocs()
			cpu0, wall0 := cpuTime(), time.Now()
			var total, off int
			for b.Loop() {
				for i := range recs {
					recs[i] = &kgo.Record{Topic: c.spans, Offset: int64(off), Value: values[off%len(values)]}
					off++
				}
				if _, err := c.applySpans(context.Background(), recs, c.spans, 0); err != nil {
					b.Fatal(err)
				}
				total += 64 * len(recs)
			}
			cpu, wall := cpuTime()-cpu0, time.Since(wall0)
			b.ReportMetric(float64(total)/cpu.Seconds(), "spans/cpu-s")
			b.ReportMetric(float64(total)/wall.Seconds(), "spans/s")
		})
	}
}
