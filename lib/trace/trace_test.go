package trace

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/lib"
)

// TestMain checks that no test left a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a server mux behind Handler and a client behind Transport,
// both recording spans into one in-memory exporter.
type harness struct {
	reg    *lib.Registry
	spans  *tracetest.InMemoryExporter
	opts   HTTPOptions
	srv    *httptest.Server
	client *http.Client
}

func newHarness(t *testing.T, mux *http.ServeMux) *harness {
	t.Helper()
	h := &harness{reg: lib.NewRegistry(lib.RegistryOptions{}), spans: tracetest.NewInMemoryExporter()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h.opts = HTTPOptions{Provider: tp, Propagator: propagation.TraceContext{}}
	h.srv = httptest.NewServer(Handler(h.reg, mux, h.opts))
	t.Cleanup(h.srv.Close)
	h.client = &http.Client{Transport: Transport(h.reg, nil, h.opts)}
	return h
}

func (h *harness) get(t *testing.T, ctx context.Context, path string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+path, nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (h *harness) span(t *testing.T, kind oteltrace.SpanKind) tracetest.SpanStub {
	t.Helper()
	for _, s := range h.spans.GetSpans() {
		if s.SpanKind == kind {
			return s
		}
	}
	t.Fatalf("no %v span in %d spans", kind, len(h.spans.GetSpans()))
	return tracetest.SpanStub{}
}

func TestClientServerSpansAndTimers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		// The handler sees the server span in its context.
		if !oteltrace.SpanFromContext(r.Context()).SpanContext().IsValid() {
			t.Error("handler context has no span")
		}
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	h := newHarness(t, mux)

	ctx := WithEndpoint(context.Background(), "items.get")
	if got := h.get(t, ctx, "/items/42"); got != 200 {
		t.Fatalf("status %d", got)
	}
	server, client := h.span(t, oteltrace.SpanKindServer), h.span(t, oteltrace.SpanKindClient)
	if server.SpanContext.TraceID() != client.SpanContext.TraceID() {
		t.Errorf("server trace %v, client trace %v: the context did not propagate", server.SpanContext.TraceID(), client.SpanContext.TraceID())
	}
	if server.Parent.SpanID() != client.SpanContext.SpanID() {
		t.Errorf("server span's parent %v, want the client span %v", server.Parent.SpanID(), client.SpanContext.SpanID())
	}
	if server.Name != "GET /items/{id}" || client.Name != "GET items.get" {
		t.Errorf("span names %q and %q", server.Name, client.Name)
	}
	if !hasAttr(server, "http.route", "/items/{id}") || !hasAttr(server, "url.path", "/items/42") {
		t.Errorf("server attributes %v", server.Attributes)
	}
	if server.Status.Code != codes.Unset || client.Status.Code != codes.Unset {
		t.Errorf("statuses %v %v for a 200", server.Status, client.Status)
	}

	srvTimer := h.reg.PercentileTimer(ServerCall, "ipc.endpoint", "_items__id_", "http.method", "GET", "http.status", "200",
		"ipc.result", "success", "ipc.status", "success")
	cliTimer := h.reg.PercentileTimer(ClientCall, "ipc.endpoint", "items.get", "http.method", "GET", "http.status", "200",
		"ipc.result", "success", "ipc.status", "success")
	if srvTimer.Count() != 1 || cliTimer.Count() != 1 {
		t.Errorf("timer counts server %d client %d, want 1 and 1", srvTimer.Count(), cliTimer.Count())
	}

	// Failures: a 404 is a client error for both sides' metrics; a 500
	// marks the server span as an error too.
	h.spans.Reset()
	if got := h.get(t, context.Background(), "/items/missing"); got != 404 {
		t.Fatalf("status %d", got)
	}
	if h.span(t, oteltrace.SpanKindServer).Status.Code != codes.Unset {
		t.Error("a 404 marks the server span as an error; only 5xx should")
	}
	if h.span(t, oteltrace.SpanKindClient).Status.Code != codes.Error {
		t.Error("a 404 leaves the client span without error status")
	}
	if c := h.reg.PercentileTimer(ServerCall, "ipc.endpoint", "_items__id_", "http.method", "GET", "http.status", "404",
		"ipc.result", "failure", "ipc.status", "bad_request").Count(); c != 1 {
		t.Errorf("404 server timer count %d", c)
	}
	if c := h.reg.PercentileTimer(ClientCall, "ipc.endpoint", "unknown", "http.method", "GET", "http.status", "404",
		"ipc.result", "failure", "ipc.status", "bad_request").Count(); c != 1 {
		t.Errorf("404 client timer count %d", c)
	}

	h.spans.Reset()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/fail", nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := h.span(t, oteltrace.SpanKindServer); s.Status.Code != codes.Error || s.Name != "POST /fail" {
		t.Errorf("500 server span %q status %v", s.Name, s.Status)
	}
	if c := h.reg.PercentileTimer(ServerCall, "ipc.endpoint", "_fail", "http.method", "POST", "http.status", "500",
		"ipc.result", "failure", "ipc.status", "unexpected_error").Count(); c != 1 {
		t.Errorf("500 server timer count %d", c)
	}
}

func hasAttr(s tracetest.SpanStub, k, v string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == k && a.Value.String() == v {
			return true
		}
	}
	return false
}

func TestHandlerPanicStillRecords(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	h := newHarness(t, mux)
	h.srv.Config.ErrorLog = nil
	// net/http recovers the re-raised panic and drops the connection.
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/panic", nil)
	if resp, err := h.client.Do(req); err == nil {
		resp.Body.Close()
	}
	// The timer is recorded by net/http's connection goroutine after the
	// client already saw the connection drop, with no event to wait on:
	// poll for it (a real server cannot live in a synctest bubble).
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.reg.PercentileTimer(ServerCall, "ipc.endpoint", "_panic", "http.method", "GET", "http.status", "500",
		"ipc.result", "failure", "ipc.status", "unexpected_error").Count() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a panicking handler was not timed as a 500")
		}
		<-tick.C
	}
}

func TestClientErrors(t *testing.T) {
	reg := lib.NewRegistry(lib.RegistryOptions{})
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	client := &http.Client{Transport: Transport(reg, nil, HTTPOptions{Provider: tp})}

	// A port nobody listens on: connection_error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := client.Get("http://" + addr + "/"); err == nil {
		t.Fatal("a closed port answered")
	}
	if c := reg.PercentileTimer(ClientCall, "ipc.endpoint", "unknown", "http.method", "GET", "http.status", "-1",
		"ipc.result", "failure", "ipc.status", "connection_error").Count(); c != 1 {
		t.Errorf("connection error count %d", c)
	}
	if s := spans.GetSpans(); len(s) != 1 || s[0].Status.Code != codes.Error || len(s[0].Events) == 0 {
		t.Errorf("connection error span %+v", s)
	}

	// A server slower than the caller's deadline: timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(WithEndpoint(context.Background(), "slow"), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL, nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("the slow call did not time out")
	}
	if c := reg.PercentileTimer(ClientCall, "ipc.endpoint", "slow", "http.method", "GET", "http.status", "-1",
		"ipc.result", "failure", "ipc.status", "timeout").Count(); c != 1 {
		t.Errorf("timeout count %d", c)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status          int
		result, status2 string
	}{
		{200, "success", "success"}, {204, "success", "success"}, {304, "success", "success"},
		{400, "failure", "bad_request"}, {401, "failure", "access_denied"}, {403, "failure", "access_denied"},
		{404, "failure", "bad_request"}, {429, "failure", "throttled"}, {500, "failure", "unexpected_error"},
		{503, "failure", "unavailable"}, {504, "failure", "timeout"},
	} {
		r, s := classify(tc.status, nil)
		if r != tc.result || s != tc.status2 {
			t.Errorf("classify(%d) = %s, %s; want %s, %s", tc.status, r, s, tc.result, tc.status2)
		}
	}
	if _, s := classify(0, context.Canceled); s != "cancelled" {
		t.Errorf("context.Canceled -> %s", s)
	}
}

func TestMethodAndEndpointBounds(t *testing.T) {
	if method("PROPFIND") != "other" || method("GET") != "GET" {
		t.Error("method is not bounded to the standard set")
	}
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'a'
	}
	for in, want := range map[string]string{
		"":                "unknown",
		"/a b/{c}":        "_a_b__c_",
		string(long):      string(long[:120]),
		"catalog.get-v2~": "catalog.get-v2~",
	} {
		if got := endpointTag(in); got != want {
			t.Errorf("endpointTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTraceURL(t *testing.T) {
	for _, tc := range []struct {
		opt, env, envTraces, want string
		bad                       bool
	}{
		{want: "http://localhost:4318/v1/traces"},
		{opt: "http://sextant:4318", want: "http://sextant:4318/v1/traces"},
		{opt: "https://sextant/", want: "https://sextant/v1/traces"},
		{opt: "http://sextant:4318/custom/path", want: "http://sextant:4318/custom/path"},
		{env: "http://from-env:4318", want: "http://from-env:4318/v1/traces"},
		{env: "http://from-env:4318", envTraces: "http://traces:9999/x", want: "http://traces:9999/x"},
		{opt: "sextant:4318", bad: true},
		{opt: "ftp://sextant", bad: true},
	} {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", tc.env)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tc.envTraces)
		got, err := traceURL(tc.opt)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("traceURL(%q) env %q/%q = %q, %v; want %q (bad %v)", tc.opt, tc.env, tc.envTraces, got, err, tc.want, tc.bad)
		}
	}
}

// TestSetupExportsOTLP runs Setup's real OTLP/HTTP exporter against a
// server that decodes what it receives as an OTLP trace export request.
func TestSetupExportsOTLP(t *testing.T) {
	got := make(chan ptraceotlp.ExportRequest, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export to %s as %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(b); err != nil {
			t.Errorf("not an OTLP export request: %v", err)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
		_, _ = w.Write(resp)
		got <- req
	}))
	defer srv.Close()

	tp, err := Setup(context.Background(), Options{
		Endpoint: srv.URL, ServiceName: "catalog", Attributes: map[string]string{"service.version": "1.2.3"}, NoGlobal: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "lookup")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
	select {
	case req := <-got:
		rs := req.Traces().ResourceSpans()
		if rs.Len() != 1 {
			t.Fatalf("%d resource spans", rs.Len())
		}
		attrs := rs.At(0).Resource().Attributes()
		if v, _ := attrs.Get("service.name"); v.Str() != "catalog" {
			t.Errorf("service.name %q", v.Str())
		}
		if v, _ := attrs.Get("service.version"); v.Str() != "1.2.3" {
			t.Errorf("service.version %q", v.Str())
		}
		if _, ok := attrs.Get("host.name"); !ok {
			t.Error("no host.name resource attribute")
		}
		if n := rs.At(0).ScopeSpans().At(0).Spans().At(0).Name(); n != "lookup" {
			t.Errorf("span %q", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing exported")
	}
}

func TestSetupRejectsBadOptions(t *testing.T) {
	if _, err := Setup(context.Background(), Options{SampleRatio: 2, NoGlobal: true}); err == nil {
		t.Error("SampleRatio 2 accepted")
	}
	if _, err := Setup(context.Background(), Options{Endpoint: "localhost:4318", NoGlobal: true}); err == nil {
		t.Error("an endpoint without a scheme accepted")
	}
}

// TestSetupSampling: SampleRatio samples new traces; children follow
// their parent's decision.
func TestSetupSampling(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp, err := Setup(context.Background(), Options{Exporter: spans, SampleRatio: 0.1, NoGlobal: true, ServiceName: "sampled"})
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("test")
	sampled := 0
	for range 2000 {
		ctx, root := tr.Start(context.Background(), "root")
		_, child := tr.Start(ctx, "child")
		if child.SpanContext().IsSampled() != root.SpanContext().IsSampled() {
			t.Fatal("a child did not follow its parent's sampling decision")
		}
		if root.SpanContext().IsSampled() {
			sampled++
		}
		child.End()
		root.End()
	}
	// Flush, not Shutdown: shutting the in-memory exporter down empties it.
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	if sampled < 100 || sampled > 300 {
		t.Errorf("%d of 2000 traces sampled at ratio 0.1", sampled)
	}
	if n := len(spans.GetSpans()); n != 2*sampled {
		t.Errorf("%d spans exported for %d sampled traces", n, sampled)
	}
}
