package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkPromQueryRange is Grafana's panel query over real HTTP on the
// shared workload, the query BenchmarkGraphJSON asks: POST
// /api/v1/query_range of sum by (app) (<metric>) (about 2 000 series) at a
// 60 s step, one request at a time.
func BenchmarkPromQueryRange(b *testing.B) {
	e := sharedBench(b)
	form := url.Values{"query": {"sum by (app) (" + e.name + ")"}, "step": {"60"},
		"start": {fmt.Sprint(e.w.Start / 1000)}, "end": {fmt.Sprint((e.end - e.w.Interval) / 1000)}}.Encode()
	target := e.srv.URL + "/api/v1/query_range"
	e.latency(b, e.matching, func(c *http.Client) (*http.Response, error) {
		return c.Post(target, "application/x-www-form-urlencoded", strings.NewReader(form))
	})
}

// BenchmarkPromDrilldown is what Grafana's Metrics Drilldown asks first,
// over real HTTP on the shared workload: the metric names and the series of
// {__name__=~".+"} with limit=40000 over the last hour. Both answer from the
// store's index and block lists.
func BenchmarkPromDrilldown(b *testing.B) {
	e := sharedBench(b)
	params := url.Values{"match[]": {`{__name__=~".+"}`}, "limit": {"40000"},
		"start": {fmt.Sprint(e.end/1000 - 3600)}, "end": {fmt.Sprint(e.end / 1000)}}.Encode()
	for _, path := range []string{"/api/v1/label/__name__/values", "/api/v1/series"} {
		b.Run(strings.TrimPrefix(path, "/api/v1/"), func(b *testing.B) {
			target := e.srv.URL + path + "?" + params
			e.latency(b, 0, func(c *http.Client) (*http.Response, error) { return c.Get(target) })
		})
	}
}
