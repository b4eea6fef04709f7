package ingest

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/sextant-dev/sextant/tracing"
)

// SpanLimits bound what one span may carry. What is over a limit is cut
// and counted: attributes, events and links beyond the counts are dropped
// (and added to the span's OTLP dropped counts), longer values are
// shortened (and counted in the span attribute sextant.truncated_values).
// Spans beyond MaxSpansPerTrace are rejected.
type SpanLimits struct {
	MaxAttributes    int // per span, event and link; default 128
	MaxEvents        int // per span; default 128
	MaxLinks         int // per span; default 128
	MaxValueLength   int // bytes of a string or bytes value; default 4096
	MaxSpansPerTrace int // default 10 000
}

func (l SpanLimits) withDefaults() SpanLimits {
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = 128
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = 128
	}
	if l.MaxLinks <= 0 {
		l.MaxLinks = 128
	}
	if l.MaxValueLength <= 0 {
		l.MaxValueLength = 4096
	}
	if l.MaxSpansPerTrace <= 0 {
		l.MaxSpansPerTrace = 10_000
	}
	return l
}

const protoOTLPTraces = "otlp-traces"

// truncatedAttr mirrors spanstore.TruncatedAttr (ingest sees the store
// only through the contract).
const truncatedAttr = "sextant.truncated_values"

// otlpTracesHTTP serves POST /v1/traces.
func (h *Handler) otlpTracesHTTP(w http.ResponseWriter, r *http.Request) {
	req := ptraceotlp.NewExportRequest()
	h.serveOTLP(w, r, protoOTLPTraces, req, func(ctx context.Context) (otlpEncoder, error) {
		return h.exportTraces(ctx, req)
	})
}

// exportTraces checks, cuts and stores one export request, then derives
// span metrics from what was stored. Rejected spans go into the partial
// success; an error means nothing was stored.
func (h *Handler) exportTraces(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	td := req.Traces()
	if n := td.SpanCount(); n > h.opts.MaxSpans {
		return resp, &httpError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d spans in one request, more than %d", n, h.opts.MaxSpans)}
	}
	var rej rejections
	reasons := map[string]int{}
	cuts := h.checkSpans(td, &rej, reasons)
	for reason, n := range reasons {
		h.reject(protoOTLPTraces, reason, n)
	}
	for what, n := range cuts {
		if n > 0 {
			h.opts.Registry.Counter("sextant.ingest.spanCuts", "what", what).Add(float64(n))
		}
	}
	n := td.SpanCount()
	if n > 0 {
		if err := h.opts.Traces.WriteTraces(ctx, td); err != nil {
			h.traceCounts.forget(td)
			return resp, err
		}
		h.opts.Registry.Counter("sextant.ingest.spans", "protocol", "otlp").Add(float64(n))
		h.spanMetrics(ctx, td)
	}
	if rej.count > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedSpans(int64(rej.count))
		ps.SetErrorMessage(fmt.Sprintf("%d spans rejected: %s", rej.count, strings.Join(rej.messages, "; ")))
	}
	return resp, nil
}

// checkSpans removes the spans that cannot be stored (zero ids, beyond
// the per-trace limit) and cuts the rest to the limits, returning what it
// cut.
func (h *Handler) checkSpans(td ptrace.Traces, rej *rejections, reasons map[string]int) map[string]int {
	lim := h.opts.SpanLimits
	cuts := map[string]int{"attributes": 0, "events": 0, "links": 0, "values": 0}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		cuts["values"] += truncateValues(rs.Resource().Attributes(), lim.MaxValueLength)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sss.At(j).Spans().RemoveIf(func(s ptrace.Span) bool {
				reason := ""
				switch {
				case s.TraceID().IsEmpty():
					reason = "InvalidTraceID"
				case s.SpanID().IsEmpty():
					reason = "InvalidSpanID"
				}
				detail := ""
				if reason == "" {
					p := checkSpan(s)
					reason, detail = p.reason, p.msg
				}
				if reason == "" && !h.traceCounts.admit(tracing.TraceID(s.TraceID()), lim.MaxSpansPerTrace) {
					reason = "TraceSpanLimit"
				}
				if reason != "" {
					reasons[reason]++
					rej.add(func() string {
						tid := s.TraceID()
						if detail != "" {
							return fmt.Sprintf("%s: %s (trace=%s, span=%q)", reason, detail, hex.EncodeToString(tid[:]), s.Name())
						}
						return fmt.Sprintf("%s (trace=%s, span=%q)", reason, hex.EncodeToString(tid[:]), s.Name())
					})
					return true
				}
				h.cutSpan(s, cuts)
				return false
			})
		}
	}
	return cuts
}

// cutSpan applies the per-span limits.
func (h *Handler) cutSpan(s ptrace.Span, cuts map[string]int) {
	lim := h.opts.SpanLimits
	s.Attributes().Remove(truncatedAttr) // only ingest sets it
	if n := keepFirst(s.Attributes(), lim.MaxAttributes); n > 0 {
		s.SetDroppedAttributesCount(s.DroppedAttributesCount() + uint32(n))
		cuts["attributes"] += n
	}
	truncated := truncateValues(s.Attributes(), lim.MaxValueLength)
	if ev := s.Events(); ev.Len() > lim.MaxEvents {
		n := ev.Len() - lim.MaxEvents
		i := 0
		ev.RemoveIf(func(ptrace.SpanEvent) bool { i++; return i > lim.MaxEvents })
		s.SetDroppedEventsCount(s.DroppedEventsCount() + uint32(n))
		cuts["events"] += n
	}
	for k := 0; k < s.Events().Len(); k++ {
		e := s.Events().At(k)
		if n := keepFirst(e.Attributes(), lim.MaxAttributes); n > 0 {
			e.SetDroppedAttributesCount(e.DroppedAttributesCount() + uint32(n))
			cuts["attributes"] += n
		}
		truncated += truncateValues(e.Attributes(), lim.MaxValueLength)
	}
	if ls := s.Links(); ls.Len() > lim.MaxLinks {
		n := ls.Len() - lim.MaxLinks
		i := 0
		ls.RemoveIf(func(ptrace.SpanLink) bool { i++; return i > lim.MaxLinks })
		s.SetDroppedLinksCount(s.DroppedLinksCount() + uint32(n))
		cuts["links"] += n
	}
	for k := 0; k < s.Links().Len(); k++ {
		l := s.Links().At(k)
		if n := keepFirst(l.Attributes(), lim.MaxAttributes); n > 0 {
			l.SetDroppedAttributesCount(l.DroppedAttributesCount() + uint32(n))
			cuts["attributes"] += n
		}
		truncated += truncateValues(l.Attributes(), lim.MaxValueLength)
	}
	if truncated > 0 {
		s.Attributes().PutInt(truncatedAttr, int64(truncated))
		cuts["values"] += truncated
	}
}

// keepFirst removes the attributes after the first max and returns how
// many it removed.
func keepFirst(m pcommon.Map, max int) int {
	n := m.Len() - max
	if n <= 0 {
		return 0
	}
	i := 0
	m.RemoveIf(func(string, pcommon.Value) bool { i++; return i > max })
	return n
}

// truncateValues shortens string and bytes values to max bytes (strings
// at a rune boundary) and returns how many it shortened.
func truncateValues(m pcommon.Map, max int) int {
	n := 0
	m.Range(func(_ string, v pcommon.Value) bool {
		switch v.Type() {
		case pcommon.ValueTypeStr:
			if s := v.Str(); len(s) > max {
				cut := max
				for cut > 0 && !utf8.RuneStart(s[cut]) {
					cut--
				}
				v.SetStr(s[:cut])
				n++
			}
		case pcommon.ValueTypeBytes:
			if b := v.Bytes(); b.Len() > max {
				v.SetEmptyBytes().FromRaw(b.AsRaw()[:max])
				n++
			}
		case pcommon.ValueTypeSlice, pcommon.ValueTypeMap:
			if len(v.AsString()) > max {
				v.SetStr(truncateJSON(v.AsString(), max))
				n++
			}
		}
		return true
	})
	return n
}

func truncateJSON(s string, max int) string {
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

// traceCounter counts the spans accepted per trace, for the per-trace
// limit. Two generations of maps bound its memory: a full current
// generation replaces the previous one, so a trace is tracked while it is
// recent. Traces are keyed by 64 bits of their id (ids are random; a
// collision merges two traces' counts), about 30 bytes a trace.
type traceCounter struct {
	max int
	mu  struct {
		sync.Mutex
		cur, old map[uint64]uint32
	}
}

func newTraceCounter(max int) *traceCounter {
	c := &traceCounter{max: max}
	c.mu.cur = map[uint64]uint32{}
	return c
}

func traceKey(id tracing.TraceID) uint64 {
	return binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])
}

// admit counts one span of trace id, reporting false (and not counting
// it) when the trace already has limit spans.
func (c *traceCounter) admit(id tracing.TraceID, limit int) bool {
	k := traceKey(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.mu.cur[k]
	if !ok {
		n = c.mu.old[k]
	}
	if int(n) >= limit {
		return false
	}
	if len(c.mu.cur) >= c.max {
		c.mu.old, c.mu.cur = c.mu.cur, make(map[uint64]uint32, c.max)
	}
	c.mu.cur[k] = n + 1
	return true
}

// forget uncounts the spans of a write that failed, so a retry is not
// refused.
func (c *traceCounter) forget(td ptrace.Traces) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := traceKey(tracing.TraceID(spans.At(k).TraceID()))
				if n := c.mu.cur[id]; n > 0 {
					c.mu.cur[id] = n - 1
				}
			}
		}
	}
}

// grpcTraces implements the OTLP TraceService.
type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	h *Handler
}

// Export implements the TraceService with the same rules as metrics.
func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	return grpcExport(ctx, g.h, req, g.h.exportTraces, ptraceotlp.NewExportResponse)
}

// registerGRPCTraces adds the TraceService when a span store is wired.
func (h *Handler) registerGRPCTraces(s *grpc.Server) {
	if h.opts.Traces != nil {
		ptraceotlp.RegisterGRPCServer(s, &grpcTraces{h: h})
	}
}
