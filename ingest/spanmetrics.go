package ingest

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Span metrics: every stored span also counts in RED series of the
// time-series store, per service.name, operation, span.kind and
// status.code:
//
//	name=span.calls     statistic=count                  calls per second
//	name=span.errors    statistic=count                  failed calls per second
//	name=span.duration  statistic=count|totalTime|max    a timer (seconds), so :dist-avg works
//	name=span.duration  statistic=percentile, percentile=T00XX   bucket counts for :percentiles
//
// Counts are written with atlas.dstype=sum as per-second shares of the
// step that contains the span's end, so later flushes (and late spans)
// add up in the same step; max is a gauge (max per step). Requests
// aggregate in memory and a flush every SpanMetricsInterval writes the
// aggregates: one store append per second instead of one per request.
// A crash loses at most that interval of span metrics, never spans.

// redKey is one span-metrics series, without its statistic.
type redKey struct {
	service, operation, kind, status string
}

// redAgg accumulates one series' spans of one step within a request.
type redAgg struct {
	calls, errors float64
	total, max    float64 // seconds
	buckets       map[int]float64
	slowest       time.Duration
	trace         tracing.TraceID
	span          tracing.SpanID
}

type redSlot struct {
	key redKey
	t   int64 // step boundary, Unix ms
}

var kindTag = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}
var statusTag = [...]string{"UNSET", "OK", "ERROR"}

// spanAggs accumulates span metrics between flushes. Its memory is
// bounded: past maxSpanSlots series-steps a request flushes at once.
type spanAggs struct {
	mu    sync.Mutex
	slots map[redSlot]*redAgg
}

const maxSpanSlots = 50_000

// spanMetrics adds td's spans to the RED aggregates; they reach the store
// at the next flush (Run), or at once when no flush interval is set.
func (h *Handler) spanMetrics(ctx context.Context, td ptrace.Traces) {
	step := h.opts.Step
	h.red.mu.Lock()
	if h.red.slots == nil {
		h.red.slots = map[redSlot]*redAgg{}
	}
	aggs := h.red.slots
	// Operation names repeat within a request: sanitize each once (a name
	// with a space or a slash would otherwise allocate per span).
	ops := map[string]string{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := "unknown_service"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.AsString() != "" {
			service = v.AsString()
		}
		service = h.tagValue(service)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				kind, st := int(s.Kind()), int(s.Status().Code())
				if kind >= len(kindTag) {
					kind = 0
				}
				if st >= len(statusTag) {
					st = 0
				}
				end := int64(s.EndTimestamp()) / 1e6
				d := time.Duration(max(int64(s.EndTimestamp())-int64(s.StartTimestamp()), 0))
				op, ok := ops[s.Name()]
				if !ok {
					op = h.tagValue(s.Name())
					ops[s.Name()] = op
				}
				slot := redSlot{redKey{service, op, kindTag[kind], statusTag[st]}, boundary(end, step)}
				a := aggs[slot]
				if a == nil {
					a = &redAgg{buckets: map[int]float64{}}
					aggs[slot] = a
				}
				a.calls++
				if st == int(ptrace.StatusCodeError) {
					a.errors++
				}
				a.total += d.Seconds()
				a.max = math.Max(a.max, d.Seconds())
				a.buckets[lib.PercentileBucketIndex(int64(d))]++
				if d >= a.slowest {
					a.slowest, a.trace, a.span = d, tracing.TraceID(s.TraceID()), tracing.SpanID(s.SpanID())
				}
			}
		}
	}
	full := len(aggs) > maxSpanSlots
	h.red.mu.Unlock()
	if h.opts.SpanMetricsInterval <= 0 || full {
		h.flushSpanMetrics(ctx)
	}
}

// Run flushes span metrics every SpanMetricsInterval until ctx ends, then
// once more. Without an interval it returns at once (requests flush).
func (h *Handler) Run(ctx context.Context) error {
	if h.opts.SpanMetricsInterval <= 0 {
		return nil
	}
	t := time.NewTicker(h.opts.SpanMetricsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.flushSpanMetrics(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			h.flushSpanMetrics(ctx)
		}
	}
}

// flushSpanMetrics appends the aggregated RED datapoints and records new
// slowest spans as exemplars. Failures are logged and counted: the spans
// themselves are stored already.
func (h *Handler) flushSpanMetrics(ctx context.Context) {
	h.red.mu.Lock()
	aggs := h.red.slots
	h.red.slots = nil
	h.red.mu.Unlock()
	if len(aggs) == 0 {
		return
	}
	perSec := 1000 / float64(h.opts.Step)
	var b tsdb.Batch
	var arena []tags.Tag
	point := func(k redKey, t int64, name, stat, dstype string, v float64, extra ...string) {
		start := len(arena)
		arena = append(arena,
			tags.Tag{Key: tags.NameKey, Value: name}, tags.Tag{Key: "statistic", Value: stat},
			tags.Tag{Key: tsdb.DSTypeKey, Value: dstype}, tags.Tag{Key: tracing.TagService, Value: k.service},
			tags.Tag{Key: tracing.TagOperation, Value: k.operation}, tags.Tag{Key: tracing.TagSpanKind, Value: k.kind},
			tags.Tag{Key: tracing.TagStatusCode, Value: k.status})
		if len(extra) == 2 {
			arena = append(arena, tags.Tag{Key: extra[0], Value: extra[1]})
		}
		b.Points = append(b.Points, tsdb.Datapoint{Tags: tags.Set(arena[start:]).Normalize(), T: t, V: v})
	}
	var ex []tracing.Exemplar
	for slot, a := range aggs {
		k, t := slot.key, slot.t
		point(k, t, tracing.MetricCalls, "count", "sum", a.calls*perSec)
		point(k, t, tracing.MetricErrors, "count", "sum", a.errors*perSec)
		point(k, t, tracing.MetricDuration, "count", "sum", a.calls*perSec)
		point(k, t, tracing.MetricDuration, "totalTime", "sum", a.total*perSec)
		point(k, t, tracing.MetricDuration, "max", "gauge", a.max)
		for i, n := range a.buckets {
			point(k, t, tracing.MetricDuration, "percentile", "sum", n*perSec, "percentile", lib.PercentileTag('T', i))
		}
		if h.opts.Exemplars != nil && h.exemplars.slower(k, t, a.slowest) {
			ex = append(ex, tracing.Exemplar{
				Tags: map[string]string{tracing.TagService: k.service, tracing.TagOperation: k.operation, tracing.TagSpanKind: k.kind, tracing.TagStatusCode: k.status},
				T:    t, TraceID: a.trace, SpanID: a.span, Duration: a.slowest,
			})
		}
	}
	if err := h.opts.Appender.Append(ctx, &b); err != nil {
		h.opts.Logger.Warn("span metrics", "err", err)
		h.opts.Registry.Counter("sextant.ingest.spanMetricsDropped", "reason", "append").Add(float64(len(b.Points)))
	} else if len(b.Rejected) > 0 {
		h.opts.Registry.Counter("sextant.ingest.spanMetricsDropped", "reason", "rejected").Add(float64(len(b.Rejected)))
	}
	if len(ex) > 0 {
		if err := h.opts.Exemplars.WriteExemplars(ctx, ex); err != nil {
			h.opts.Logger.Warn("exemplars", "err", err)
		}
	}
}

// tagValue makes s a tag value under the tag policy of the non-Atlas
// protocols: as sent (so the Jaeger UI and queries find an operation by
// its own name), cut to the policy's length, invalid UTF-8 replaced.
func (h *Handler) tagValue(s string) string {
	s, _ = h.opts.Tags.value(strings.ToValidUTF8(s, "\uFFFD"))
	if s == "" {
		s = "unknown"
	}
	return s
}

// boundary is the step boundary a sum or gauge sample at t lands on (the
// store rounds up; see tsdb/norm.Boundary).
func boundary(t, step int64) int64 {
	if o := t % step; o != 0 {
		if o < 0 {
			o += step
		}
		return t - o + step
	}
	return t
}

// exemplarTracker remembers the slowest duration written per series and
// step, so that only a new slowest span is written. When the map grows
// past its bound, steps more than an hour older than the newest are
// forgotten (a late span there could then replace a slower exemplar).
type exemplarTracker struct {
	mu      sync.Mutex
	slowest map[redSlot]time.Duration
	newest  int64
}

func (e *exemplarTracker) slower(k redKey, t int64, d time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.slowest == nil {
		e.slowest = map[redSlot]time.Duration{}
	}
	e.newest = max(e.newest, t)
	if len(e.slowest) > 1<<17 {
		for s := range e.slowest {
			if s.t < e.newest-3600_000 {
				delete(e.slowest, s)
			}
		}
		if len(e.slowest) > 1<<17 {
			clear(e.slowest) // a flood of series within the hour: start over
		}
	}
	s := redSlot{k, t}
	if old, ok := e.slowest[s]; ok && old >= d {
		return false
	}
	e.slowest[s] = d
	return true
}
