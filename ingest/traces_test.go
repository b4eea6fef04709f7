package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// traceEnv is newEnv with a span store and small span limits.
func traceEnv(t *testing.T) (*env, *spanstore.Store) {
	t.Helper()
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem(), Now: func() time.Time { return time.UnixMilli(now) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spans.Close() })
	e := newEnv(t, func(o *Options) {
		o.Traces, o.Exemplars = spans, spans
		o.SpanLimits = SpanLimits{MaxAttributes: 4, MaxEvents: 2, MaxLinks: 1, MaxValueLength: 16, MaxSpansPerTrace: 5}
		o.MaxSpans = 50
	})
	return e, spans
}

func traceID(n byte) pcommon.TraceID { return pcommon.TraceID{0xee, 15: n} }
func spanID(n byte) pcommon.SpanID   { return pcommon.SpanID{0x55, 7: n} }

// spanRequest builds a request of n spans of trace tr in service svc,
// each lasting d and ending at now.
func spanRequest(svc string, tr byte, n int, d time.Duration, edit func(i int, s ptrace.Span)) ptraceotlp.ExportRequest {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		s := ss.AppendEmpty()
		s.SetTraceID(traceID(tr))
		s.SetSpanID(spanID(byte(i + 1)))
		s.SetName("GET /items")
		s.SetKind(ptrace.SpanKindServer)
		end := time.UnixMilli(now - 1)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-d)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		if edit != nil {
			edit(i, s)
		}
	}
	return ptraceotlp.NewExportRequestFromTraces(td)
}

func postTraces(t *testing.T, url, ct string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestOTLPTracesStatuses(t *testing.T) {
	t.Parallel()
	e, spans := traceEnv(t)
	good, _ := spanRequest("checkout", 1, 2, time.Millisecond, nil).MarshalProto()
	jsonBody, _ := spanRequest("checkout", 2, 1, time.Millisecond, nil).MarshalJSON()
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write(good)
	zw.Close()
	tooMany, _ := spanRequest("checkout", 3, 51, time.Millisecond, nil).MarshalProto()
	badIDs, _ := spanRequest("checkout", 4, 3, time.Millisecond, func(i int, s ptrace.Span) {
		switch i {
		case 1:
			s.SetTraceID(pcommon.TraceID{})
		case 2:
			s.SetSpanID(pcommon.SpanID{})
		}
	}).MarshalProto()
	for _, tc := range []struct {
		name, ct string
		body     []byte
		header   []string
		code     int
		contains string
	}{
		{"protobuf", ctProto, good, nil, 200, ""},
		{"json with hex ids", ctJSON, jsonBody, nil, 200, "{}"},
		{"gzip", ctProto, zipped.Bytes(), []string{"Content-Encoding", "gzip"}, 200, ""},
		{"content type", "text/plain", good, nil, 415, "unsupported Content-Type"},
		{"malformed protobuf", ctProto, []byte{0xff, 0xff, 0xff}, nil, 400, "invalid OTLP request"},
		{"malformed json", ctJSON, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), nil, 400, "invalid OTLP request"},
		{"too many spans", ctProto, tooMany, nil, 413, "51 spans in one request, more than 50"},
		{"zero ids", ctProto, badIDs, nil, 200, "2 spans rejected: InvalidTraceID"},
	} {
		code, body := postTraces(t, e.url, tc.ct, tc.body, tc.header...)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, code, tc.code, body)
			continue
		}
		var msg string
		switch {
		case code == 200 && tc.ct == ctJSON:
			msg = string(body)
		case code == 200:
			resp := ptraceotlp.NewExportResponse()
			if err := resp.UnmarshalProto(body); err != nil {
				t.Errorf("%s: response: %v", tc.name, err)
			}
			msg = resp.PartialSuccess().ErrorMessage()
			if tc.contains != "" && resp.PartialSuccess().RejectedSpans() != 2 {
				t.Errorf("%s: rejected_spans %d", tc.name, resp.PartialSuccess().RejectedSpans())
			}
		default:
			msg = string(body)
		}
		if !strings.Contains(msg, tc.contains) {
			t.Errorf("%s: %q does not say %q", tc.name, msg, tc.contains)
		}
	}
	for _, tr := range []byte{1, 2, 4} {
		if _, err := spans.GetTrace(context.Background(), tracing.TraceID(traceID(tr))); err != nil {
			t.Errorf("trace %d: %v", tr, err)
		}
	}
	if _, err := spans.GetTrace(context.Background(), tracing.TraceID(traceID(3))); err == nil {
		t.Error("a request over the span limit was stored")
	}
}

func TestSpanLimits(t *testing.T) {
	t.Parallel()
	e, spans := traceEnv(t)
	req := spanRequest("checkout", 7, 7, time.Millisecond, func(i int, s ptrace.Span) {
		if i > 0 {
			return
		}
		for _, k := range []string{"a1", "a2", "a3", "a4", "a5", "a6"} {
			s.Attributes().PutStr(k, "v")
		}
		s.Attributes().PutStr("a1", "a value much longer than sixteen bytes")
		s.Attributes().PutStr("a2", "ééééééééé") // 18 bytes: cut at a rune boundary
		s.SetDroppedAttributesCount(1)
		for range 3 {
			s.Events().AppendEmpty().SetName("ev")
		}
		for range 2 {
			s.Links().AppendEmpty().SetTraceID(traceID(9))
		}
	})
	body, _ := req.MarshalProto()
	code, out := postTraces(t, e.url, ctProto, body)
	resp := ptraceotlp.NewExportResponse()
	resp.UnmarshalProto(out)
	if code != 200 || resp.PartialSuccess().RejectedSpans() != 2 || !strings.Contains(resp.PartialSuccess().ErrorMessage(), "TraceSpanLimit (trace=ee") {
		t.Fatalf("status %d, partial success %d %q", code, resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage())
	}
	tr, err := spans.GetTrace(context.Background(), tracing.TraceID(traceID(7)))
	if err != nil || len(tr.Spans) != 5 {
		t.Fatalf("stored %d spans (%v), want the first 5", len(tr.Spans), err)
	}
	var s tracing.Span
	for _, sp := range tr.Spans {
		if sp.SpanID == tracing.SpanID(spanID(1)) {
			s = sp
		}
	}
	if len(s.Attributes) != 4 || s.DroppedAttributes != 3 || len(s.Events) != 2 || s.DroppedEvents != 1 ||
		len(s.Links) != 1 || s.DroppedLinks != 1 || s.TruncatedValues != 2 {
		t.Errorf("cut span: %d attributes (%d dropped), %d events (%d dropped), %d links (%d dropped), %d truncated",
			len(s.Attributes), s.DroppedAttributes, len(s.Events), s.DroppedEvents, len(s.Links), s.DroppedLinks, s.TruncatedValues)
	}
	for _, kv := range s.Attributes {
		if len(kv.Str) > 16 || !strings.HasPrefix("a value much longer than sixteen bytes", kv.Str) && kv.Key == "a1" {
			t.Errorf("attribute %s = %q", kv.Key, kv.Str)
		}
		if kv.Key == "a2" && kv.Str != "éééééééé" {
			t.Errorf("a2 cut to %q, want 8 whole runes", kv.Str)
		}
	}
	// A later request for the same trace is refused past the limit too.
	body, _ = spanRequest("checkout", 7, 1, time.Millisecond, nil).MarshalProto()
	_, out = postTraces(t, e.url, ctProto, body)
	resp.UnmarshalProto(out)
	if resp.PartialSuccess().RejectedSpans() != 1 {
		t.Errorf("a sixth span of the trace was accepted: %q", resp.PartialSuccess().ErrorMessage())
	}
	if c := e.reg.Counter("sextant.ingest.spanCuts", "what", "attributes").Count(); c != 2 {
		t.Errorf("attribute cuts counted %v, want 2", c)
	}
}

func TestSpanMetrics(t *testing.T) {
	t.Parallel()
	e, spans := traceEnv(t)
	// 10 calls of 100 ms and 2 failures of 400 ms, in one step.
	req := spanRequest("checkout", 8, 5, 100*time.Millisecond, nil)
	body, _ := req.MarshalProto()
	postTraces(t, e.url, ctProto, body)
	req = spanRequest("checkout", 9, 5, 100*time.Millisecond, nil)
	body, _ = req.MarshalProto()
	postTraces(t, e.url, ctProto, body)
	req = spanRequest("checkout", 10, 2, 400*time.Millisecond, func(i int, s ptrace.Span) {
		s.Status().SetCode(ptrace.StatusCodeError)
	})
	body, _ = req.MarshalProto()
	postTraces(t, e.url, ctProto, body)

	fetch := func(q *tags.Query) float64 {
		t.Helper()
		end := boundary(now, 60_000) + 60_000
		set, err := e.store.Fetch(context.Background(), tsdb.FetchRequest{Query: q, Start: end - 120_000, End: end, Step: 60_000, Aggregation: tsdb.AggSum})
		if err != nil || len(set.Series) != 1 {
			t.Fatalf("fetch %v: %v %v", q, set, err)
		}
		return sum(set.Series[0].Values)
	}
	svc := tags.Eq("service.name", "checkout")
	and := func(qs ...*tags.Query) *tags.Query {
		q := qs[0]
		for _, x := range qs[1:] {
			q = tags.And(q, x)
		}
		return q
	}
	per := func(n float64) float64 { return n / 60 } // per second over the 60 s step
	for _, tc := range []struct {
		name string
		q    *tags.Query
		want float64
	}{
		{"calls", and(tags.Eq("name", "span.calls"), svc), per(12)},
		{"ok calls", and(tags.Eq("name", "span.calls"), svc, tags.Eq("status.code", "UNSET")), per(10)},
		{"errors", and(tags.Eq("name", "span.errors"), svc), per(2)},
		{"duration count", and(tags.Eq("name", "span.duration"), tags.Eq("statistic", "count"), svc), per(12)},
		{"total time", and(tags.Eq("name", "span.duration"), tags.Eq("statistic", "totalTime"), svc), per(10*0.1 + 2*0.4)},
		{"max", and(tags.Eq("name", "span.duration"), tags.Eq("statistic", "max"), tags.Eq("status.code", "ERROR")), 0.4},
		{"buckets", and(tags.Eq("name", "span.duration"), tags.Eq("statistic", "percentile"), svc), per(12)},
	} {
		if got := fetch(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, got, tc.want)
		}
	}
	// The slowest span of each series and step is its exemplar.
	ex, err := spans.Exemplars(context.Background(), 0, math.MaxInt64/2)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range ex {
		if x.Tags["status.code"] == "ERROR" {
			found = true
			if x.TraceID != tracing.TraceID(traceID(10)) || x.Duration != 400*time.Millisecond || x.Tags["operation"] != "GET /items" {
				t.Errorf("error exemplar %+v", x)
			}
		}
	}
	if !found || len(ex) != 2 {
		t.Errorf("exemplars %+v, want one per series", ex)
	}
}

func TestOTLPTracesGRPC(t *testing.T) {
	t.Parallel()
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer spans.Close()
	e := newEnv(t, func(o *Options) { o.Traces = spans })
	_ = e
	h, _ := New(Options{Appender: e.store, Traces: spans, Now: func() int64 { return now }})
	gs := grpc.NewServer(h.GRPCServerOptions()...)
	h.RegisterGRPC(gs)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	resp, err := client.Export(context.Background(), spanRequest("checkout", 11, 3, time.Millisecond, func(i int, s ptrace.Span) {
		if i == 2 {
			s.SetSpanID(pcommon.SpanID{})
		}
	}))
	if err != nil || resp.PartialSuccess().RejectedSpans() != 1 {
		t.Fatalf("export: %v, rejected %d", err, resp.PartialSuccess().RejectedSpans())
	}
	if tr, err := spans.GetTrace(context.Background(), tracing.TraceID(traceID(11))); err != nil || len(tr.Spans) != 2 {
		t.Errorf("stored %v, %v", tr, err)
	}
}

// FuzzOTLPTracesJSON: any body either decodes and stores, or answers a
// 4xx; never a panic or a 500.
func FuzzOTLPTracesJSON(f *testing.F) {
	good, _ := spanRequest("checkout", 1, 2, time.Millisecond, func(i int, s ptrace.Span) {
		s.Attributes().PutStr("http.route", "/items")
		s.Events().AppendEmpty().SetName("ev")
		s.Links().AppendEmpty().SetTraceID(traceID(3))
	}).MarshalJSON()
	f.Add(good)
	f.Add([]byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8aa5a2d2c872e8321cf37308d69df2","spanId":"051581bf3cb55c13","name":"op","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2","status":{"code":2}}]}]}]}`))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":""}]}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		f.Fatal(err)
	}
	defer spans.Close()
	h, err := New(Options{Appender: nopAppender{}, Traces: spans})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(body); err != nil {
			return
		}
		if _, err := h.exportTraces(context.Background(), req); err != nil {
			if he := statusOf(err); he.status >= 500 {
				t.Fatalf("export: %v", err)
			}
		}
	})
}

// nopAppender accepts everything and keeps nothing.
type nopAppender struct{}

func (nopAppender) Append(ctx context.Context, b *tsdb.Batch) error { return nil }

// TestSpanMetricsRun: with a flush interval, requests only aggregate and
// Run writes the span metrics, and flushes what is left when it stops.
func TestSpanMetricsRun(t *testing.T) {
	t.Parallel()
	spans, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer spans.Close()
	e := newEnv(t, func(o *Options) { o.Traces, o.SpanMetricsInterval = spans, time.Hour })
	h := e.handler
	calls := func() float64 {
		end := boundary(now, 60_000) + 60_000
		set, err := e.store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "span.calls"), Start: end - 120_000, End: end, Step: 60_000, Aggregation: tsdb.AggSum})
		if err != nil || len(set.Series) == 0 {
			return 0
		}
		return sum(set.Series[0].Values)
	}
	body, _ := spanRequest("checkout", 12, 3, time.Millisecond, nil).MarshalProto()
	postTraces(t, e.url, ctProto, body)
	if c := calls(); c != 0 {
		t.Fatalf("span metrics written before a flush: %v", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := calls(); math.Abs(c-3.0/60) > 1e-12 {
		t.Errorf("after Run stopped, span.calls = %v, want 3 per minute", c)
	}
}
