package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// BenchmarkPromQueryRange is Grafana's panel query over real HTTP on
// tsload's workload (100 000 series, 6 h at 60 s; SEXTANT_BENCH_* shrink
// it), as BenchmarkGraphJSON builds it: POST /api/v1/query_range of
// sum by (app) (<metric>) (about 2 000 series) at a 60 s step. It reports
// the latency percentiles of one request at a time.
func BenchmarkPromQueryRange(b *testing.B) {
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
	form := url.Values{"query": {"sum by (app) (" + name + ")"}, "step": {"60"},
		"start": {fmt.Sprint(w.Start / 1000)}, "end": {fmt.Sprint((end - w.Interval) / 1000)}}.Encode()
	target := srv.URL + "/api/v1/query_range"
	client := srv.Client()
	var lat []time.Duration
	var size int
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Post(target, "application/x-www-form-urlencoded", strings.NewReader(form))
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

// BenchmarkPromDrilldown is what Grafana's Metrics Drilldown asks first,
// over real HTTP on the standard workload (100 000 series, 6 h at 60 s):
// the metric names and the series of {__name__=~".+"} with limit=40000
// over the last hour. Both answer from the store's index and block lists.
func BenchmarkPromDrilldown(b *testing.B) {
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
	params := url.Values{"match[]": {`{__name__=~".+"}`}, "limit": {"40000"},
		"start": {fmt.Sprint(end/1000 - 3600)}, "end": {fmt.Sprint(end / 1000)}}.Encode()
	for _, path := range []string{"/api/v1/label/__name__/values", "/api/v1/series"} {
		b.Run(strings.TrimPrefix(path, "/api/v1/"), func(b *testing.B) {
			client := srv.Client()
			var size int
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(srv.URL + path + "?" + params)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("status %d: %v %.300s", resp.StatusCode, err, body)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}
