package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const benchStart = int64(1_700_006_400_000)

// benchEnv is the setup every benchmark of the package shares: the
// project's workload (100 000 series, 6 h at 60 s; SEXTANT_BENCH_* shrink
// it) in a real store, served by the API on a real HTTP server. It is
// loaded once per process (about a minute at full size) and closed by
// TestMain.
type benchEnv struct {
	w     *tsdbtest.Workload
	end   int64 // ms, just past the last sample; the API's clock
	store *db.DB
	srv   *httptest.Server
	// name is the first series' metric name, matched by about one series
	// in 50 (2 000 of 100 000); matching counts them.
	name     string
	matching int
}

var (
	benchOnce sync.Once
	bench     *benchEnv
	benchErr  error
)

// sharedBench returns the package's benchmark setup, loading it on first use.
func sharedBench(b *testing.B) *benchEnv {
	b.Helper()
	benchOnce.Do(func() { bench, benchErr = openBench() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func openBench() (*benchEnv, error) {
	n, samples := tsdbtest.BenchSize()
	w := tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{Series: n, Samples: samples, Start: benchStart})
	end := w.Start + int64(w.Samples())*w.Interval
	store, err := querytest.OpenWorkloadStore(w)
	if err != nil {
		return nil, err
	}
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: func() time.Time { return time.UnixMilli(end) }})
	if err != nil {
		return nil, fmt.Errorf("api: %w (close: %v)", err, store.Close())
	}
	mux := http.NewServeMux()
	a.Register(mux)
	e := &benchEnv{w: w, end: end, store: store, srv: httptest.NewServer(mux), name: w.Series[0].Name()}
	for _, s := range w.Series {
		if s.Name() == e.name {
			e.matching++
		}
	}
	return e, nil
}

// closeBench stops the shared setup's server and store, if it was loaded.
func closeBench() error {
	if bench == nil {
		return nil
	}
	bench.srv.Close()
	return bench.store.Close()
}

// latency runs do once per iteration, one request at a time, and reports
// the latency percentiles (p50-ms, p99-ms), the process's CPU time per
// request (cpu-ms/op: server and client, independent of waits for a core
// on a shared machine), the answer's bytes and, when not 0, the series the
// query matched. Each answer must be a 200.
func (e *benchEnv) latency(b *testing.B, series int, do func(c *http.Client) (*http.Response, error)) {
	b.Helper()
	client := e.srv.Client()
	var lat []time.Duration
	var size int
	// The answers are read into one buffer: the client shares the server's
	// heap here, and a megabyte read afresh per request (io.ReadAll doubling
	// its way up) would be a collection of the store's heap every few dozen
	// requests that no real client causes.
	var body bytes.Buffer
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		resp, err := do(client)
		if err != nil {
			b.Fatal(err)
		}
		body.Reset()
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d: %v %.300s", resp.StatusCode, err, body.Bytes())
		}
		lat = append(lat, time.Since(start))
		size = body.Len()
	}
	cpu := cpuTime() - cpu0
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(cpu)/1e6/float64(len(lat)), "cpu-ms/op")
	if series > 0 {
		b.ReportMetric(float64(series), "series")
	}
	b.ReportMetric(float64(size), "bytes")
}

// BenchmarkGraphJSON is the end-to-end graph API over real HTTP on the
// shared workload: a grouped sum of one metric (about 2 000 series) as
// format=json, one request at a time.
func BenchmarkGraphJSON(b *testing.B) {
	e := sharedBench(b)
	q := url.Values{"q": {"name," + e.name + ",:eq,(,app,),:by"}, "format": {"json"}, "tz": {"UTC"},
		"s": {fmt.Sprint(e.w.Start)}, "e": {fmt.Sprint(e.end)}}
	target := e.srv.URL + "/api/v1/graph?" + q.Encode()
	e.latency(b, e.matching, func(c *http.Client) (*http.Response, error) { return c.Get(target) })
}
