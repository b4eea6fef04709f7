package canary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Defaults of a judgement, after Kayenta's.
const (
	DefaultSignificance = 0.05
	DefaultAllowed      = 0.2 // a metric may move 20% before the move counts
	DefaultPass         = 75.0
	DefaultMarginal     = 50.0
	DefaultMinCount     = 3
)

// Directions of a metric: the direction in which a move is harmful.
const (
	Increase = "increase" // higher is worse (latency, errors)
	Decrease = "decrease" // lower is worse (throughput, successes)
	Either   = "either"   // any move is harmful
)

// Classifications of a metric and results of a judgement.
const (
	Pass     = "pass"
	High     = "high"
	Low      = "low"
	NoData   = "nodata"
	Marginal = "marginal"
	Fail     = "fail"
)

// Request is the body of POST /api/v1/canary/judge (api.md "Canary
// judgement"). Times take the graph API's forms; durations its duration
// forms.
type Request struct {
	// Baseline and Canary are tag queries (e.g. nf.cluster,api-v1,:eq)
	// ANDed into every data expression of each metric.
	Baseline string `json:"baseline"`
	Canary   string `json:"canary"`
	// S and E bound the window; defaults e-3h and now.
	S string `json:"s,omitempty"`
	E string `json:"e,omitempty"`
	// TZ is the zone of absolute times without an offset; default UTC.
	TZ string `json:"tz,omitempty"`
	// Step of the samples; default the storage step.
	Step    string   `json:"step,omitempty"`
	Metrics []Metric `json:"metrics"`
	// Thresholds of the score, 0-100.
	Thresholds Thresholds `json:"thresholds,omitzero"`
	// MinCount is the fewest values each side needs, else nodata;
	// default 3.
	MinCount int `json:"minCount,omitempty"`
}

// Metric is one metric to compare.
type Metric struct {
	Name string `json:"name"`
	// Q is an ASL expression leaving one time series expression.
	Q string `json:"q"`
	// Direction is increase, decrease or either (the default).
	Direction string `json:"direction,omitempty"`
	// Critical metrics fail the judgement when they fail.
	Critical bool `json:"critical,omitempty"`
	// Weight in the score; default 1.
	Weight *float64 `json:"weight,omitempty"`
	// Significance is the p-value below which a difference counts;
	// default 0.05.
	Significance float64 `json:"significance,omitempty"`
	// AllowedIncrease and AllowedDecrease are the relative moves (0.2 =
	// 20% of the baseline median) within which a significant difference
	// still passes; default 0.2 each.
	AllowedIncrease *float64 `json:"allowedIncrease,omitempty"`
	AllowedDecrease *float64 `json:"allowedDecrease,omitempty"`
}

// Thresholds of the score: pass when score >= Pass, marginal when >=
// Marginal, else fail.
type Thresholds struct {
	Pass     *float64 `json:"pass,omitempty"`
	Marginal *float64 `json:"marginal,omitempty"`
}

// RunRequest is the body of POST /api/v1/canary/runs: a judgement repeated
// every Interval over the growing window [S, now) until Lifetime after S.
// E is ignored.
type RunRequest struct {
	Request
	Interval string `json:"interval"`
	Lifetime string `json:"lifetime"`
	// Webhook, when set, is POSTed the run when it reaches its verdict.
	Webhook string `json:"webhook,omitempty"`
}

// FieldError is a bad field of a request; the HTTP layer answers 400
// naming Field (a JSON path such as metrics[1].q).
type FieldError struct {
	Field string
	Msg   string
	Err   error // the cause, e.g. a *stack.Error; may be nil
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr is a FieldError with a formatted message.
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// DecodeRequest reads a judge request strictly: unknown fields and
// trailing data are errors naming the field. It does not validate; see
// Judge.Compile.
func DecodeRequest(data []byte) (*Request, error) {
	var r Request
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeRunRequest reads a run request strictly, as DecodeRequest.
func DecodeRunRequest(data []byte) (*RunRequest, error) {
	var r RunRequest
	if err := decodeStrict(data, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// decodeStrict decodes one JSON object into v and turns the decoder's
// errors into FieldErrors: a wrong type names the field's JSON path and
// the type it wants, an unknown field names that field. A canary gate in
// a deploy pipeline is written once and rarely read again, so a misspelt
// "treshold" must fail loudly rather than be silently ignored.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return fieldErr("body", "unexpected data after the JSON object")
		}
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		f := te.Field
		if f == "" {
			f = "body"
		}
		return &FieldError{Field: f, Msg: fmt.Sprintf("want a JSON %s, found %s", jsonType(te.Type.Kind().String()), te.Value), Err: err}
	case errors.As(err, &se):
		return &FieldError{Field: "body", Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err), Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if uq, err := strconv.Unquote(f); err == nil && uq != "" {
			f = uq
		}
		return &FieldError{Field: f, Msg: "unknown field", Err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Field: "body", Msg: "empty or truncated JSON", Err: err}
	}
	return &FieldError{Field: "body", Msg: err.Error(), Err: err}
}

// jsonType names a Go kind the way a JSON user knows it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "float64", "int", "int64":
		return "number"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	case "struct", "map":
		return "object"
	}
	return kind
}

// plan is a compiled request: queries parsed, defaults resolved.
type plan struct {
	start, end, step int64 // ms; [start, end) before alignment
	minCount         int
	pass, marginal   float64
	metrics          []metricPlan
}

// metricPlan is one metric ready to evaluate.
type metricPlan struct {
	Metric
	weight           float64
	sig              float64
	allowUp, allowDn float64
	base, can        expr.TimeSeriesExpr
}

// compile validates r and parses everything it holds. now and storageStep
// are ms; maxPoints bounds the samples per side, maxMetrics the metrics.
func compile(r *Request, now, storageStep int64, maxPoints, maxMetrics int) (*plan, error) {
	p := &plan{minCount: DefaultMinCount, pass: DefaultPass, marginal: DefaultMarginal}
	baseQ, err := parseTagQuery("baseline", r.Baseline)
	if err != nil {
		return nil, err
	}
	canQ, err := parseTagQuery("canary", r.Canary)
	if err != nil {
		return nil, err
	}
	tz := r.TZ
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fieldErr("tz", "unknown time zone %q", tz)
	}
	if p.start, p.end, err = resolveRange(r.S, r.E, loc, now); err != nil {
		return nil, err
	}
	p.step = storageStep
	if r.Step != "" {
		st, err := expr.ParseDuration(r.Step)
		if err != nil || st <= 0 {
			return nil, fieldErr("step", "%q is not a positive duration such as 60s or PT1M", r.Step)
		}
		if st%storageStep != 0 {
			return nil, fieldErr("step", "%s is not a multiple of the storage step %s", r.Step, time.Duration(storageStep)*time.Millisecond)
		}
		p.step = st
	}
	if n := (p.end - p.start) / p.step; n > int64(maxPoints) {
		return nil, fieldErr("step", "the window holds %d steps, limit is %d: use a larger step or a shorter window", n, maxPoints)
	}
	if r.MinCount < 0 || r.MinCount > maxPoints {
		return nil, fieldErr("minCount", "%d is not between 0 and %d", r.MinCount, maxPoints)
	}
	if r.MinCount > 0 {
		p.minCount = r.MinCount
	}
	if err := p.thresholds(r.Thresholds); err != nil {
		return nil, err
	}
	switch {
	case len(r.Metrics) == 0:
		return nil, fieldErr("metrics", "no metrics; give at least one {\"name\",\"q\"}")
	case len(r.Metrics) > maxMetrics:
		return nil, fieldErr("metrics", "%d metrics, limit is %d", len(r.Metrics), maxMetrics)
	}
	seen := map[string]bool{}
	total := 0.0
	for i, m := range r.Metrics {
		mp, err := compileMetric(i, m, baseQ, canQ, tz)
		if err != nil {
			return nil, err
		}
		if seen[m.Name] {
			return nil, fieldErr(fmt.Sprintf("metrics[%d].name", i), "%q appears twice", m.Name)
		}
		seen[m.Name] = true
		total += mp.weight
		p.metrics = append(p.metrics, mp)
	}
	if total <= 0 {
		return nil, fieldErr("metrics", "the weights add up to 0")
	}
	return p, nil
}

// thresholds validates the score thresholds: percentages, with marginal
// at or below pass (a score between them is marginal, below both a fail).
func (p *plan) thresholds(t Thresholds) error {
	if t.Pass != nil {
		if !(*t.Pass >= 0 && *t.Pass <= 100) {
			return fieldErr("thresholds.pass", "%v is not between 0 and 100", *t.Pass)
		}
		p.pass = *t.Pass
	}
	if t.Marginal != nil {
		if !(*t.Marginal >= 0 && *t.Marginal <= 100) {
			return fieldErr("thresholds.marginal", "%v is not between 0 and 100", *t.Marginal)
		}
		p.marginal = *t.Marginal
	}
	if p.marginal > p.pass {
		return fieldErr("thresholds.marginal", "%v is above the pass threshold %v", p.marginal, p.pass)
	}
	return nil
}

// compileMetric validates one metric, parses its expression once and
// and-s the baseline's and the canary's tag query into every query of it,
// so that the two samples come from the same expression over the two
// populations. Every error names the metric's index and field.
func compileMetric(i int, m Metric, baseQ, canQ *tags.Query, tz string) (metricPlan, error) {
	f := func(name string) string { return fmt.Sprintf("metrics[%d].%s", i, name) }
	mp := metricPlan{Metric: m, weight: 1, sig: DefaultSignificance, allowUp: DefaultAllowed, allowDn: DefaultAllowed}
	if strings.TrimSpace(m.Name) == "" {
		return mp, fieldErr(f("name"), "missing")
	}
	switch m.Direction {
	case "":
		mp.Direction = Either
	case Increase, Decrease, Either:
	default:
		return mp, fieldErr(f("direction"), "%q: use increase, decrease or either", m.Direction)
	}
	if m.Weight != nil {
		if w := *m.Weight; !(w >= 0) || math.IsInf(w, 0) {
			return mp, fieldErr(f("weight"), "%v is not a non-negative number", w)
		}
		mp.weight = *m.Weight
	}
	if m.Significance != 0 {
		if !(m.Significance > 0 && m.Significance < 1) {
			return mp, fieldErr(f("significance"), "%v is not between 0 and 1", m.Significance)
		}
		mp.sig = m.Significance
	}
	for _, a := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"allowedIncrease", m.AllowedIncrease, &mp.allowUp}, {"allowedDecrease", m.AllowedDecrease, &mp.allowDn}} {
		if a.v == nil {
			continue
		}
		if !(*a.v >= 0) || math.IsInf(*a.v, 0) {
			return mp, fieldErr(f(a.name), "%v is not a non-negative fraction such as 0.2", *a.v)
		}
		*a.dst = *a.v
	}
	if strings.TrimSpace(m.Q) == "" {
		return mp, fieldErr(f("q"), "missing; give an expression such as name,latency,:eq,:avg")
	}
	styles, err := query.Parse(m.Q, query.ParseOptions{TZ: tz})
	if err != nil {
		return mp, &FieldError{Field: f("q"), Msg: err.Error(), Err: err}
	}
	if len(styles) != 1 {
		return mp, fieldErr(f("q"), "leaves %d expressions; a metric is one expression", len(styles))
	}
	x := styles[0].Expr
	if len(expr.DataExprs(x)) == 0 {
		return mp, fieldErr(f("q"), "reads no data; the baseline and canary queries could not select anything")
	}
	if mp.base, err = expr.AndQuery(x, baseQ); err != nil {
		return mp, &FieldError{Field: f("q"), Msg: err.Error(), Err: err}
	}
	if mp.can, err = expr.AndQuery(x, canQ); err != nil {
		return mp, &FieldError{Field: f("q"), Msg: err.Error(), Err: err}
	}
	return mp, nil
}

// parseTagQuery parses the baseline or canary selector, which must be a
// plain tag query (no aggregation): it is and-ed into every metric.
func parseTagQuery(field, s string) (*tags.Query, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fieldErr(field, "missing; give a tag query such as nf.cluster,api-canary,:eq")
	}
	q, err := query.ParseQuery(s)
	if err != nil {
		return nil, &FieldError{Field: field, Msg: err.Error(), Err: err}
	}
	return q, nil
}

// resolveRange resolves s and e as the graph API does: e defaults to now
// and s to e-3h; either may be relative to the other.
func resolveRange(s, e string, loc *time.Location, now int64) (start, end int64, err error) {
	if s == "" {
		s = "e-3h"
	}
	if e == "" {
		e = "now"
	}
	refs := expr.TimeRefs{}
	startRel := strings.HasPrefix(s, "e-") || strings.HasPrefix(s, "e+") || s == "e"
	endRel := strings.HasPrefix(e, "s-") || strings.HasPrefix(e, "s+") || e == "s"
	parse := func(field, v string) (int64, error) {
		t, err := expr.ParseTime(v, loc, now, refs)
		if err != nil {
			return 0, &FieldError{Field: field, Msg: err.Error(), Err: err}
		}
		return t, nil
	}
	switch {
	case startRel && endRel:
		return 0, 0, fieldErr("s", "start %q and end %q are relative to each other", s, e)
	case startRel:
		if end, err = parse("e", e); err != nil {
			return 0, 0, err
		}
		refs["e"] = end
		if start, err = parse("s", s); err != nil {
			return 0, 0, err
		}
	default:
		if start, err = parse("s", s); err != nil {
			return 0, 0, err
		}
		refs["s"] = start
		if end, err = parse("e", e); err != nil {
			return 0, 0, err
		}
	}
	if start >= end {
		return 0, 0, fieldErr("s", "start %s is not before end %s", fmtMs(start), fmtMs(end))
	}
	return start, end, nil
}

// window is the evaluation range of [start, end) at step: points end each
// step interval, as in the graph API.
func window(start, end, step int64) eval.Range {
	fs, fe := floorTo(start, step), floorTo(end, step)
	if fs == fe {
		fs -= step
	}
	return eval.Range{Start: fs + step, End: fe + step, Step: step}
}

// floorTo rounds a time down to a step boundary, also for times before the
// epoch (Go's % keeps the dividend's sign).
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// fmtMs formats Unix ms as RFC 3339 in UTC, for messages and records.
func fmtMs(t int64) string { return time.UnixMilli(t).UTC().Format(time.RFC3339) }

// validateRun checks the fields a run adds and returns the interval,
// lifetime and webhook.
func validateRun(r *RunRequest, step int64, minCount int) (interval, lifetime int64, err error) {
	if r.Interval == "" {
		return 0, 0, fieldErr("interval", "missing; give a duration such as 5m")
	}
	if interval, err = expr.ParseDuration(r.Interval); err != nil || interval <= 0 {
		return 0, 0, fieldErr("interval", "%q is not a positive duration such as 5m", r.Interval)
	}
	if need := int64(minCount) * step; interval < need {
		return 0, 0, fieldErr("interval", "%s holds fewer than minCount=%d steps of %s", r.Interval, minCount, time.Duration(step)*time.Millisecond)
	}
	if r.Lifetime == "" {
		return 0, 0, fieldErr("lifetime", "missing; give a duration such as 1h")
	}
	if lifetime, err = expr.ParseDuration(r.Lifetime); err != nil || lifetime <= 0 {
		return 0, 0, fieldErr("lifetime", "%q is not a positive duration such as 1h", r.Lifetime)
	}
	if lifetime < interval {
		return 0, 0, fieldErr("lifetime", "%s is shorter than the interval %s", r.Lifetime, r.Interval)
	}
	if r.Webhook != "" {
		u, err := url.Parse(r.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 0, 0, fieldErr("webhook", "%q is not an absolute http(s) URL", r.Webhook)
		}
	}
	return interval, lifetime, nil
}
