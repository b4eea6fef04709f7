package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Jaeger UI's Monitor tab (Jaeger's metrics query API): GET
// /api/metrics/{latencies,calls,errors} answer a MetricFamily in
// protobuf JSON ({"name","type","help","metrics":[{"labels":[{"name",
// "value"}],"metricPoints":[{"gaugeValue":{"doubleValue"},"timestamp"}]}]})
// and /api/metrics/minstep the storage step in ms ({"data": ms}). They are
// answered from the span metrics (ingest's span.calls, span.errors and
// span.duration series) through Options.SpanMetrics.

// SpanMetricsFunc evaluates a stack-language expression over [start, end)
// at step (Unix ms) and returns its lines. cmd builds it from the query
// facade; the API knows nothing of the store.
type SpanMetricsFunc func(ctx context.Context, expr string, start, end, step int64) ([]MetricLine, error)

// MetricLine is one line of an evaluated expression: its tags and one
// value per step from Start (NaN for none).
type MetricLine struct {
	Tags   map[string]string
	Start  int64 // Unix ms of the first value
	Step   int64 // ms
	Values []float64
}

// registerMetrics adds the Monitor tab's routes.
func (a *API) registerMetrics(mux *http.ServeMux) {
	for _, m := range []string{"latencies", "calls", "errors"} {
		mux.HandleFunc("GET /api/metrics/"+m, a.metrics(m))
	}
	mux.HandleFunc("GET /api/metrics/minstep", func(w http.ResponseWriter, r *http.Request) {
		if a.opts.SpanMetrics == nil {
			a.fail(w, r, errMetricsDisabled)
			return
		}
		writeJSON(w, http.StatusOK, envelope{Data: a.opts.MinStep.Milliseconds()})
	})
}

// errMetricsDisabled is answered when no span metrics are wired (501, as
// Jaeger does without a metrics store).
var errMetricsDisabled = errors.New("metrics querying is disabled")

type metricsParams struct {
	services        []string
	spanKinds       []string
	groupByOp       bool
	quantile        float64
	start, end, stp int64 // Unix ms
}

// parseMetricsParams reads Jaeger's metrics parameters, in snake_case or
// lowerCamelCase: service (repeated, required), spanKind (default
// server), groupByOperation, quantile (latencies), endTs and lookback and
// step (ms; default now, 1 h and the storage step).
func (a *API) parseMetricsParams(v url.Values, which string) (metricsParams, error) {
	v = snakeParams(v)
	p := metricsParams{services: v["service"], spanKinds: v["span_kind"]}
	if len(p.services) == 0 {
		return p, badParam("service", "required")
	}
	if len(p.spanKinds) == 0 {
		p.spanKinds = []string{"server"}
	}
	for i, k := range p.spanKinds {
		p.spanKinds[i] = strings.TrimPrefix(strings.ToLower(k), "span_kind_")
	}
	if s := v.Get("group_by_operation"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return p, badParam("groupByOperation", "%q is not a boolean", s)
		}
		p.groupByOp = b
	}
	if which == "latencies" {
		s := v.Get("quantile")
		q, err := strconv.ParseFloat(s, 64)
		if err != nil || !(q > 0 && q <= 1) {
			return p, badParam("quantile", "%q: want a number in (0, 1]", s)
		}
		p.quantile = q
	}
	ms := func(name string, def int64) (int64, error) {
		s := v.Get(name)
		if s == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, badParam(name, "%q: want milliseconds", s)
		}
		return n, nil
	}
	var err error
	if p.end, err = ms("end_ts", a.opts.Now().UnixMilli()); err != nil {
		return p, err
	}
	lookback, err := ms("lookback", time.Hour.Milliseconds())
	if err != nil {
		return p, err
	}
	minStep := max(a.opts.MinStep.Milliseconds(), 1)
	if p.stp, err = ms("step", minStep); err != nil {
		return p, err
	}
	p.stp = max(p.stp/minStep, 1) * minStep
	if lookback/p.stp > 11_000 {
		return p, badParam("lookback", "%d ms at step %d ms is more than 11000 points", lookback, p.stp)
	}
	p.end = p.end / p.stp * p.stp
	p.start = p.end - lookback/p.stp*p.stp
	return p, nil
}

// metrics serves one of latencies, calls and errors.
func (a *API) metrics(which string) http.HandlerFunc {
	timer := a.opts.Registry.Timer("sextant.traces.queryLatency", "api", "metrics")
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { timer.Record(time.Since(start)) }()
		if a.opts.SpanMetrics == nil {
			a.fail(w, r, errMetricsDisabled)
			return
		}
		p, err := a.parseMetricsParams(r.URL.Query(), which)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		keys := "(,service.name,)"
		groups := "service"
		if p.groupByOp {
			keys, groups = "(,service.name,operation,)", "service & operation"
		}
		filter := "service.name,(," + aslList(p.services) + ",),:in,span.kind,(," + aslList(p.spanKinds) + ",),:in,:and"
		var expr, name, help string
		switch which {
		case "calls":
			expr = "name,span.calls,:eq," + filter + ",:and," + keys + ",:by"
			name, help = "service_call_rate", "calls/sec, grouped by "+groups
		case "errors":
			expr = "name,span.errors,:eq," + filter + ",:and," + keys + ",:by," +
				"name,span.calls,:eq," + filter + ",:and," + keys + ",:by,:div"
			name, help = "service_error_rate", "error rate, computed as a fraction of errors/sec over calls/sec, grouped by "+groups
		case "latencies":
			pct := strconv.FormatFloat(p.quantile*100, 'f', -1, 64)
			expr = "name,span.duration,:eq," + filter + ",:and," + keys + ",:by,(," + pct + ",),:percentiles,1000,:mul"
			name, help = "service_latencies", fmt.Sprintf("%gth quantile latency, grouped by %s", p.quantile, groups)
		}
		lines, err := a.opts.SpanMetrics(ctx, expr, p.start, p.end, p.stp)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, metricFamily(name, help, lines, p.groupByOp))
	}
}

type jMetricFamily struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Help    string    `json:"help"`
	Metrics []jMetric `json:"metrics"`
}

type jMetric struct {
	Labels       []jLabel       `json:"labels"`
	MetricPoints []jMetricPoint `json:"metricPoints"`
}

type jLabel struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type jMetricPoint struct {
	GaugeValue struct {
		DoubleValue float64 `json:"doubleValue"`
	} `json:"gaugeValue"`
	Timestamp string `json:"timestamp"`
}

// metricFamily renders lines as Jaeger's MetricFamily; NaN points are left
// out, as Jaeger's Prometheus reader leaves out missing samples.
func metricFamily(name, help string, lines []MetricLine, byOp bool) jMetricFamily {
	f := jMetricFamily{Name: name, Type: "GAUGE", Help: help, Metrics: []jMetric{}}
	for _, l := range lines {
		m := jMetric{Labels: []jLabel{{"service_name", l.Tags["service.name"]}}, MetricPoints: []jMetricPoint{}}
		if byOp {
			m.Labels = append(m.Labels, jLabel{"operation", l.Tags["operation"]})
		}
		for i, v := range l.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			var pt jMetricPoint
			pt.GaugeValue.DoubleValue = v
			// The value of a step is stamped at the step's end, as the
			// Prometheus reader stamps a rate over the window ending there.
			pt.Timestamp = time.UnixMilli(l.Start + int64(i+1)*l.Step).UTC().Format(time.RFC3339Nano)
			m.MetricPoints = append(m.MetricPoints, pt)
		}
		f.Metrics = append(f.Metrics, m)
	}
	return f
}

// aslList writes values as stack-language list elements, escaping what
// the tokenizer would otherwise split or read as a word.
func aslList(vals []string) string {
	out := make([]string, len(vals))
	for i, v := range vals {
		var b strings.Builder
		for j, r := range v {
			switch {
			case r == ',' || r == '(' || r == ')' || r == '\\' || r == ' ' || (r == ':' && j == 0):
				fmt.Fprintf(&b, "\\u%04x", r)
			default:
				b.WriteRune(r)
			}
		}
		out[i] = b.String()
	}
	return strings.Join(out, ",")
}
