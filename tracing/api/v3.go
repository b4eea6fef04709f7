package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tracing"
)

// Jaeger's API v3 over HTTP (its grpc-gateway), which Jaeger UI builds
// since 2026-08 call: OTLP JSON traces wrapped as {"result": TracesData},
// errors as {"error": {"httpCode", "message"}}, and a 404 when a search
// finds nothing.

type v3Error struct {
	Error struct {
		HTTPCode int    `json:"httpCode"`
		Message  string `json:"message"`
	} `json:"error"`
}

// registerV3 adds the v3 routes.
func (a *API) registerV3(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v3/services", a.v3(a.v3Services))
	mux.HandleFunc("GET /api/v3/operations", a.v3(a.v3Operations))
	mux.HandleFunc("GET /api/v3/traces", a.v3(a.v3FindTraces))
	mux.HandleFunc("GET /api/v3/traces/{traceID}", a.v3(a.v3GetTrace))
	mux.HandleFunc("GET /api/v3/trace-summaries", a.v3(a.v3TraceSummaries))
}

// v3 runs a handler that returns a JSON body (already encoded) or an
// error, which it answers in the v3 error shape.
func (a *API) v3(h func(ctx context.Context, r *http.Request) ([]byte, error)) http.HandlerFunc {
	return a.instrument("v3", func(ctx context.Context, partial *tracing.Partial, w http.ResponseWriter, r *http.Request) {
		body, err := h(ctx, r)
		if err != nil {
			var e v3Error
			e.Error.HTTPCode, err = a.statusOf(r, err)
			e.Error.Message = err.Error()
			writeJSON(w, e.Error.HTTPCode, e)
			return
		}
		if partial.Is() {
			w.Header().Set(PartialHeader, "true")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

func (a *API) v3Services(ctx context.Context, r *http.Request) ([]byte, error) {
	svcs, err := a.services(ctx, r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"services": svcs})
}

func (a *API) v3Operations(ctx context.Context, r *http.Request) ([]byte, error) {
	ops, err := a.listOperations(ctx, r.URL.Query(), "span_kind")
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"operations": ops})
}

func (a *API) v3GetTrace(ctx context.Context, r *http.Request) ([]byte, error) {
	id, err := tracing.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		return nil, badParam("trace_id", "%q: %v", r.PathValue("traceID"), err)
	}
	tr, err := a.opts.Reader.GetTrace(ctx, id)
	if err != nil {
		return nil, err
	}
	return v3Result([]tracing.Trace{tr})
}

// v3FindTraces takes query.service_name (required), query.operation_name,
// query.start_time_min and _max (RFC 3339, required), query.duration_min
// and _max (Go durations), query.num_traces and query.attributes (a JSON
// object of exact values, as the v1 tags parameter).
func (a *API) v3FindTraces(ctx context.Context, r *http.Request) ([]byte, error) {
	q, err := v3Query(snakeParams(r.URL.Query()))
	if err != nil {
		return nil, err
	}
	traces, err := a.opts.Reader.FindTraces(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(traces) == 0 {
		return nil, tracing.ErrNotFound
	}
	return v3Result(traces)
}

// v3Query parses the query.* parameters of a v3 search.
func v3Query(v url.Values) (tracing.Query, error) {
	q := tracing.Query{Service: v.Get("query.service_name"), Operation: v.Get("query.operation_name"), Limit: DefaultLimit}
	if q.Service == "" {
		return q, badParam("query.service_name", "required")
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"query.start_time_min", &q.Start}, {"query.start_time_max", &q.End}} {
		s := v.Get(p.name)
		if s == "" {
			return q, badParam(p.name, "required (RFC 3339)")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, badParam(p.name, "%q is not an RFC 3339 time", s)
		}
		*p.dst = t.UnixNano()
	}
	q.End++ // Jaeger's max is inclusive
	if q.End <= q.Start {
		return q, badParam("query.start_time_max", "before query.start_time_min")
	}
	var err error
	if q.MinDuration, err = durationParam(v, "query.duration_min"); err != nil {
		return q, err
	}
	if q.MaxDuration, err = durationParam(v, "query.duration_max"); err != nil {
		return q, err
	}
	if s := v.Get("query.num_traces"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > MaxLimit {
			return q, badParam("query.num_traces", "%q: want 1 to %d", s, MaxLimit)
		}
		q.Limit = n
	}
	if s := v.Get("query.attributes"); s != "" {
		m, err := jsonMap(s)
		if err != nil {
			return q, badParam("query.attributes", "%v", err)
		}
		for k, val := range m {
			q.Attributes = append(q.Attributes, tracing.AttrFilter{Key: k, Value: val})
		}
	}
	return q, nil
}

// v3Result encodes traces as {"result": <OTLP JSON TracesData>}.
func v3Result(traces []tracing.Trace) ([]byte, error) {
	td := toOTLP(traces)
	body, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+12)
	out = append(out, `{"result":`...)
	out = append(out, body...)
	return append(out, '}'), nil
}

// toOTLP rebuilds OTLP data from stored spans: one ResourceSpans per
// process, one ScopeSpans per scope within it.
func toOTLP(traces []tracing.Trace) ptrace.Traces {
	td := ptrace.NewTraces()
	type scopeKey struct {
		res           *tracing.Resource
		name, version string
	}
	resources := map[*tracing.Resource]ptrace.ResourceSpans{}
	scopes := map[scopeKey]ptrace.SpanSlice{}
	for _, tr := range traces {
		for i := range tr.Spans {
			s := &tr.Spans[i]
			rs, ok := resources[s.Resource]
			if !ok {
				rs = td.ResourceSpans().AppendEmpty()
				attrs := rs.Resource().Attributes()
				attrs.PutStr("service.name", s.Resource.Service)
				putAttrs(attrs, s.Resource.Attributes)
				resources[s.Resource] = rs
			}
			sk := scopeKey{s.Resource, s.ScopeName, s.ScopeVersion}
			spans, ok := scopes[sk]
			if !ok {
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName(s.ScopeName)
				ss.Scope().SetVersion(s.ScopeVersion)
				spans = ss.Spans()
				scopes[sk] = spans
			}
			putSpan(spans.AppendEmpty(), s)
		}
	}
	return td
}

func putSpan(o ptrace.Span, s *tracing.Span) {
	o.SetTraceID(pcommon.TraceID(s.TraceID))
	o.SetSpanID(pcommon.SpanID(s.SpanID))
	if !s.ParentSpanID.IsZero() {
		o.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
	}
	o.TraceState().FromRaw(s.TraceState)
	o.SetFlags(s.Flags)
	o.SetName(s.Name)
	o.SetKind(ptrace.SpanKind(s.Kind))
	o.SetStartTimestamp(pcommon.Timestamp(s.Start))
	o.SetEndTimestamp(pcommon.Timestamp(s.End))
	o.Status().SetCode(ptrace.StatusCode(s.Status))
	o.Status().SetMessage(s.StatusMessage)
	putAttrs(o.Attributes(), s.Attributes)
	if s.TruncatedValues > 0 {
		o.Attributes().PutInt("sextant.truncated_values", int64(s.TruncatedValues))
	}
	o.SetDroppedAttributesCount(s.DroppedAttributes)
	o.SetDroppedEventsCount(s.DroppedEvents)
	o.SetDroppedLinksCount(s.DroppedLinks)
	for _, e := range s.Events {
		oe := o.Events().AppendEmpty()
		oe.SetTimestamp(pcommon.Timestamp(e.Time))
		oe.SetName(e.Name)
		putAttrs(oe.Attributes(), e.Attributes)
		oe.SetDroppedAttributesCount(e.DroppedAttributes)
	}
	for _, l := range s.Links {
		ol := o.Links().AppendEmpty()
		ol.SetTraceID(pcommon.TraceID(l.TraceID))
		ol.SetSpanID(pcommon.SpanID(l.SpanID))
		ol.TraceState().FromRaw(l.TraceState)
		putAttrs(ol.Attributes(), l.Attributes)
		ol.SetDroppedAttributesCount(l.DroppedAttributes)
	}
}

func putAttrs(m pcommon.Map, kvs []tracing.KeyValue) {
	m.EnsureCapacity(len(kvs))
	for _, kv := range kvs {
		switch kv.Type {
		case tracing.ValueBool:
			m.PutBool(kv.Key, kv.Int != 0)
		case tracing.ValueInt:
			m.PutInt(kv.Key, kv.Int)
		case tracing.ValueFloat:
			m.PutDouble(kv.Key, kv.Float)
		case tracing.ValueBytes:
			m.PutEmptyBytes(kv.Key).FromRaw([]byte(kv.Str))
		default:
			m.PutStr(kv.Key, kv.Str)
		}
	}
}
