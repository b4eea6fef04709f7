package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// freeAddr returns a loopback address nobody listens on (for listeners
// whose bound address serve does not report back).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tracedService is one service of the test: an SDK tracer provider that
// exports synchronously to Sextant and also records what it exported.
type tracedService struct {
	tp  *sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

func newTracedService(t *testing.T, name string, exp sdktrace.SpanExporter) *tracedService {
	t.Helper()
	res, err := resource.New(context.Background(), resource.WithAttributes(
		attribute.String("service.name", name), attribute.String("service.version", "2.0.1"), attribute.Int("pid.shard", 7)))
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &tracedService{tp: tp, rec: rec}
}

// TestTracesWithSDK sends a trace across three services with the real
// OpenTelemetry SDK — over OTLP/HTTP and OTLP/gRPC — and reads it back
// through the Jaeger API: every span, field for field.
func TestTracesWithSDK(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.OTLPGRPCListen = freeAddr(t)
	addr := startServe(t, cfg)
	ctx := context.Background()

	httpExp := func() sdktrace.SpanExporter {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL("http://"+addr+"/v1/traces"))
		if err != nil {
			t.Fatal(err)
		}
		return exp
	}
	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(cfg.OTLPGRPCListen), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	frontend := newTracedService(t, "frontend", httpExp())
	catalog := newTracedService(t, "catalog", grpcExp)
	playback := newTracedService(t, "playback", httpExp())

	// frontend: a server span with attributes of every type, an event and
	// an error, calling catalog (client span → catalog's server span).
	ft := frontend.tp.Tracer("frontend-http", oteltrace.WithInstrumentationVersion("0.9"))
	rootCtx, root := ft.Start(context.Background(), "GET /api/home", oteltrace.WithSpanKind(oteltrace.SpanKindServer),
		oteltrace.WithAttributes(
			attribute.String("http.route", "/api/home"), attribute.Bool("user.premium", true),
			attribute.Int64("http.response.status_code", 502), attribute.Float64("sample.rate", 0.25),
			attribute.StringSlice("ab.groups", []string{"a", "b"}), attribute.Int64Slice("ids", []int64{1, 2}),
			attribute.String("long", strings.Repeat("x", 5000)),
		))
	root.AddEvent("cache.miss", oteltrace.WithAttributes(attribute.String("key", "home:u42")))
	clientCtx, client := ft.Start(rootCtx, "GET catalog.title", oteltrace.WithSpanKind(oteltrace.SpanKindClient))

	// catalog continues the trace from the client span's context, as the
	// propagated headers would, and links to an unrelated trace.
	ct := catalog.tp.Tracer("catalog-http")
	other := oteltrace.NewSpanContext(oteltrace.SpanContextConfig{TraceID: oteltrace.TraceID{1, 2, 3}, SpanID: oteltrace.SpanID{4, 5, 6}, TraceFlags: 1})
	remote := oteltrace.ContextWithRemoteSpanContext(context.Background(), oteltrace.SpanContextFromContext(clientCtx))
	srvCtx, srv := ct.Start(remote, "GET /titles/{id}", oteltrace.WithSpanKind(oteltrace.SpanKindServer),
		oteltrace.WithLinks(oteltrace.Link{SpanContext: other, Attributes: []attribute.KeyValue{attribute.String("link.reason", "batch")}}))
	// The query takes 2 ms, told by timestamps rather than slept: the
	// search below asks for spans of at least 1 ms.
	t0 := time.Now()
	_, db := ct.Start(srvCtx, "SELECT titles", oteltrace.WithSpanKind(oteltrace.SpanKindClient),
		oteltrace.WithAttributes(attribute.String("db.system.name", "postgresql")), oteltrace.WithTimestamp(t0))
	db.End(oteltrace.WithTimestamp(t0.Add(2 * time.Millisecond)))
	srv.SetStatus(codes.Ok, "")
	srv.End(oteltrace.WithTimestamp(t0.Add(3 * time.Millisecond)))
	client.End(oteltrace.WithTimestamp(t0.Add(4 * time.Millisecond)))

	// playback: a consumer span that follows from the frontend request.
	pt := playback.tp.Tracer("playback-worker")
	_, consume := pt.Start(oteltrace.ContextWithRemoteSpanContext(context.Background(), root.SpanContext()), "license.issue",
		oteltrace.WithSpanKind(oteltrace.SpanKindConsumer))
	consume.End()

	root.RecordError(errors.New("catalog timed out"))
	root.SetStatus(codes.Error, "upstream failed")
	root.End(oteltrace.WithTimestamp(t0.Add(5 * time.Millisecond)))
	for _, s := range []*tracedService{frontend, catalog, playback} {
		if err := s.tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
	}

	id := root.SpanContext().TraceID().String()
	code, body := get(t, "http://"+addr+"/api/traces/"+id)
	if code != 200 {
		t.Fatalf("GET /api/traces/%s: %d %s", id, code, body)
	}
	var got struct {
		Data []map[string]any
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Data) != 1 {
		t.Fatalf("decode: %v %s", err, body)
	}
	want := expectedJaeger(t, frontend, catalog, playback)
	if diff := cmp.Diff(want, got.Data[0]); diff != "" {
		t.Errorf("trace from the Jaeger API (-want +got):\n%s", diff)
	}

	// The search finds it by a catalog attribute, and by its duration.
	for _, q := range []url.Values{
		{"service": {"catalog"}, "tags": {`{"db.system.name":"postgresql"}`}},
		{"service": {"frontend"}, "tags": {`{"error":"true","user.premium":"true"}`}, "minDuration": {"1ms"}},
		{"service": {"playback"}, "spanKind": {"consumer"}},
	} {
		_, body := get(t, "http://"+addr+"/api/traces?"+q.Encode())
		if !strings.Contains(body, id) {
			t.Errorf("search %v did not find the trace: %s", q, body)
		}
	}
	_, body = get(t, "http://"+addr+"/api/dependencies")
	for _, edge := range []string{`{"parent":"frontend","child":"catalog","callCount":1}`, `{"parent":"frontend","child":"playback","callCount":1}`} {
		if !strings.Contains(body, edge) {
			t.Errorf("dependencies lack %s: %s", edge, body)
		}
	}

	// Span metrics, and the exemplars that lead from them to the trace,
	// once the 1 s step of the spans has ended and the span metrics are
	// flushed: wait for the exemplars of the three services rather than
	// for a fixed time.
	exemplarsURL := "http://" + addr + "/api/v1/exemplars?s=e-5m&step=1s&q=" +
		url.QueryEscape("name,span.duration,:eq,(,service.name,),:by,(,99,),:percentiles")
	waitFor(t, 30*time.Second, "exemplars of the three services", func() bool {
		_, body := get(t, exemplarsURL)
		return strings.Count(body, id) >= 3
	})
	code, body = get(t, "http://"+addr+"/api/v1/graph?format=json&s=e-5m&step=1s&q="+
		url.QueryEscape("name,span.calls,:eq,(,service.name,),:by"))
	for _, svc := range []string{`"service.name":"frontend"`, `"service.name":"catalog"`, `"service.name":"playback"`} {
		if code != 200 || !strings.Contains(body, svc) {
			t.Errorf("span.calls has no line for %s: %d %.300s", svc, code, body)
		}
	}
	var ex struct {
		Lines []struct {
			Tags      map[string]string
			Exemplars []struct {
				TraceID   string
				Duration  float64
				Operation string
			}
		}
	}
	code, body = get(t, "http://"+addr+"/api/v1/exemplars?s=e-5m&step=1s&q="+
		url.QueryEscape("name,span.duration,:eq,(,service.name,),:by,(,99,),:percentiles"))
	if err := json.Unmarshal([]byte(body), &ex); code != 200 || err != nil || len(ex.Lines) != 3 {
		t.Fatalf("exemplars: %d %v %s", code, err, body)
	}
	for _, l := range ex.Lines {
		if len(l.Exemplars) == 0 || l.Exemplars[0].TraceID != id {
			t.Errorf("exemplars of %v: %+v, want trace %s", l.Tags, l.Exemplars, id)
			continue
		}
		if l.Tags["service.name"] == "frontend" && l.Exemplars[0].Operation != "GET /api/home" {
			t.Errorf("frontend's slowest span is %q, want the root", l.Exemplars[0].Operation)
		}
	}
	// A line that is not about spans has none.
	_, body = get(t, "http://"+addr+"/api/v1/exemplars?s=e-5m&step=1s&q=name,sextant.ingest.spans,:eq,:sum")
	if strings.Contains(body, id) {
		t.Errorf("a non-span line got span exemplars: %s", body)
	}
}

// expectedJaeger builds the Jaeger JSON of the spans the SDKs recorded,
// following compat.md §d.2's conventions.
func expectedJaeger(t *testing.T, svcs ...*tracedService) map[string]any {
	t.Helper()
	type spanOf struct {
		s   sdktrace.ReadOnlySpan
		pid string
	}
	var all []spanOf
	procs := map[string]any{}
	for i, svc := range svcs {
		pid := "p" + string(rune('1'+i))
		for _, s := range svc.rec.Ended() {
			all = append(all, spanOf{s, pid})
		}
		var tags []any
		for _, kv := range svc.rec.Ended()[0].Resource().Attributes() {
			if kv.Key != "service.name" {
				tags = append(tags, typed(kv))
			}
		}
		name, _ := svc.rec.Ended()[0].Resource().Set().Value("service.name")
		procs[pid] = map[string]any{"serviceName": name.AsString(), "tags": tags}
	}
	// Spans in start order; processes numbered in that order too.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j].s.StartTime().Before(all[j-1].s.StartTime()); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	renumber := map[string]string{}
	newProcs := map[string]any{}
	var spans []any
	for _, x := range all {
		s := x.s
		if _, ok := renumber[x.pid]; !ok {
			renumber[x.pid] = "p" + string(rune('1'+len(renumber)))
			newProcs[renumber[x.pid]] = procs[x.pid]
		}
		refs := []any{}
		if s.Parent().IsValid() {
			refs = append(refs, map[string]any{"refType": "CHILD_OF", "traceID": s.SpanContext().TraceID().String(), "spanID": s.Parent().SpanID().String()})
		}
		for _, l := range s.Links() {
			refs = append(refs, map[string]any{"refType": "FOLLOWS_FROM", "traceID": l.SpanContext.TraceID().String(), "spanID": l.SpanContext.SpanID().String()})
		}
		var tags []any
		var warnings any
		for _, kv := range s.Attributes() {
			if kv.Key == "long" {
				kv = attribute.String("long", strings.Repeat("x", 4096))
				warnings = []any{"1 attribute values truncated to the length limit"}
			}
			tags = append(tags, typed(kv))
		}
		tags = append(tags, tag("otel.scope.name", "string", s.InstrumentationScope().Name))
		if v := s.InstrumentationScope().Version; v != "" {
			tags = append(tags, tag("otel.scope.version", "string", v))
		}
		tags = append(tags, tag("span.kind", "string", s.SpanKind().String()))
		switch s.Status().Code {
		case codes.Ok:
			tags = append(tags, tag("otel.status_code", "string", "OK"))
		case codes.Error:
			tags = append(tags, tag("otel.status_code", "string", "ERROR"), tag("error", "bool", true),
				tag("otel.status_description", "string", s.Status().Description))
		}
		logs := []any{}
		for _, e := range s.Events() {
			fields := []any{tag("event", "string", e.Name)}
			for _, kv := range e.Attributes {
				fields = append(fields, typed(kv))
			}
			logs = append(logs, map[string]any{"timestamp": float64(e.Time.UnixNano() / 1000), "fields": fields})
		}
		spans = append(spans, map[string]any{
			"traceID": s.SpanContext().TraceID().String(), "spanID": s.SpanContext().SpanID().String(),
			"operationName": s.Name(), "references": refs,
			"startTime": float64(s.StartTime().UnixNano() / 1000),
			"duration":  float64((s.EndTime().UnixNano() - s.StartTime().UnixNano()) / 1000),
			"tags":      tags, "logs": logs, "processID": renumber[x.pid], "warnings": warnings, "flags": 1.0,
		})
	}
	return map[string]any{"traceID": all[0].s.SpanContext().TraceID().String(), "spans": spans, "processes": newProcs, "warnings": nil}
}

func tag(k, typ string, v any) any { return map[string]any{"key": k, "type": typ, "value": v} }

// typed is an SDK attribute as a Jaeger typed tag (slices as JSON text).
func typed(kv attribute.KeyValue) any {
	switch kv.Value.Type() {
	case attribute.BOOL:
		return tag(string(kv.Key), "bool", kv.Value.AsBool())
	case attribute.INT64:
		return tag(string(kv.Key), "int64", float64(kv.Value.AsInt64()))
	case attribute.FLOAT64:
		return tag(string(kv.Key), "float64", kv.Value.AsFloat64())
	case attribute.STRING:
		return tag(string(kv.Key), "string", kv.Value.AsString())
	}
	b, _ := json.Marshal(kv.Value.AsInterface())
	return tag(string(kv.Key), "string", string(b))
}
