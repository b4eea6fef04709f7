package api_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tracing"
)

// promT0 is a storage-step boundary, 2012-01-01T00:00:00Z.
const promT0 = t0

func promEnv(t *testing.T, opts api.Options) *env {
	t.Helper()
	ramp := make([]float64, 10)
	for i := range ramp {
		ramp[i] = float64(i + 1)
	}
	inf := []float64{math.Inf(1), math.Inf(-1), 0.25}
	return newEnv(t, opts,
		series(promT0, ramp, "name", "cpu", "nf.app", "api", "node", "a", "atlas.dstype", "gauge"),
		series(promT0, ramp, "name", "cpu", "nf.app", "web", "node", "b", "atlas.dstype", "gauge"),
		series(promT0, ramp, "name", "node_load", "instance", "host:9100", "atlas.dstype", "gauge"),
		series(promT0, inf, "name", "edge", "atlas.dstype", "gauge"),
		series(promT0, ramp, "name", "http_requests_total", "job", "api", "atlas.dstype", "counter"),
		series(promT0, ramp, "name", "latency_bucket", "le", "0.5", "atlas.dstype", "counter"),
		series(promT0, ramp, "name", "rpc", "quantile", "0.99", "atlas.dstype", "gauge"),
		series(promT0, ramp, "name", "call", "statistic", "percentile", "percentile", "T0042"),
	)
}

// promCall performs a Prometheus API request, GET with the parameters in
// the URL or POST with a form body, and decodes the envelope.
func (e *env) promCall(t *testing.T, method, path string, params url.Values) (int, map[string]any) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(e.srv.URL+path, params)
	} else {
		resp, err = http.Get(e.srv.URL + path + "?" + params.Encode())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return resp.StatusCode, body
}

func secs(ms int64) string {
	return strings.TrimSuffix(strings.TrimRight(time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000"), "0"), ".") + "Z"
}

// TestPromQueryAnswers checks the envelopes and result shapes of query and
// query_range, over GET and POST, with both time syntaxes.
func TestPromQueryAnswers(t *testing.T) {
	t.Parallel()
	e := promEnv(t, api.Options{})
	at := func(i int64) int64 { return promT0 + i*60_000 }
	cases := []struct {
		name, method, path string
		params             url.Values
		want               string
	}{
		{"save and test", "POST", "/api/v1/query", url.Values{"query": {"1+1"}, "time": {"4"}},
			`{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}`},
		{"vector at an RFC 3339 time", "GET", "/api/v1/query", url.Values{"query": {`cpu{"nf.app"="api"}`}, "time": {secs(at(2))}},
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"cpu","atlas.dstype":"gauge","nf.app":"api","node":"a"},"value":[1325376120,"3"]}]}}`},
		{"fractional seconds between steps", "GET", "/api/v1/query", url.Values{"query": {`sum(cpu)`}, "time": {"1325376179.5"}},
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1325376179.5,"6"]}]}}`},
		{"colon in a value", "GET", "/api/v1/query", url.Values{"query": {`{instance="host:9100"}`}, "time": {"1325376060"}},
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"node_load","atlas.dstype":"gauge","instance":"host:9100"},"value":[1325376060,"2"]}]}}`},
		{"infinities", "POST", "/api/v1/query_range", url.Values{"query": {`edge`}, "start": {"1325376000"}, "end": {"1325376120"}, "step": {"1m"}},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"edge","atlas.dstype":"gauge"},"values":[[1325376000,"+Inf"],[1325376060,"-Inf"],[1325376120,"0.25"]]}]}}`},
		{"NaN as a string", "GET", "/api/v1/query", url.Values{"query": {`scalar(cpu)`}, "time": {"1325376000"}},
			`{"status":"success","data":{"resultType":"scalar","result":[1325376000,"NaN"]}}`},
		{"range with step in seconds", "GET", "/api/v1/query_range", url.Values{"query": {`sum by ("nf.app") (cpu)`}, "start": {"1325376000"}, "end": {"1325376090"}, "step": {"30"}},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"nf.app":"api"},"values":[[1325376000,"1"],[1325376030,"1"],[1325376060,"2"],[1325376090,"2"]]},{"metric":{"nf.app":"web"},"values":[[1325376000,"1"],[1325376030,"1"],[1325376060,"2"],[1325376090,"2"]]}]}}`},
		{"stack language", "GET", "/api/v1/query_range", url.Values{"query": {`name,cpu,:eq,:sum`}, "start": {"1325376000"}, "end": {"1325376120"}, "step": {"60"}},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"cpu"},"values":[[1325376000,"2"],[1325376060,"4"],[1325376120,"6"]]}]}}`},
		{"range vector at an instant", "GET", "/api/v1/query", url.Values{"query": {`cpu{node="a"}[2m]`}, "time": {"1325376120"}},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"cpu","atlas.dstype":"gauge","nf.app":"api","node":"a"},"values":[[1325376060,"2"],[1325376120,"3"]]}]}}`},
		{"string", "GET", "/api/v1/query", url.Values{"query": {`"hi"`}, "time": {"5"}},
			`{"status":"success","data":{"resultType":"string","result":[5,"hi"]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.promCall(t, tc.method, tc.path, tc.params)
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if code != 200 || !cmp.Equal(body, want) {
				t.Errorf("%s %s %v = %d\n%v\nwant\n%v", tc.method, tc.path, tc.params, code, body, want)
			}
		})
	}
}

// TestPromErrors checks Prometheus's error envelope, types and codes.
func TestPromErrors(t *testing.T) {
	t.Parallel()
	e := promEnv(t, api.Options{MaxDatapoints: 100})
	cases := []struct {
		path    string
		params  url.Values
		code    int
		typ     string
		mention string
	}{
		{"/api/v1/query", url.Values{}, 400, "bad_data", `"query"`},
		{"/api/v1/query", url.Values{"query": {"sum("}}, 400, "bad_data", "parse error"},
		{"/api/v1/query", url.Values{"query": {"predict_linear(cpu[5m], 60)"}}, 400, "bad_data", `"predict_linear"`},
		{"/api/v1/query", url.Values{"query": {"name,cpu,:eq,:nope"}}, 400, "bad_data", ":nope"},
		{"/api/v1/query", url.Values{"query": {"cpu"}, "time": {"yesterday"}}, 400, "bad_data", `"time"`},
		{"/api/v1/query", url.Values{"query": {"cpu"}, "timeout": {"soon"}}, 400, "bad_data", `"timeout"`},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "end": {"10"}, "step": {"1"}}, 400, "bad_data", `"start"`},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"10"}, "end": {"1"}, "step": {"1"}}, 400, "bad_data", "end timestamp"},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"0"}, "end": {"10"}, "step": {"fast"}}, 400, "bad_data", `"step"`},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, 400, "bad_data", "zero or negative"},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"0"}, "end": {"11000"}, "step": {"1"}}, 400, "bad_data", "11,000"},
		{"/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"1325376000"}, "end": {"1325382000"}, "step": {"60"}}, 422, "execution", "max-datapoints-per-query"},
		{"/api/v1/series", url.Values{}, 400, "bad_data", "match[]"},
		{"/api/v1/series", url.Values{"match[]": {"cpu{"}}, 400, "bad_data", `"match[]"`},
		{"/api/v1/labels", url.Values{"limit": {"-1"}}, 400, "bad_data", `"limit"`},
		{"/api/v1/query", url.Values{"query": {`cpu + ignoring (node, "nf.app") cpu`}, "time": {"1325376000"}}, 422, "execution", "many-to-many"},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "POST"} {
			code, body := e.promCall(t, method, tc.path, tc.params)
			if code != tc.code || body["status"] != "error" || body["errorType"] != tc.typ || !strings.Contains(body["error"].(string), tc.mention) {
				t.Errorf("%s %s %v = %d %v, want %d %s mentioning %s", method, tc.path, tc.params, code, body, tc.code, tc.typ, tc.mention)
			}
		}
	}
	// A deadline that passes is a timeout (503), not a client error,
	// whether the server's or the request's.
	code, body := e.promCall(t, "GET", "/api/v1/query", url.Values{"query": {"cpu"}, "timeout": {"0.000001"}})
	if code != 503 || body["errorType"] != "timeout" {
		t.Errorf("timeout=1µs: %d %v", code, body)
	}
	slow := promEnv(t, api.Options{QueryTimeout: time.Nanosecond})
	code, body = slow.promCall(t, "GET", "/api/v1/query_range", url.Values{"query": {"cpu"}, "start": {"1325376000"}, "end": {"1325376600"}, "step": {"60"}})
	if code != 503 || body["errorType"] != "timeout" {
		t.Errorf("timeout: %d %v", code, body)
	}
}

// TestPromMetadataEndpoints checks labels, label values, series and
// metadata, with match[], limit, and __name__ in place of name.
func TestPromMetadataEndpoints(t *testing.T) {
	t.Parallel()
	e := promEnv(t, api.Options{})
	rng := url.Values{"start": {"1325376000"}, "end": {"1325376600"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range rng {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	cases := []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/v1/labels", url.Values{}, `["__name__","atlas.dstype","instance","job","le","nf.app","node","percentile","quantile","statistic"]`},
		{"/api/v1/labels", with("match[]", `{"nf.app"="api"}`), `["__name__","atlas.dstype","nf.app","node"]`},
		{"/api/v1/labels", url.Values{"limit": {"2"}}, `["__name__","atlas.dstype"]`},
		{"/api/v1/label/__name__/values", url.Values{}, `["call","cpu","edge","http_requests_total","latency_bucket","node_load","rpc"]`},
		{"/api/v1/label/nf.app/values", url.Values{}, `["api","web"]`},
		{"/api/v1/label/U__nf_2e_app/values", url.Values{}, `["api","web"]`},
		{"/api/v1/label/instance/values", with("match[]", `{__name__=~".+"}`), `["host:9100"]`},
		{"/api/v1/label/node/values", with("match[]", `cpu{node="b"}`, "match[]", `cpu{node="a"}`), `["a","b"]`},
		{"/api/v1/series", with("match[]", `{"nf.app"="api"}`), `[{"__name__":"cpu","atlas.dstype":"gauge","nf.app":"api","node":"a"}]`},
		{"/api/v1/series", with("match[]", `{instance="host:9100"}`), `[{"__name__":"node_load","atlas.dstype":"gauge","instance":"host:9100"}]`},
		{"/api/v1/series", url.Values{"match[]": {`cpu`}, "start": {"1325382000"}, "end": {"1325385600"}}, `[]`},
		{"/api/v1/metadata", url.Values{}, `{"call":[{"type":"histogram","help":"","unit":""}],"cpu":[{"type":"gauge","help":"","unit":""}],"edge":[{"type":"gauge","help":"","unit":""}],` +
			`"http_requests_total":[{"type":"counter","help":"","unit":""}],"latency_bucket":[{"type":"histogram","help":"","unit":""}],"node_load":[{"type":"gauge","help":"","unit":""}],"rpc":[{"type":"summary","help":"","unit":""}]}`},
		{"/api/v1/metadata", url.Values{"metric": {"http_requests_total"}}, `{"http_requests_total":[{"type":"counter","help":"","unit":""}]}`},
	}
	for _, tc := range cases {
		code, body := e.promCall(t, "GET", tc.path, tc.params)
		var want any
		if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
			t.Fatal(err)
		}
		if code != 200 || body["status"] != "success" || !cmp.Equal(body["data"], want) {
			t.Errorf("GET %s %v = %d %v, want %s", tc.path, tc.params, code, body, tc.want)
		}
	}
	code, body := e.promCall(t, "GET", "/api/v1/series", with("match[]", `cpu`, "limit", "1"))
	if code != 200 || len(body["data"].([]any)) != 1 || !cmp.Equal(body["warnings"], []any{"results truncated due to limit"}) {
		t.Errorf("series with limit=1: %d %v", code, body)
	}
	code, body = e.promCall(t, "GET", "/api/v1/status/buildinfo", nil)
	if data, _ := body["data"].(map[string]any); code != 200 || data["version"] == "" || !cmp.Equal(data["features"], map[string]any{}) {
		t.Errorf("buildinfo: %d %v", code, body)
	}
}

// TestPromExemplars checks query_exemplars against the exemplars the
// server keeps for span metrics.
func TestPromExemplars(t *testing.T) {
	t.Parallel()
	tid := func(s string) tracing.TraceID {
		id, err := tracing.ParseTraceID(s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	sid := func(s string) (id tracing.SpanID) {
		if _, err := hex.Decode(id[:], []byte(s)); err != nil {
			t.Fatal(err)
		}
		return id
	}
	exs := []tracing.Exemplar{
		{Tags: map[string]string{"service.name": "api", "operation": "GET /", "span.kind": "server", "status.code": "OK"},
			T: promT0 + 60_000, TraceID: tid("4bf92f3577b34da6a3ce929d0e0e4736"), SpanID: sid("00f067aa0ba902b7"), Duration: 250 * time.Millisecond},
		{Tags: map[string]string{"service.name": "db", "operation": "SELECT", "span.kind": "client", "status.code": "OK"},
			T: promT0 + 120_000, TraceID: tid("5bf92f3577b34da6a3ce929d0e0e4736"), SpanID: sid("10f067aa0ba902b7"), Duration: time.Second},
	}
	e := promEnv(t, api.Options{Exemplars: func(_ context.Context, start, end int64) ([]tracing.Exemplar, error) {
		var out []tracing.Exemplar
		for _, x := range exs {
			if x.T >= start && x.T < end {
				out = append(out, x)
			}
		}
		return out, nil
	}})
	code, body := e.promCall(t, "POST", "/api/v1/query_exemplars", url.Values{
		"query": {`histogram_quantile(0.99, sum by (le) (rate({__name__="span.duration", "service.name"="api"}[5m])))`},
		"start": {"1325376000"}, "end": {"1325376600"}})
	want := `[{"seriesLabels":{"__name__":"span.duration","operation":"GET /","service.name":"api","span.kind":"server","statistic":"percentile","status.code":"OK"},` +
		`"exemplars":[{"labels":{"span_id":"00f067aa0ba902b7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"value":"0.25","timestamp":1325376060}]}]`
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if code != 200 || !cmp.Equal(body["data"], w) {
		t.Errorf("query_exemplars = %d %v", code, body)
	}
	// A query about other series has no exemplars; the stack language works.
	for q, n := range map[string]int{`cpu`: 0, `name,span.calls,:eq,service.name,db,:eq,:and,:sum`: 1} {
		code, body := e.promCall(t, "GET", "/api/v1/query_exemplars", url.Values{"query": {q}, "start": {"1325376000"}, "end": {"1325376600"}})
		if data, _ := body["data"].([]any); code != 200 || len(data) != n {
			t.Errorf("query_exemplars %s = %d %v, want %d series", q, code, body, n)
		}
	}
}

// FuzzPromParams checks that time and duration parsing never panics and
// that whatever parses is within the bounds arithmetic on it needs.
func FuzzPromParams(f *testing.F) {
	for _, s := range []string{"4", "1700000000.123", "-1.5", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20.5+02:00", "1e300", "NaN",
		"Inf", "5m", "1h30m", "0.001", "1y", "-292273086-05-16T16:47:06Z", "292277025-08-18T07:12:54.999999999Z", "U__nf_2e_app"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const bound = int64(1) << 62
		if ms, err := api.ParsePromTime(s); err == nil && (ms > bound || ms < -bound) {
			t.Errorf("ParsePromTime(%q) = %d, out of bounds", s, ms)
		}
		if ms, err := api.ParsePromDuration(s); err == nil && (ms > bound || ms < -bound) {
			t.Errorf("ParsePromDuration(%q) = %d, out of bounds", s, ms)
		}
	})
}

// TestPromLargeMatrix checks an answer big enough to be formatted on
// several cores: every series whole and in order.
func TestPromLargeMatrix(t *testing.T) {
	t.Parallel()
	const n, points = 30, 1000
	var in []querytest.Input
	for i := range n {
		vals := make([]float64, points)
		for j := range vals {
			vals[j] = float64(i) + float64(j)/1000
		}
		in = append(in, series(promT0, vals, "name", "big", "id", fmt.Sprintf("%02d", i), "atlas.dstype", "gauge"))
	}
	e := newEnv(t, api.Options{}, in...)
	code, body := e.promCall(t, "POST", "/api/v1/query_range", url.Values{"query": {"big"}, "start": {fmt.Sprint(promT0 / 1000)},
		"end": {fmt.Sprint(promT0/1000 + (points-1)*60)}, "step": {"60"}})
	data, _ := body["data"].(map[string]any)
	result, _ := data["result"].([]any)
	if code != 200 || len(result) != n {
		t.Fatalf("%d, %d series", code, len(result))
	}
	for i, r := range result {
		s := r.(map[string]any)
		if id := s["metric"].(map[string]any)["id"]; id != fmt.Sprintf("%02d", i) {
			t.Fatalf("series %d is id %v", i, id)
		}
		vals := s["values"].([]any)
		if len(vals) != points {
			t.Fatalf("series %d has %d points", i, len(vals))
		}
		for j, p := range vals {
			pt := p.([]any)
			want := strconv.FormatFloat(float64(i)+float64(j)/1000, 'f', -1, 64)
			if pt[0].(float64) != float64(promT0/1000+int64(j)*60) || pt[1] != want {
				t.Fatalf("series %d point %d = %v, want %s", i, j, pt, want)
			}
		}
	}
}
