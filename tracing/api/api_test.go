package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing/spanstore"
)

// TestMain checks that no test left a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fixtures' time: 2026-11-24 10:00:00 UTC.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// newServer is the API over a real store holding one trace across
// frontend → catalog, written by the two services separately.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	store, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	tid := pcommon.TraceID{0x5b, 0x8a, 0xa5, 0xa2, 0xd2, 0xc8, 0x72, 0xe8, 0x32, 0x1c, 0xf3, 0x73, 0x08, 0xd6, 0x9d, 0xf2}
	write := func(service string, fill func(ss ptrace.SpanSlice)) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		rs.Resource().Attributes().PutStr("host.name", service+"-1")
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("demo")
		fill(sc.Spans())
		if err := store.WriteTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	span := func(ss ptrace.SpanSlice, id, parent byte, name string, kind ptrace.SpanKind, start, dur time.Duration) ptrace.Span {
		s := ss.AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{0x5f, 7: id})
		if parent != 0 {
			s.SetParentSpanID(pcommon.SpanID{0x5f, 7: parent})
		}
		s.SetName(name)
		s.SetKind(kind)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(start)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(start + dur)))
		return s
	}
	write("frontend", func(ss ptrace.SpanSlice) {
		root := span(ss, 1, 0, "HTTP GET /dispatch", ptrace.SpanKindServer, 0, 1503*time.Microsecond)
		root.Attributes().PutStr("http.route", "/dispatch")
		root.Attributes().PutInt("http.response.status_code", 500)
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage("upstream failed")
		ev := root.Events().AppendEmpty()
		ev.SetName("retry")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(100 * time.Microsecond)))
		ev.Attributes().PutInt("attempt", 2)
		span(ss, 2, 1, "catalog.get", ptrace.SpanKindClient, 10*time.Microsecond, time.Millisecond)
	})
	write("catalog", func(ss ptrace.SpanSlice) {
		s := span(ss, 3, 2, "GET /titles", ptrace.SpanKindServer, 20*time.Microsecond, 900*time.Microsecond)
		s.Attributes().PutBool("cache.hit", true)
		s.Attributes().PutDouble("load", 0.5)
		l := s.Links().AppendEmpty()
		l.SetTraceID(tid)
		l.SetSpanID(pcommon.SpanID{0x5f, 7: 9})
	})
	a, err := New(Options{Reader: store, Catalog: store, Dependencies: store, Registry: lib.NewRegistry(lib.RegistryOptions{}),
		Now: func() time.Time { return t0.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: not JSON: %s", path, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, m
}

// TestGrafanaSequence drives the API as Grafana's Jaeger data source does
// (compat.md §d.2): services, then operations, then a search, then the
// trace by id, then the dependency graph; every answer in the envelope.
func TestGrafanaSequence(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	envelope := func(m map[string]any, total int) {
		t.Helper()
		for _, k := range []string{"data", "total", "limit", "offset", "errors"} {
			if _, ok := m[k]; !ok {
				t.Errorf("envelope lacks %q: %v", k, m)
			}
		}
		if m["total"] != float64(total) || m["limit"] != 0.0 || m["offset"] != 0.0 || m["errors"] != nil {
			t.Errorf("envelope %v, want total %d", m, total)
		}
	}
	code, m := get(t, srv, "/api/services")
	envelope(m, 2)
	if code != 200 || !cmp.Equal(m["data"], []any{"catalog", "frontend"}) {
		t.Errorf("services: %d %v", code, m["data"])
	}
	_, m = get(t, srv, "/api/services/frontend/operations")
	envelope(m, 2)
	if !cmp.Equal(m["data"], []any{"HTTP GET /dispatch", "catalog.get"}) {
		t.Errorf("operations: %v", m["data"])
	}
	_, m = get(t, srv, "/api/operations?service=frontend&spanKind=server")
	if !cmp.Equal(m["data"], []any{map[string]any{"name": "HTTP GET /dispatch", "spanKind": "server"}}) {
		t.Errorf("operations by kind: %v", m["data"])
	}
	// Grafana: tags as JSON from logfmt, durations as typed, no start/end.
	q := url.Values{"service": {"frontend"}, "operation": {"HTTP GET /dispatch"}, "tags": {`{"http.route":"/dispatch","error":"true"}`},
		"minDuration": {"1ms"}, "maxDuration": {"2s"}, "limit": {"20"}}
	code, m = get(t, srv, "/api/traces?"+q.Encode())
	envelope(m, 1)
	data, _ := m["data"].([]any)
	if code != 200 || len(data) != 1 {
		t.Fatalf("search: %d %v", code, m)
	}
	id := data[0].(map[string]any)["traceID"].(string)
	code, m = get(t, srv, "/api/traces/"+id)
	envelope(m, 1)
	if code != 200 {
		t.Fatalf("trace: %d", code)
	}
	got := m["data"].([]any)[0]
	var want any
	json.Unmarshal([]byte(wantTrace), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
	// The dependency graph, as Grafana's node graph asks for it.
	end := t0.Add(time.Hour).UnixMilli()
	_, m = get(t, srv, "/api/dependencies?endTs="+itoa(end)+"&lookback=7200000")
	envelope(m, 1)
	if !cmp.Equal(m["data"], []any{map[string]any{"parent": "frontend", "child": "catalog", "callCount": 1.0}}) {
		t.Errorf("dependencies: %v", m["data"])
	}
}

func itoa(n int64) string { return strings.TrimSpace(strings.ReplaceAll(jsonString(n), `"`, "")) }

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// wantTrace is the trace, field for field, as Jaeger's API shows it.
const wantTrace = `{
  "traceID": "5b8aa5a2d2c872e8321cf37308d69df2",
  "processes": {
    "p1": {"serviceName": "frontend", "tags": [{"key": "host.name", "type": "string", "value": "frontend-1"}]},
    "p2": {"serviceName": "catalog", "tags": [{"key": "host.name", "type": "string", "value": "catalog-1"}]}
  },
  "warnings": null,
  "spans": [
    {"traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000001", "operationName": "HTTP GET /dispatch",
     "references": [], "startTime": 1795514400000000, "duration": 1503,
     "tags": [
       {"key": "http.route", "type": "string", "value": "/dispatch"},
       {"key": "http.response.status_code", "type": "int64", "value": 500},
       {"key": "otel.scope.name", "type": "string", "value": "demo"},
       {"key": "span.kind", "type": "string", "value": "server"},
       {"key": "otel.status_code", "type": "string", "value": "ERROR"},
       {"key": "error", "type": "bool", "value": true},
       {"key": "otel.status_description", "type": "string", "value": "upstream failed"}
     ],
     "logs": [{"timestamp": 1795514400000100, "fields": [
       {"key": "event", "type": "string", "value": "retry"},
       {"key": "attempt", "type": "int64", "value": 2}]}],
     "processID": "p1", "warnings": null, "flags": 1},
    {"traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000002", "operationName": "catalog.get",
     "references": [{"refType": "CHILD_OF", "traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000001"}],
     "startTime": 1795514400000010, "duration": 1000,
     "tags": [
       {"key": "otel.scope.name", "type": "string", "value": "demo"},
       {"key": "span.kind", "type": "string", "value": "client"}
     ],
     "logs": [], "processID": "p1", "warnings": null, "flags": 1},
    {"traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000003", "operationName": "GET /titles",
     "references": [
       {"refType": "CHILD_OF", "traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000002"},
       {"refType": "FOLLOWS_FROM", "traceID": "5b8aa5a2d2c872e8321cf37308d69df2", "spanID": "5f00000000000009"}],
     "startTime": 1795514400000020, "duration": 900,
     "tags": [
       {"key": "cache.hit", "type": "bool", "value": true},
       {"key": "load", "type": "float64", "value": 0.5},
       {"key": "otel.scope.name", "type": "string", "value": "demo"},
       {"key": "span.kind", "type": "string", "value": "server"}
     ],
     "logs": [], "processID": "p2", "warnings": null, "flags": 1}
  ]
}`

func TestErrors(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/traces", 400, `parameter "service": required`},
		{"/api/traces?service=frontend&minDuration=fast", 400, `parameter "minDuration": "fast" is not a duration`},
		{"/api/traces?service=frontend&minDuration=2s&maxDuration=1s", 400, `parameter "maxDuration": 1s is less than minDuration 2s`},
		{"/api/traces?service=frontend&limit=-3", 400, `parameter "limit"`},
		{"/api/traces?service=frontend&limit=100000", 400, `parameter "limit": 100000 is more than 1500`},
		{"/api/traces?service=frontend&tags=not-json", 400, `parameter "tags": not a JSON object`},
		{"/api/traces?service=frontend&tagsRegex={\"a\":\"(\"}", 400, `parameter "tagsRegex": tag "a": error parsing regexp`},
		{"/api/traces?service=frontend&start=200&end=100", 400, `parameter "start": 200 is after end 100`},
		{"/api/traces?service=frontend&spanKind=sideways", 400, `parameter "spanKind"`},
		{"/api/traces/xyz", 400, `parameter "traceID"`},
		{"/api/traces/00000000000000000000000000000001", 404, "trace not found"},
		{"/api/operations", 400, `parameter "service": required`},
		{"/api/dependencies?endTs=soon", 400, `parameter "endTs"`},
		{"/api/dependencies?lookback=0", 400, `parameter "lookback"`},
	} {
		code, m := get(t, srv, tc.path)
		errs, _ := m["errors"].([]any)
		if code != tc.code || len(errs) != 1 {
			t.Errorf("%s: %d %v, want %d", tc.path, code, m, tc.code)
			continue
		}
		e := errs[0].(map[string]any)
		if e["code"] != float64(tc.code) || !strings.Contains(e["msg"].(string), tc.msg) {
			t.Errorf("%s: error %v, want %q", tc.path, e, tc.msg)
		}
	}
}

func TestSearchExtensions(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	start := itoa(t0.Add(-time.Hour).UnixMicro())
	for _, tc := range []struct {
		query string
		n     int
	}{
		{"service=catalog&tagsRegex=" + url.QueryEscape(`{"host.name":"cat.*-[0-9]"}`), 1},
		{"service=catalog&tagsRegex=" + url.QueryEscape(`{"host.name":"cat"}`), 0}, // anchored
		{"service=frontend&tagsPrefix=" + url.QueryEscape(`{"http.route":"/disp"}`), 1},
		{"service=frontend&minTraceDuration=1ms", 1},
		{"service=frontend&minTraceDuration=2ms", 0},
		{"service=frontend&tag=error:true", 1},
		{"service=frontend&spanKind=client&operation=catalog.get", 1},
		{"traceID=5b8aa5a2d2c872e8321cf37308d69df2&traceID=1", 1},
	} {
		_, m := get(t, srv, "/api/traces?start="+start+"&"+tc.query)
		if data, _ := m["data"].([]any); len(data) != tc.n {
			t.Errorf("%s: %d traces, want %d (%v)", tc.query, len(data), tc.n, m["errors"])
		}
	}
}

// FuzzParseSearch: the search parser answers any query string with a
// query or a parameter error, never a panic.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		"service=frontend&operation=GET&tags=%7B%22a%22%3A%22b%22%7D&minDuration=1ms&maxDuration=2s&limit=20",
		"service=x&start=1&end=2&lookback=2d&tagsRegex=%7B%22k%22%3A%22a.*%22%7D",
		"traceID=abc&traceID=5b8aa5a2d2c872e8321cf37308d69df2",
		"service=x&tag=k:v&spanKind=server&minTraceDuration=100&lookback=custom",
		"service=x&limit=0&tagsPrefix=%7B%22k%22%3A1%7D",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseSearch(v, t0.UnixNano())
		if err != nil {
			if _, ok := err.(*paramError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		q := p.query
		if len(p.traceIDs) == 0 && (q.Service == "" || q.Limit <= 0 || q.Limit > MaxLimit || q.End < q.Start) {
			t.Fatalf("parsed an unusable query %+v", q)
		}
	})
}
