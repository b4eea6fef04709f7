package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

var update = flag.Bool("update", false, "rewrite golden files")

// t0 is 2012-01-01T00:00:00Z, the start of Atlas' JSON engine example.
const t0 = int64(1325376000000)

type env struct {
	srv *httptest.Server
}

func newEnv(t *testing.T, opts api.Options, inputs ...querytest.Input) *env {
	t.Helper()
	return newWrappedEnv(t, opts, nil, inputs...)
}

// newWrappedEnv is newEnv with the store seen through wrap (nil: as is).
func newWrappedEnv(t *testing.T, opts api.Options, wrap func(tsdb.Querier) tsdb.Querier, inputs ...querytest.Input) *env {
	t.Helper()
	now := t0 + 24*3600_000
	var store tsdb.Querier = querytest.Open(t, 60_000, now, inputs...)
	if wrap != nil {
		store = wrap(store)
	}
	opts.Querier = store
	opts.StorageStep = 60_000
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.UnixMilli(now) }
	}
	a, err := api.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{srv: srv}
}

func (e *env) get(t *testing.T, path string, params ...string) (int, http.Header, []byte) {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Add(params[i], params[i+1])
	}
	resp, err := http.Get(e.srv.URL + path + "?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func series(start int64, vs []float64, kv ...string) querytest.Input {
	return querytest.Input{Tags: tags.New(kv...), Start: start, Values: vs}
}

// TestGraphJSONExact checks the bytes of format=json against Atlas' own
// example (JsonGraphEngineSuite): numbers as Java prints them, NaN as a
// string.
func TestGraphJSONExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, api.Options{})
	code, h, body := e.get(t, "/api/v1/graph", "q", "42,0,:legend,NaN,1,:legend", "format", "json",
		"s", "1325375940000", "e", "1325376120000", "tz", "UTC")
	want := `{"start":1325376000000,"step":60000,"legend":["0","1"],"metrics":[{"name":"42.0"},{"name":"NaN"}],` +
		`"values":[[42.0,"NaN"],[42.0,"NaN"],[42.0,"NaN"]],"notices":[]}` + "\n"
	if code != 200 || string(body) != want || h.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %s\n%s\nwant\n%s", code, h.Get("Content-Type"), body, want)
	}
	// std.json is the same document.
	_, _, std := e.get(t, "/api/v1/graph", "q", "42,0,:legend,NaN,1,:legend", "format", "std.json",
		"s", "1325375940000", "e", "1325376120000", "tz", "UTC")
	if string(std) != want {
		t.Errorf("std.json differs: %s", std)
	}
}

func TestGraphStatuses(t *testing.T) {
	t.Parallel()
	var inputs []querytest.Input
	for _, n := range []string{"a", "b", "c"} {
		inputs = append(inputs, series(t0, []float64{1, 2, 3}, "name", "cpu", "node", n))
	}
	e := newEnv(t, api.Options{MaxLines: 2}, inputs...)
	slow := newEnv(t, api.Options{QueryTimeout: time.Nanosecond}, inputs...)
	plain := newEnv(t, api.Options{}, inputs...)
	cases := []struct {
		name   string
		e      *env
		params []string
		code   int
		field  string // param, limit or word the error names
		value  string
	}{
		{"ok", e, []string{"q", "name,cpu,:eq,:sum", "format", "json"}, 200, "", ""},
		{"missing q", e, []string{"format", "json"}, 400, "param", "q"},
		{"bad word", e, []string{"q", "name,cpu,:eq,:bogus", "format", "json"}, 400, "word", ":bogus"},
		{"not an expression", e, []string{"q", "a,b", "format", "json"}, 400, "param", "q"},
		{"bad width", e, []string{"q", "1", "format", "json", "w", "-5"}, 400, "param", "w"},
		{"bad start", e, []string{"q", "1", "format", "json", "s", "yesterday-ish"}, 400, "param", "s"},
		{"start after end", e, []string{"q", "1", "format", "json", "s", "e+1h"}, 400, "param", "s"},
		{"bad tz", e, []string{"q", "1", "format", "json", "tz", "Mars/Olympus"}, 400, "param", "tz"},
		{"bad step", e, []string{"q", "1", "format", "json", "step", "fast"}, 400, "param", "step"},
		{"bad format", e, []string{"q", "1", "format", "gif"}, 400, "param", "format"},
		{"bad layout", e, []string{"q", "1", "format", "svg", "layout", "poster"}, 400, "param", "layout"},
		{"bad axis bound", e, []string{"q", "1", "format", "svg", "u", "lots"}, 400, "param", "u.0"},
		{"bad cq", e, []string{"q", "1", "format", "json", "cq", "x,:foo"}, 400, "param", "cq"},
		{"line limit", e, []string{"q", "name,cpu,:eq,:all", "format", "json", "s", "1325375940000", "e", "1325376120000"}, 422, "limit", "max-lines-per-query"},
		{"time limit", slow, []string{"q", "name,cpu,:eq,:sum", "format", "json"}, 422, "limit", "query-time-limit"},
		{"eval error", plain, []string{"q", "name,cpu,:eq,node,a,:re,:and,:all,name,cpu,:eq,:all,:add", "format", "json", "s", "1325375940000", "e", "1325376120000"}, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := tc.e.get(t, "/api/v1/graph", tc.params...)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if tc.field == "" {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if got["type"] != "error" || got[tc.field] != tc.value || got["message"] == "" {
				t.Errorf("body %s, want %s=%q", body, tc.field, tc.value)
			}
		})
	}
}

func TestGraphErrorImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, api.Options{})
	code, h, body := e.get(t, "/api/v1/graph", "q", "1,:nope", "w", "400", "h", "150")
	if code != 400 || h.Get("Content-Type") != "image/png" {
		t.Fatalf("status %d %s", code, h.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() != 400 || img.Bounds().Dy() != 150 {
		t.Errorf("error image: %v %v", err, img.Bounds())
	}
}

func TestGraphTextFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, api.Options{}, series(t0, []float64{1, 2, 4}, "name", "cpu", "node", "a"))
	p := []string{"q", "name,cpu,:eq,:sum,cpu,:legend,3,:const", "s", "1325375940000", "e", "1325376120000", "tz", "UTC"}
	_, h, csv := e.get(t, "/api/v1/graph", append(p, "format", "csv")...)
	wantCSV := "\"timestamp\",\"cpu\",\"3.0\"\n2012-01-01T00:00:00Z,1.0,3.0\n2012-01-01T00:01:00Z,2.0,3.0\n2012-01-01T00:02:00Z,4.0,3.0\n"
	if string(csv) != wantCSV || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Errorf("csv:\n%s\nwant\n%s", csv, wantCSV)
	}
	_, _, txt := e.get(t, "/api/v1/graph", append(p, "format", "txt")...)
	if !strings.HasPrefix(string(txt), "timestamp\tcpu\t3.0\n2012-01-01T00:00:00Z\t1.0\t3.0\n") {
		t.Errorf("txt:\n%s", txt)
	}
	_, _, stats := e.get(t, "/api/v1/graph", append(p, "format", "stats.json")...)
	want := `{"start":1325376000000,"end":1325376180000,"step":60000,"legend":["cpu","3.0"],` +
		`"metrics":[{"name":"cpu"},{"name":"3.0"}],"stats":[{"count":3,"avg":2.3333333333333335,"total":7.0,"max":4.0,"min":1.0,"last":4.0},` +
		`{"count":3,"avg":3.0,"total":9.0,"max":3.0,"min":3.0,"last":3.0}],"notices":[]}` + "\n"
	if string(stats) != want {
		t.Errorf("stats.json:\n%s\nwant\n%s", stats, want)
	}
}

func TestTagsAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, api.Options{},
		series(t0, []float64{1}, "name", "cpu", "nf.app", "www"),
		series(t0, []float64{1}, "name", "cpu", "nf.app", "api"),
		series(t0, []float64{1}, "name", "mem", "nf.app", "db"),
	)
	check := func(path string, want string, params ...string) {
		t.Helper()
		code, _, body := e.get(t, path, params...)
		if code != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("%s %v: %d %s, want %s", path, params, code, body, want)
		}
	}
	check("/api/v1/tags", `["name","nf.app"]`)
	check("/api/v1/tags/nf.app", `["api","db","www"]`)
	check("/api/v1/tags/nf.app", `["api","www"]`, "q", "name,cpu,:eq")
	check("/api/v1/tags/nf.app", `["api"]`, "limit", "1")
	check("/api/v1/tags/nf.app", `["db","www"]`, "offset", "api")
	check("/api/v1/tags/name", `[{"key":"name","value":"cpu","count":2},{"key":"name","value":"mem","count":1}]`, "verbose", "1")
	check("/api/v1/tags/nf.app", "api\ndb\nwww", "format", "txt")
	if code, _, _ := e.get(t, "/api/v1/tags", "q", "name,cpu"); code != 400 {
		t.Errorf("a q that is not a query: %d", code)
	}
	if code, _, _ := e.get(t, "/api/v1/tags", "limit", "zero"); code != 400 {
		t.Errorf("bad limit: %d", code)
	}
}

func TestExprAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, api.Options{},
		series(t0, []float64{1}, "name", "cpu", "nf.app", "www"),
		series(t0, []float64{1}, "name", "cpu", "nf.app", "web"),
		series(t0, []float64{1}, "name", "mem", "nf.app", "db"),
	)
	code, _, body := e.get(t, "/api/v1/expr", "q", "name,cpu,:eq,:avg")
	if code != 200 || !strings.Contains(string(body), `"stack":[{"type":"TimeSeriesExpr","value":"name,cpu,:eq,:avg"}]`) {
		t.Errorf("expr: %d %s", code, body)
	}
	code, _, body = e.get(t, "/api/v1/expr", "q", "name,cpu,:eq,,:sum,:nope")
	var eb struct {
		Word     string
		Position int
	}
	if json.Unmarshal(body, &eb); code != 400 || eb.Word != ":nope" || eb.Position != 19 {
		t.Errorf("expr error: %d %s", code, body)
	}
	_, _, body = e.get(t, "/api/v1/expr/normalize", "q", "name,cpu,:eq,(,nf.app,),:by,2,:mul")
	if strings.TrimSpace(string(body)) != `["name,cpu,:eq,:sum,(,nf.app,),:by,2.0,:const,:mul"]` {
		t.Errorf("normalize: %s", body)
	}
	_, _, body = e.get(t, "/api/v1/expr/queries", "q", "name,cpu,:eq,:sum,name,mem,:eq,:max,:div")
	if strings.TrimSpace(string(body)) != `["name,cpu,:eq","name,mem,:eq"]` {
		t.Errorf("queries: %s", body)
	}
	_, _, body = e.get(t, "/api/v1/expr/debug", "q", "a,:dup")
	if !strings.Contains(string(body), `{"token":":dup","position":2,"stack":[{"type":"String","value":"a"},{"type":"String","value":"a"}]}`) {
		t.Errorf("debug: %s", body)
	}
	var c struct {
		Words  []struct{ Name string }
		Keys   []string
		Values []string
		Key    string
	}
	complete := func(q string) {
		t.Helper()
		c.Words, c.Keys, c.Values, c.Key = nil, nil, nil, ""
		code, _, body := e.get(t, "/api/v1/expr/complete", "q", q)
		if code != 200 || json.Unmarshal(body, &c) != nil {
			t.Fatalf("complete %q: %d %s", q, code, body)
		}
	}
	complete("name,cpu,:eq,nf.app,w")
	if c.Key != "nf.app" || strings.Join(c.Values, ",") != "web,www" {
		t.Errorf("values for nf.app within name=cpu: %+v", c)
	}
	complete("name,cpu,:eq,:s")
	names := []string{}
	for _, w := range c.Words {
		names = append(names, w.Name)
	}
	if !strings.Contains(strings.Join(names, " "), ":sum") || strings.Contains(strings.Join(names, " "), ":swap") {
		t.Errorf("words after a query starting with :s: %v", names)
	}
	complete("n")
	if strings.Join(c.Keys, ",") != "name,nf.app" {
		t.Errorf("keys: %+v", c)
	}
	if code, _, _ := e.get(t, "/api/v1/expr/complete", "q", "(,a,:x"); code != 400 {
		t.Errorf("complete on a broken program: %d", code)
	}
}
