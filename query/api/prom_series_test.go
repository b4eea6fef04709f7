package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
)

// onlyQuerier hides a store's optional abilities (tsdb.SeriesLister): the
// API must then answer from the store's data.
type onlyQuerier struct{ tsdb.Querier }

// TestPromLabelsInWindow is issue #14: labels, label values and series
// honour start and end, with match[] and without it, as Grafana's Metrics
// Drilldown asks them (limit=40000, {__name__=~".+"}).
func TestPromLabelsInWindow(t *testing.T) {
	t.Parallel()
	ramp := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	const h = 3600_000
	inputs := []querytest.Input{
		series(promT0, ramp, "name", "early", "zone", "z1", "atlas.dstype", "gauge"),
		series(promT0+5*h, ramp, "name", "late", "app", "web", "atlas.dstype", "gauge"),
		series(promT0+5*h, ramp, "name", "late2", "app", "api", "atlas.dstype", "gauge"),
	}
	sec := func(ms int64) string { return fmt.Sprint(ms / 1000) }
	early := url.Values{"start": {sec(promT0)}, "end": {sec(promT0 + h)}}
	late := url.Values{"start": {sec(promT0 + 5*h)}, "end": {sec(promT0 + 6*h)}}
	between := url.Values{"start": {sec(promT0 + 1*h)}, "end": {sec(promT0 + 3*h)}} // no block of late (by block: the store knows no finer)
	lateFrom := url.Values{"start": {sec(promT0 + 5*h)}}                            // end: now
	with := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	drill := func(v url.Values) url.Values { return with(v, "match[]", `{__name__=~".+"}`, "limit", "40000") }
	cases := []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/v1/labels", url.Values{}, `["__name__","app","atlas.dstype","zone"]`},
		{"/api/v1/labels", early, `["__name__","atlas.dstype","zone"]`},
		{"/api/v1/labels", late, `["__name__","app","atlas.dstype"]`},
		{"/api/v1/labels", lateFrom, `["__name__","app","atlas.dstype"]`},
		{"/api/v1/labels", between, `[]`},
		{"/api/v1/labels", drill(early), `["__name__","atlas.dstype","zone"]`},
		{"/api/v1/label/__name__/values", url.Values{}, `["early","late","late2"]`},
		{"/api/v1/label/__name__/values", early, `["early"]`},
		{"/api/v1/label/__name__/values", late, `["late","late2"]`},
		{"/api/v1/label/__name__/values", between, `[]`},
		{"/api/v1/label/__name__/values", drill(early), `["early"]`},
		{"/api/v1/label/__name__/values", drill(late), `["late","late2"]`},
		{"/api/v1/label/app/values", with(late, "match[]", `{app="web"}`), `["web"]`},
		{"/api/v1/series", drill(early), `[{"__name__":"early","atlas.dstype":"gauge","zone":"z1"}]`},
		{"/api/v1/series", drill(late), `[{"__name__":"late2","app":"api","atlas.dstype":"gauge"},{"__name__":"late","app":"web","atlas.dstype":"gauge"}]`},
		{"/api/v1/series", drill(between), `[]`},
	}
	for _, store := range []struct {
		name string
		wrap func(tsdb.Querier) tsdb.Querier
	}{
		{"lister", nil},
		{"fetch", func(q tsdb.Querier) tsdb.Querier { return onlyQuerier{q} }},
	} {
		e := newWrappedEnv(t, api.Options{}, store.wrap, inputs...)
		for _, tc := range cases {
			code, body := e.promCall(t, "GET", tc.path, tc.params)
			var want any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if code != 200 || body["status"] != "success" || !cmp.Equal(body["data"], want) || body["warnings"] != nil {
				t.Errorf("%s: GET %s %v = %d %v, want %s", store.name, tc.path, tc.params, code, body, tc.want)
			}
		}
		// A limit below the answer truncates it and says so.
		for _, path := range []string{"/api/v1/labels", "/api/v1/label/__name__/values", "/api/v1/series"} {
			code, body := e.promCall(t, "GET", path, with(late, "match[]", `{__name__=~".+"}`, "limit", "1"))
			data, _ := body["data"].([]any)
			if code != 200 || len(data) != 1 || !cmp.Equal(body["warnings"], []any{"results truncated due to limit"}) {
				t.Errorf("%s: %s with limit=1: %d %v", store.name, path, code, body)
			}
		}
	}
}
