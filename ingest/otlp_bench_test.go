package ingest

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// otlpBody encodes sample t of series [from, to) of w as one OTLP export
// request: a resource per node (service.name the app, host.name the node,
// both promoted to tags), its series as metrics with the other tags as
// datapoint attributes (counters as cumulative monotonic sums, the others
// as gauges), and one explicit-bucket histogram per resource, whose
// datapoint maps to a dozen series.
func otlpBody(tb testing.TB, w *tsdbtest.Workload, t, from, to int) []byte {
	tb.Helper()
	md := pmetric.NewMetrics()
	start := pcommon.Timestamp((w.Start - w.Interval) * 1e6)
	now := pcommon.Timestamp((w.Start + int64(t)*w.Interval) * 1e6)
	var ms pmetric.MetricSlice
	node := ""
	for i := from; i < to; i++ {
		s := w.Series[i]
		if n, _ := s.Get("node"); n != node {
			node = n
			rm := md.ResourceMetrics().AppendEmpty()
			app, _ := s.Get("app")
			rm.Resource().Attributes().PutStr("service.name", app)
			rm.Resource().Attributes().PutStr("host.name", node)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("bench")
			ms = sm.Metrics()
			h := ms.AppendEmpty()
			h.SetName("request.latency")
			h.SetUnit("ms")
			hist := h.SetEmptyHistogram()
			hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp := hist.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			dp.ExplicitBounds().FromRaw([]float64{5, 10, 25, 50, 100, 250, 500})
			counts := []uint64{10, 40, 80, 60, 20, 5, 1, 0}
			for k := range counts {
				counts[k] *= uint64(t + 1)
			}
			dp.BucketCounts().FromRaw(counts)
			dp.SetCount(216 * uint64(t+1))
			dp.SetSum(float64(5000 * (t + 1)))
			dp.Attributes().PutStr("status", "200")
		}
		m := ms.AppendEmpty()
		m.SetName(s.Name())
		var dp pmetric.NumberDataPoint
		if w.Kinds[i] == tsdbtest.Counter {
			sum := m.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp = sum.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
		} else {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		}
		dp.SetTimestamp(now)
		dp.SetDoubleValue(w.Values[i][t])
		for _, tag := range s {
			switch tag.Key {
			case "name", "atlas.dstype", "app", "node":
			default:
				dp.Attributes().PutStr(tag.Key, tag.Value)
			}
		}
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// BenchmarkOTLPStore is the OTLP metrics path end to end in-process: the
// protobuf decode (pdata), the mapping onto series and the append to a
// real store on disk (tsdb/db, fsync batch), one sender, time-major
// requests of about 10 000 metric datapoints of the standard workload
// (SEXTANT_BENCH_SERIES series, 100 000 by default; 20 samples,
// SEXTANT_BENCH_SAMPLES up to 60), plus a histogram per node and request.
// One op is the whole load into a fresh store; requests are encoded
// between the measured stretches. cpu-ns/dp is the process's CPU
// (getrusage) per stored datapoint while exporting only, allocs/dp the
// allocations per stored datapoint; the sub-benchmarks compare the path
// without and with the ref cache in one run.
func BenchmarkOTLPStore(b *testing.B) {
	series, samples := tsdbtest.BenchSize()
	samples = min(samples, 60)
	if os.Getenv("SEXTANT_BENCH_SAMPLES") == "" {
		samples = 20
	}
	w := tsdbtest.LoadWorkload(b, series, samples, 1_700_006_400_000)
	for _, bc := range []struct {
		name    string
		maxRefs int
	}{{"refcache=off", -1}, {"refcache=on", 0}} {
		b.Run(bc.name, func(b *testing.B) { benchOTLPStore(b, w, bc.maxRefs) })
	}
}

func benchOTLPStore(b *testing.B, w *tsdbtest.Workload, maxRefs int) {
	series, samples := len(w.Series), w.Samples()
	end := w.End()
	const per = 10_000
	bodies := make([][]byte, (series+per-1)/per)
	var cpu time.Duration
	var mallocs uint64
	var mem runtime.MemStats
	dps := 0
	b.ReportAllocs()
	for b.Loop() {
		store, err := db.Open(b.TempDir(), db.Options{Now: func() int64 { return end }, IngestMaxAge: 2 * 3600_000,
			MaintenanceInterval: 1 << 40, CheckpointInterval: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		reg := lib.NewRegistry(lib.RegistryOptions{})
		h, err := New(Options{Appender: store, MaxRefs: maxRefs, Now: func() int64 { return end }, Registry: reg})
		if err != nil {
			b.Fatal(err)
		}
		for t := range samples {
			for k := range bodies {
				bodies[k] = otlpBody(b, w, t, k*per, min(series, (k+1)*per))
			}
			runtime.ReadMemStats(&mem)
			m0 := mem.Mallocs
			c0 := cpuTime()
			for _, raw := range bodies {
				req := pmetricotlp.NewExportRequest()
				if err := req.UnmarshalProto(raw); err != nil {
					b.Fatal(err)
				}
				resp, err := h.exportMetrics(context.Background(), req)
				if err != nil || resp.PartialSuccess().RejectedDataPoints() > 0 {
					b.Fatalf("%v %v", err, resp.PartialSuccess().ErrorMessage())
				}
			}
			cpu += cpuTime() - c0
			runtime.ReadMemStats(&mem)
			mallocs += mem.Mallocs - m0
		}
		dps += int(reg.Counter("sextant.ingest.datapoints", "protocol", protoOTLP).Count())
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(dps), "cpu-ns/dp")
	b.ReportMetric(float64(dps)/cpu.Seconds(), "dp/cpu-s")
	b.ReportMetric(float64(mallocs)/float64(dps), "allocs/dp")
	b.ReportMetric(0, "ns/op")
}
