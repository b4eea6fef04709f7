package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/sextant-dev/sextant/tracing/tracingtest"
)

// BenchmarkTraceIngestHTTP measures span ingest end to end: OTLP/HTTP
// protobuf requests of 1 000 spans from 4 concurrent clients into a real
// server (durable span store on disk, span metrics into the time-series
// store), each answered 200 only after its spans are synced. One op is
// one request; spans/s is the throughput. The clients run on the same
// two cores as the server. SEXTANT_BENCH_TRACE_REQUESTS sets how many
// distinct requests are pre-encoded (default 512).
func BenchmarkTraceIngestHTTP(b *testing.B) {
	dir := b.TempDir()
	cfg, err := loadConfig([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", ""}, env(), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	addr := <-ready
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	n := 512
	if v, err := strconv.Atoi(os.Getenv("SEXTANT_BENCH_TRACE_REQUESTS")); err == nil && v > 0 {
		n = v
	}
	bodies := make([][]byte, n)
	now := time.Now()
	for i := range bodies {
		bodies[i], _ = ptraceotlp.NewExportRequestFromTraces(tracingtest.Batch(i, now, 2*time.Second)).MarshalProto()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + 3) / 4
	for w := range 4 {
		wg.Go(func() {
			for range min(per, b.N-w*per) {
				body := bodies[int(next.Add(1))%len(bodies)]
				resp, err := client.Post("http://"+addr+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*tracingtest.BatchSpans)/b.Elapsed().Seconds(), "spans/s")
}
