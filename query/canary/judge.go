package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure a Judge.
type Options struct {
	Querier tsdb.Querier
	// StorageStep is the store's step in ms; sample steps are multiples.
	StorageStep int64
	// MaxPoints bounds the steps of a window; default 10 080 (a week at
	// one minute).
	MaxPoints int
	// MaxMetrics bounds the metrics of a request; default 100.
	MaxMetrics int
	// MaxLines and MaxDatapoints bound each evaluation (query/eval).
	MaxLines, MaxDatapoints int
	// Now is the clock of relative times; default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

// withDefaults fills in the defaults: a week of one-minute points, a
// hundred metrics per request, the system clock.
func (o Options) withDefaults() Options {
	if o.MaxPoints == 0 {
		o.MaxPoints = 10_080
	}
	if o.MaxMetrics == 0 {
		o.MaxMetrics = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Querier == nil:
		return errors.New("canary: no querier")
	case o.StorageStep <= 0:
		return errors.New("canary: storage step must be positive")
	case o.MaxPoints < 0, o.MaxMetrics < 0:
		return errors.New("canary: negative limit")
	}
	return nil
}

// Judge compares canaries with their baselines. It is safe for concurrent
// use.
type Judge struct {
	opts Options
	ev   *eval.Evaluator
	m    struct {
		latency *lib.Timer
	}
}

// New returns a Judge.
func New(opts Options) (*Judge, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	j := &Judge{opts: opts, ev: eval.New(opts.Querier, eval.Options{
		MaxLines: opts.MaxLines, MaxDatapoints: opts.MaxDatapoints,
		Now: func() int64 { return opts.Now().UnixMilli() },
	})}
	j.m.latency = opts.Registry.Timer("sextant.canary.judgeLatency")
	return j, nil
}

// Float is a number that is written to JSON as null when it is NaN or
// infinite (a ratio over a zero median, the statistics of no values).
type Float float64

// MarshalJSON writes f, or null.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	if v == 0 {
		v = 0 // no -0
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Answer is the judgement of a canary (api.md "Canary judgement").
type Answer struct {
	// Score is 100 × the weight of passing metrics / the total weight.
	Score  float64 `json:"score"`
	Result string  `json:"result"` // pass, marginal or fail
	Reason string  `json:"reason"`
	// Start, End and Step are the evaluated range in Unix ms: the values
	// are at Start, Start+Step, ... < End, each ending its step.
	Start   int64          `json:"start"`
	End     int64          `json:"end"`
	Step    int64          `json:"step"`
	Metrics []MetricResult `json:"metrics"`
}

// MetricResult is the judgement of one metric.
type MetricResult struct {
	Name           string  `json:"name"`
	Classification string  `json:"classification"` // pass, high, low or nodata
	PValue         Float   `json:"pValue"`
	Effect         Effect  `json:"effect"`
	Baseline       Sample  `json:"baseline"`
	Canary         Sample  `json:"canary"`
	Reason         string  `json:"reason"`
	Direction      string  `json:"direction"`
	Critical       bool    `json:"critical"`
	Weight         float64 `json:"weight"`
	// Passed reports whether the metric counts as passing in the score (a
	// pass, or a move in its harmless direction).
	Passed bool `json:"passed"`
}

// Effect is the size of the difference.
type Effect struct {
	// Ratio is the canary median / the baseline median.
	Ratio Float `json:"ratio"`
	// HodgesLehmann is the estimated shift canary − baseline.
	HodgesLehmann Float `json:"hodgesLehmann"`
}

// Sample summarizes one side's values.
type Sample struct {
	Count  int   `json:"count"`
	Median Float `json:"median"`
	Mean   Float `json:"mean"`
}

// Judge evaluates req against the store and judges it.
func (j *Judge) Judge(ctx context.Context, req *Request) (*Answer, error) {
	start := time.Now()
	defer func() { j.m.latency.Record(time.Since(start)) }()
	p, err := j.compile(req)
	if err != nil {
		return nil, err
	}
	return j.judge(ctx, p, window(p.start, p.end, p.step))
}

// compile validates req against the judge's limits.
func (j *Judge) compile(req *Request) (*plan, error) {
	return compile(req, j.opts.Now().UnixMilli(), j.opts.StorageStep, j.opts.MaxPoints, j.opts.MaxMetrics)
}

// judge evaluates every metric of p over rng and scores them.
func (j *Judge) judge(ctx context.Context, p *plan, rng eval.Range) (*Answer, error) {
	a := &Answer{Start: rng.Start, End: rng.End, Step: rng.Step, Metrics: make([]MetricResult, 0, len(p.metrics))}
	var base, can, buf []float64
	for i := range p.metrics {
		m := &p.metrics[i]
		var err error
		if base, err = j.sample(ctx, m.base, rng, base[:0]); err != nil {
			return nil, metricErr(i, "baseline", err)
		}
		if can, err = j.sample(ctx, m.can, rng, can[:0]); err != nil {
			return nil, metricErr(i, "canary", err)
		}
		var r MetricResult
		r, buf = classify(m, p.minCount, base, can, buf)
		a.Metrics = append(a.Metrics, r)
	}
	score(a, p)
	return a, nil
}

// sample evaluates x over rng and appends every finite value of every
// line to dst.
func (j *Judge) sample(ctx context.Context, x expr.TimeSeriesExpr, rng eval.Range, dst []float64) ([]float64, error) {
	lines, _, err := j.ev.Eval(ctx, x, rng)
	if err != nil {
		return dst, err
	}
	for _, l := range lines {
		for _, v := range l.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				dst = append(dst, v)
			}
		}
	}
	return dst, nil
}

// MetricError is an evaluation of a metric that failed; it wraps the
// cause (a limit, a closed store, an expression the evaluator refused).
type MetricError struct {
	Field string // metrics[i].q
	Side  string // baseline or canary
	Err   error
}

func (e *MetricError) Error() string {
	return fmt.Sprintf("%s: evaluate with the %s query: %v", e.Field, e.Side, e.Err)
}

// Unwrap returns the cause.
func (e *MetricError) Unwrap() error { return e.Err }

// metricErr wraps an evaluation error with the metric and the side it
// failed on, so the answer names what to fix (or what the store failed).
func metricErr(i int, side string, err error) error {
	return &MetricError{Field: fmt.Sprintf("metrics[%d].q", i), Side: side, Err: err}
}

// classify judges one metric from its two samples. buf is scratch space
// for the Hodges-Lehmann differences, returned grown.
func classify(m *metricPlan, minCount int, base, can, buf []float64) (MetricResult, []float64) {
	r := MetricResult{Name: m.Name, Direction: m.Direction, Critical: m.Critical, Weight: m.weight,
		PValue: Float(math.NaN()), Effect: Effect{Ratio: Float(math.NaN()), HodgesLehmann: Float(math.NaN())}}
	r.Baseline = Sample{Count: len(base), Median: Float(Median(base)), Mean: Float(Mean(base))}
	r.Canary = Sample{Count: len(can), Median: Float(Median(can)), Mean: Float(Mean(can))}
	if len(base) < minCount || len(can) < minCount {
		r.Classification = NoData
		r.Reason = fmt.Sprintf("nodata: the baseline has %d values and the canary %d; each side needs at least %d", len(base), len(can), minCount)
		return r, buf
	}
	mw := MannWhitney(base, can)
	var hl float64
	hl, buf = HodgesLehmann(base, can, buf)
	mb, mc := float64(r.Baseline.Median), float64(r.Canary.Median)
	r.PValue = Float(mw.P)
	r.Effect.HodgesLehmann = Float(hl)
	r.Effect.Ratio = Float(ratio(mc, mb))
	// The relative shift: the Hodges-Lehmann estimate over the baseline
	// median (±Inf over a zero median, 0 when there is no shift).
	rel := 0.0
	if hl != 0 {
		rel = hl / math.Abs(mb)
	}
	method := "normal approximation"
	if mw.Exact {
		method = "exact"
	}
	switch {
	case !(mw.P < m.sig):
		r.Classification = Pass
		r.Reason = fmt.Sprintf("pass: p-value %.3g (Mann-Whitney U %s) is not below the significance %g", mw.P, method, m.sig)
	case rel > m.allowUp:
		r.Classification = High
		r.Reason = fmt.Sprintf("high: p-value %.3g < %g and the canary is %s higher than the baseline, beyond the allowed %s",
			mw.P, m.sig, pct(rel), pct(m.allowUp))
	case rel < -m.allowDn:
		r.Classification = Low
		r.Reason = fmt.Sprintf("low: p-value %.3g < %g and the canary is %s lower than the baseline, beyond the allowed %s",
			mw.P, m.sig, pct(-rel), pct(m.allowDn))
	default:
		r.Classification = Pass
		r.Reason = fmt.Sprintf("pass: p-value %.3g < %g but the shift of %s is within the allowed %s up and %s down",
			mw.P, m.sig, signedPct(rel), pct(m.allowUp), pct(m.allowDn))
	}
	switch {
	case r.Classification == Pass:
		r.Passed = true
	case r.Classification == Low && m.Direction == Increase:
		r.Passed = true
		r.Reason += "; lower is harmless for an increase metric, so it passes"
	case r.Classification == High && m.Direction == Decrease:
		r.Passed = true
		r.Reason += "; higher is harmless for a decrease metric, so it passes"
	}
	return r, buf
}

// score sets the score, result and reason of a from its metrics.
func score(a *Answer, p *plan) {
	total, passed := 0.0, 0.0
	var critical *MetricResult
	for i := range a.Metrics {
		r := &a.Metrics[i]
		total += r.Weight
		if r.Passed {
			passed += r.Weight
		} else if r.Critical && critical == nil {
			critical = r
		}
	}
	a.Score = 100 * passed / total
	// Two decimals are plenty and keep the JSON readable.
	a.Score = math.Round(a.Score*100) / 100
	switch {
	case critical != nil:
		a.Result = Fail
		a.Reason = fmt.Sprintf("fail: critical metric %q is %s (score %g)", critical.Name, critical.Classification, a.Score)
	case a.Score >= p.pass:
		a.Result = Pass
		a.Reason = fmt.Sprintf("pass: score %g is at least the pass threshold %g", a.Score, p.pass)
	case a.Score >= p.marginal:
		a.Result = Marginal
		a.Reason = fmt.Sprintf("marginal: score %g is below the pass threshold %g but at least the marginal threshold %g", a.Score, p.pass, p.marginal)
	default:
		a.Result = Fail
		a.Reason = fmt.Sprintf("fail: score %g is below the marginal threshold %g", a.Score, p.marginal)
	}
}

// ratio is c / b, 1 when both are zero.
func ratio(c, b float64) float64 {
	if c == b {
		return 1
	}
	return c / b
}

// pct formats a ratio as a percentage with two decimals for the verdict's
// reasons; a ratio over a zero baseline is "infinitely".
func pct(f float64) string {
	if math.IsInf(f, 0) {
		return "infinitely"
	}
	return strconv.FormatFloat(100*f, 'f', 2, 64) + "%"
}

// signedPct is pct with an explicit sign, for changes.
func signedPct(f float64) string {
	if f >= 0 {
		return "+" + pct(f)
	}
	return "-" + pct(-f)
}
