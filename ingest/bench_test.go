package ingest

import (
	"context"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// discard is an Appender that stores nothing, to measure ingest alone.
type discard struct{}

func (discard) Append(_ context.Context, b *tsdb.Batch) error {
	b.Rejected = b.Rejected[:0]
	return nil
}

// BenchmarkPublishDecode decodes and validates one Atlas body of the tsdbtest workload of
// 10 000 datapoints per op: the JSON scan, the merge with the common tags,
// Atlas's rules and the batch for the store. It reports datapoints per
// second and allocations per datapoint. With refs=on the appender hands
// out refs, so every op after the first goes through the ref cache.
func BenchmarkPublishDecode(b *testing.B) {
	body := tsdbtest.AtlasBody(b, 10_000)
	for _, bc := range []struct {
		name string
		app  tsdb.Appender
	}{{"refs=off", discard{}}, {"refs=on", refAppender{}}} {
		b.Run(bc.name, func(b *testing.B) {
			h, err := New(Options{Appender: bc.app, Now: func() int64 { return 1_700_006_400_000 }})
			if err != nil {
				b.Fatal(err)
			}
			req := &publishRequest{}
			r := httptest.NewRequest("POST", "/api/v1/publish", nil)
			run := func() {
				req.body.Reset()
				req.body.Write(body)
				status, resp, err := h.ingestPublish(r, req)
				if err != nil || status != 200 {
					b.Fatalf("status %d %v %v", status, resp, err)
				}
			}
			run()
			n := len(req.batch.Points)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
			perOp := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(n)/perOp/1e6, "Mdp/s")
			b.ReportMetric(perOp*1e9/float64(n), "ns/dp")
		})
	}
}

// BenchmarkPublishStore is the Atlas publish path end to end in-process:
// decode, validation and the append to a real store on disk (tsdb/db,
// fsync batch), one sender, time-major bodies of 10 000 datapoints of the
// standard workload (SEXTANT_BENCH_SERIES series, 100 000 by default; 20
// samples, SEXTANT_BENCH_SAMPLES up to 60). One op is the whole load into
// a fresh store. The bodies of a step are built between the measured
// stretches: cpu-ns/dp is the process's CPU (getrusage) while publishing
// only, the figure to compare on a shared machine. The sub-benchmarks
// compare the path without and with the ref cache in one run.
func BenchmarkPublishStore(b *testing.B) {
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
		b.Run(bc.name, func(b *testing.B) { benchPublishStore(b, w, bc.maxRefs) })
	}
}

func benchPublishStore(b *testing.B, w *tsdbtest.Workload, maxRefs int) {
	series, samples := len(w.Series), w.Samples()
	end := w.End()
	r := httptest.NewRequest("POST", "/api/v1/publish", nil)
	const per = 10_000
	bodies := make([][]byte, (series+per-1)/per)
	var cpu time.Duration
	dps := 0
	b.ReportAllocs()
	for b.Loop() {
		store, err := db.Open(b.TempDir(), db.Options{Now: func() int64 { return end }, IngestMaxAge: 2 * 3600_000,
			MaintenanceInterval: 1 << 40, CheckpointInterval: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		h, err := New(Options{Appender: store, MaxRefs: maxRefs, Now: func() int64 { return end }})
		if err != nil {
			b.Fatal(err)
		}
		req := &publishRequest{}
		for t := range samples {
			for k := range bodies {
				from := k * per
				bodies[k] = w.AppendAtlas(bodies[k][:0], t, from, min(series, from+per))
			}
			c0 := cpuTime()
			for _, body := range bodies {
				req.body.Reset()
				req.body.Write(body)
				status, resp, err := h.ingestPublish(r, req)
				if err != nil || status != 200 {
					b.Fatalf("status %d %v %v", status, resp, err)
				}
				dps += len(req.batch.Points) + len(req.retry.Points)
			}
			cpu += cpuTime() - c0
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(dps), "cpu-ns/dp")
	b.ReportMetric(float64(dps)/cpu.Seconds(), "dp/cpu-s")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRemoteWriteStore is BenchmarkPublishStore for Prometheus
// remote write: snappy-compressed WriteRequests of 10 000 samples, one per
// series (the name as __name__, the other tags as labels), decoded,
// converted and appended to a real store on disk, with and without the
// ref cache.
func BenchmarkRemoteWriteStore(b *testing.B) {
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
		b.Run(bc.name, func(b *testing.B) { benchRemoteWriteStore(b, w, bc.maxRefs) })
	}
}

func benchRemoteWriteStore(b *testing.B, w *tsdbtest.Workload, maxRefs int) {
	series, samples := len(w.Series), w.Samples()
	end := w.End()
	r := httptest.NewRequest("POST", "/api/v1/write", nil)
	const per = 10_000
	body := func(t, from, to int) []byte {
		var wr prompb.WriteRequest
		for i := from; i < to; i++ {
			ts := prompb.TimeSeries{Samples: []prompb.Sample{{Timestamp: w.Start + int64(t)*w.Interval, Value: w.Values[i][t]}}}
			for _, tag := range w.Series[i] {
				k := tag.Key
				if k == "name" {
					k = "__name__"
				}
				ts.Labels = append(ts.Labels, prompb.Label{Name: k, Value: tag.Value})
			}
			wr.Timeseries = append(wr.Timeseries, ts)
		}
		raw, err := wr.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		return snappy.Encode(nil, raw)
	}
	bodies := make([][]byte, (series+per-1)/per)
	var cpu time.Duration
	dps := 0
	b.ReportAllocs()
	for b.Loop() {
		store, err := db.Open(b.TempDir(), db.Options{Now: func() int64 { return end }, IngestMaxAge: 2 * 3600_000,
			MaintenanceInterval: 1 << 40, CheckpointInterval: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		h, err := New(Options{Appender: store, MaxRefs: maxRefs, Now: func() int64 { return end }})
		if err != nil {
			b.Fatal(err)
		}
		var wk remoteWork
		for t := range samples {
			for k := range bodies {
				bodies[k] = body(t, k*per, min(series, (k+1)*per))
			}
			c0 := cpuTime()
			for _, raw := range bodies {
				if err := decodeRemote(&wk, raw, "snappy", 64<<20); err != nil {
					b.Fatal(err)
				}
				if err := h.ingestRemote(r, &wk); err != nil || wk.rej.count > 0 {
					b.Fatalf("%v %v", err, wk.rej.messages)
				}
				dps += wk.stored
			}
			cpu += cpuTime() - c0
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(dps), "cpu-ns/dp")
	b.ReportMetric(float64(dps)/cpu.Seconds(), "dp/cpu-s")
	b.ReportMetric(0, "ns/op")
}
