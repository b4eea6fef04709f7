package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func getRaw(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// result decodes a v3 {"result": TracesData} answer.
func result(t *testing.T, body []byte) ptrace.Traces {
	t.Helper()
	var w struct{ Result json.RawMessage }
	if err := json.Unmarshal(body, &w); err != nil || w.Result == nil {
		t.Fatalf("not a v3 result: %s", body)
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(w.Result)
	if err != nil {
		t.Fatalf("result is not OTLP JSON: %v", err)
	}
	return td
}

func TestV3(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	code, body := getRaw(t, srv.URL+"/api/v3/services")
	if code != 200 || string(body) != `{"services":["catalog","frontend"]}` {
		t.Errorf("services: %d %s", code, body)
	}
	code, body = getRaw(t, srv.URL+"/api/v3/operations?service=frontend&span_kind=server")
	if code != 200 || string(body) != `{"operations":[{"name":"HTTP GET /dispatch","spanKind":"server"}]}` {
		t.Errorf("operations: %d %s", code, body)
	}

	code, body = getRaw(t, srv.URL+"/api/v3/traces/5b8aa5a2d2c872e8321cf37308d69df2")
	if code != 200 {
		t.Fatalf("trace: %d %s", code, body)
	}
	td := result(t, body)
	if td.SpanCount() != 3 || td.ResourceSpans().Len() != 2 {
		t.Fatalf("%d spans in %d resources", td.SpanCount(), td.ResourceSpans().Len())
	}
	rs := td.ResourceSpans().At(0)
	if svc, _ := rs.Resource().Attributes().Get("service.name"); svc.Str() != "frontend" {
		t.Errorf("first resource %v", rs.Resource().Attributes().AsRaw())
	}
	if host, _ := rs.Resource().Attributes().Get("host.name"); host.Str() != "frontend-1" {
		t.Errorf("resource attributes %v", rs.Resource().Attributes().AsRaw())
	}
	root := rs.ScopeSpans().At(0).Spans().At(0)
	if rs.ScopeSpans().At(0).Scope().Name() != "demo" || root.Name() != "HTTP GET /dispatch" || root.Kind() != ptrace.SpanKindServer ||
		root.Status().Code() != ptrace.StatusCodeError || root.Status().Message() != "upstream failed" ||
		root.EndTimestamp().AsTime().Sub(root.StartTimestamp().AsTime()) != 1503*time.Microsecond {
		t.Errorf("root span %s %v %v %q", root.Name(), root.Kind(), root.Status().Code(), root.Status().Message())
	}
	if diff := cmp.Diff(map[string]any{"http.route": "/dispatch", "http.response.status_code": int64(500)}, root.Attributes().AsRaw()); diff != "" {
		t.Errorf("root attributes (-want +got):\n%s", diff)
	}
	if root.Events().Len() != 1 || root.Events().At(0).Name() != "retry" {
		t.Errorf("root events %d", root.Events().Len())
	}
	catalog := td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0)
	if catalog.ParentSpanID().String() != "5f00000000000002" || catalog.Links().Len() != 1 || catalog.Links().At(0).SpanID().String() != "5f00000000000009" {
		t.Errorf("catalog span parent %s, %d links", catalog.ParentSpanID(), catalog.Links().Len())
	}
	if diff := cmp.Diff(map[string]any{"cache.hit": true, "load": 0.5}, catalog.Attributes().AsRaw()); diff != "" {
		t.Errorf("catalog attributes (-want +got):\n%s", diff)
	}

	search := url.Values{"query.service_name": {"frontend"}, "query.start_time_min": {t0.Add(-time.Hour).Format(time.RFC3339)},
		"query.start_time_max": {t0.Add(time.Hour).Format(time.RFC3339)}, "query.duration_min": {"1ms"}}
	code, body = getRaw(t, srv.URL+"/api/v3/traces?"+search.Encode())
	if code != 200 || result(t, body).SpanCount() != 3 {
		t.Errorf("search: %d %s", code, body)
	}
	search.Set("query.attributes", `{"http.route":"/nowhere"}`)
	code, body = getRaw(t, srv.URL+"/api/v3/traces?"+search.Encode())
	if code != 404 || string(body) != `{"error":{"httpCode":404,"message":"tracing: trace not found"}}`+"\n" {
		t.Errorf("empty search: %d %s", code, body)
	}
	for path, want := range map[string]string{
		"/api/v3/traces?query.service_name=frontend":      `parameter \"query.start_time_min\": required (RFC 3339)`,
		"/api/v3/traces/zz":                               `parameter \"trace_id\"`,
		"/api/v3/operations":                              `parameter \"service\": required`,
		"/api/v3/traces?query.start_time_min=x":           `parameter \"query.service_name\": required`,
		"/api/v3/traces/00000000000000000000000000000001": `trace not found`,
	} {
		code, body := getRaw(t, srv.URL+path)
		var e v3Error
		if json.Unmarshal(body, &e) != nil || e.Error.HTTPCode != code || code < 400 || !contains(string(body), want) {
			t.Errorf("%s: %d %s, want %s", path, code, body, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
