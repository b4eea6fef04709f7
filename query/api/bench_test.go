package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const benchStart = int64(1_700_006_400_000)

// BenchmarkGraphJSON is the end-to-end graph API over real HTTP on the project's
// workload (100 000 series, 6 h at 60 s; SEXTANT_BENCH_* shrink it): a
// grouped sum of one metric (about 2 000 series) as format=json. It
// reports the latency percentiles of one request at a time.
func BenchmarkGraphJSON(b *testing.B) {
	n, samples := tsdbtest.BenchSize()
	w := tsdbtest.LoadWorkload(b, n, samples, benchStart)
	end := w.Start + int64(w.Samples())*w.Interval
	store := querytest.OpenWorkload(b, w)
	a, err := api.New(api.Options{Querier: store, StorageStep: 60_000, Now: func() time.Time { return time.UnixMilli(end) }})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	name := w.Series[0].Name()
	matching := 0
	for _, s := range w.Series {
		if s.Name() == name {
			matching++
		}
	}
	q := url.Values{"q": {"name," + name + ",:eq,(,app,),:by"}, "format": {"json"}, "tz": {"UTC"},
		"s": {fmt.Sprint(w.Start)}, "e": {fmt.Sprint(end)}}
	target := srv.URL + "/api/v1/graph?" + q.Encode()
	client := srv.Client()
	var lat []time.Duration
	var size int
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Get(target)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d: %v %s", resp.StatusCode, err, body)
		}
		lat = append(lat, time.Since(start))
		size = len(body)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(matching), "series")
	b.ReportMetric(float64(size), "bytes")
}
