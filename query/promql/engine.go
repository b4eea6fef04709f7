package promql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// MaxPoints is the most points a query may ask per series, as Prometheus.
const MaxPoints = 11_000

// NameLabel is Prometheus's name for the name tag.
const NameLabel = "__name__"

// Options configure an Engine.
type Options struct {
	// StorageStep is the store's step in ms. Required.
	StorageStep int64
	// MaxLines and MaxDatapoints bound what one evaluation may hold
	// (defaults in query/eval).
	MaxLines, MaxDatapoints int
	// Now is the clock of the stack language's :time-span; default the
	// system clock.
	Now func() time.Time
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.StorageStep <= 0 {
		return errors.New("promql: storage step must be positive")
	}
	return nil
}

// Engine evaluates PromQL (and the stack language) over a store. It is
// safe for concurrent use.
type Engine struct {
	q      tsdb.Querier
	opts   Options
	ev     *eval.Evaluator
	asl    *query.Engine
	parser parser.Parser
}

// New returns an engine reading from q.
func New(q tsdb.Querier, opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	eo := eval.Options{MaxLines: opts.MaxLines, MaxDatapoints: opts.MaxDatapoints,
		Now: func() int64 { return opts.Now().UnixMilli() }}
	return &Engine{
		q: q, opts: opts, ev: eval.New(q, eo), asl: query.NewEngine(q, eo),
		// Experimental functions parse so that sort_by_label is known; the
		// evaluator refuses every function outside the subset by name.
		// Dotted names (ipc.server.call, nf.app) need no quotes.
		parser: parser.NewParser(parser.Options{EnableExperimentalFunctions: true, EnableUnquotedUTF8Names: true}),
	}, nil
}

// ErrorType is Prometheus's errorType of an API answer.
type ErrorType string

// Error types, with the HTTP status each maps to.
const (
	BadData     ErrorType = "bad_data"    // 400
	Execution   ErrorType = "execution"   // 422
	Timeout     ErrorType = "timeout"     // 503
	Canceled    ErrorType = "canceled"    // 499
	Unavailable ErrorType = "unavailable" // 503
	Internal    ErrorType = "internal"    // 500
)

// Error is an evaluation error with its Prometheus type.
type Error struct {
	Type ErrorType
	Msg  string
	Err  error // the cause, if any
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// badData is a bad_data *Error: the query is the user's to fix.
func badData(format string, args ...any) error {
	return &Error{Type: BadData, Msg: fmt.Sprintf(format, args...)}
}

// Classify wraps err in an *Error with its Prometheus type: limits are
// execution errors, deadlines timeouts, an overloaded store unavailable,
// stack-language and parse errors and the evaluator's *eval.UserError bad
// data; anything else (a store that failed, a bug) is internal.
func Classify(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	var le *tsdb.LimitError
	var ue *eval.UserError
	var se *stack.Error
	typ := Internal
	switch {
	case errors.As(err, &ue), errors.As(err, &se):
		typ = BadData
	case errors.As(err, &le):
		typ = Execution
	case errors.Is(err, context.DeadlineExceeded):
		typ = Timeout
	case errors.Is(err, context.Canceled):
		typ = Canceled
	case errors.Is(err, tsdb.ErrOverloaded), errors.Is(err, tsdb.ErrClosed):
		typ = Unavailable
	case errors.Is(err, tsdb.ErrCorrupt):
		typ = Internal
	}
	return &Error{Type: typ, Msg: err.Error(), Err: err}
}

// ResultType is the resultType of an answer.
type ResultType string

// Result types.
const (
	TypeScalar ResultType = "scalar"
	TypeVector ResultType = "vector"
	TypeMatrix ResultType = "matrix"
	TypeString ResultType = "string"
)

// Series is one series of a result: its tags (with the name tag under
// NameLabel) and its values at the result's points, NaN where absent.
type Series struct {
	Tags   tags.Set
	Values []float64
}

// Result is the outcome of an evaluation: values at points
// Start + i*Step for i < Points (for a range-vector instant query, the
// points are per series in Times).
type Result struct {
	Type   ResultType
	Start  int64 // ms
	Step   int64 // ms
	Points int
	Series []Series  // vector and matrix results
	Scalar []float64 // scalar results, one per point
	String string    // string results
	// Times holds each series' own timestamps for a range selector asked
	// at one instant (Type matrix from an instant query), parallel to
	// Series[i].Values.
	Times [][]int64
	Stats eval.Stats
	// Warnings are shown to the user beside the data.
	Warnings []string
}

// IsASL reports whether q is the stack language rather than PromQL: it
// contains ",:" (a word after a comma), and is not PromQL that holds ",:"
// inside a string.
func (en *Engine) IsASL(q string) bool {
	if !strings.Contains(q, ",:") {
		return false
	}
	_, err := en.parser.ParseExpr(q)
	return err != nil
}

// Parse checks q: PromQL within the subset, or the stack language. Errors
// are bad_data *Error.
func (en *Engine) Parse(q string) error {
	if en.IsASL(q) {
		if _, err := query.Parse(q, query.ParseOptions{}); err != nil {
			return &Error{Type: BadData, Msg: err.Error(), Err: err}
		}
		return nil
	}
	e, err := en.parse(q)
	if err != nil {
		return err
	}
	return check(e)
}

// parse runs Prometheus's parser; its message already points at the
// position in the query, and is passed on under the query parameter's name.
func (en *Engine) parse(q string) (parser.Expr, error) {
	e, err := en.parser.ParseExpr(q)
	if err != nil {
		return nil, &Error{Type: BadData, Msg: "invalid parameter \"query\": " + err.Error(), Err: err}
	}
	return e, nil
}

// Instant evaluates q at t (Unix ms).
func (en *Engine) Instant(ctx context.Context, q string, t int64) (*Result, error) {
	return en.eval(ctx, q, t, t, 0, true)
}

// Range evaluates q at start, start+step, ... up to end (Unix ms).
func (en *Engine) Range(ctx context.Context, q string, start, end, step int64) (*Result, error) {
	switch {
	case step <= 0:
		return nil, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer")
	case end < start:
		return nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	case (end-start)/step+1 > MaxPoints:
		return nil, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	return en.eval(ctx, q, start, end, step, false)
}

// eval is the common path of Instant and Range: stack-language queries go
// to the query package, PromQL is checked against the subset, then
// evaluated at every point at once.
func (en *Engine) eval(ctx context.Context, q string, start, end, step int64, instant bool) (*Result, error) {
	if en.IsASL(q) {
		res, err := en.evalASL(ctx, q, start, end, step, instant)
		if err != nil {
			// As the graph API does: a mistake in the program is bad
			// data; a store that failed is internal, never the user's.
			return nil, Classify(err)
		}
		return res, nil
	}
	e, err := en.parse(q)
	if err != nil {
		return nil, err
	}
	if err := check(e); err != nil {
		return nil, err
	}
	n := 1
	if !instant {
		n = int((end-start)/step) + 1
	} else {
		step = en.opts.StorageStep
	}
	x := &run{en: en, ctx: ctx, start: start, step: step, n: n, instant: instant, fetched: map[string][]eval.Series{}}
	res := &Result{Start: start, Step: step, Points: n}
	if ms, ok := unparen(e).(*parser.MatrixSelector); ok {
		if !instant {
			return nil, badData("invalid expression type \"range vector\" for range query, must be Scalar or instant Vector")
		}
		if err := x.rangeSelector(ms, res); err != nil {
			return nil, Classify(err)
		}
		res.Stats = x.stats
		return res, nil
	}
	v, err := x.eval(e)
	if err != nil {
		return nil, Classify(err)
	}
	res.Stats = x.stats
	switch v := v.(type) {
	case scalar:
		res.Type, res.Scalar = TypeScalar, v
	case vector:
		res.Type = TypeMatrix
		if instant {
			res.Type = TypeVector
		}
		res.Series = make([]Series, 0, len(v))
		for _, s := range v {
			if anyValue(s.v) {
				res.Series = append(res.Series, Series{Tags: promTags(s.tags), Values: s.v})
			}
		}
		if !instant || !keepsOrder(e) {
			sortSeries(res.Series)
		}
	case stringValue:
		if !instant {
			return nil, badData("invalid expression type \"string\" for range query, must be Scalar or instant Vector")
		}
		res.Type, res.String = TypeString, string(v)
	}
	return res, nil
}

// evalASL evaluates a stack-language program: every line becomes a
// series, tagged with its tags. The points are the stack language's: on a
// multiple of the storage step, covering [start, end].
func (en *Engine) evalASL(ctx context.Context, q string, start, end, step int64, instant bool) (*Result, error) {
	styles, err := query.Parse(q, query.ParseOptions{})
	if err != nil {
		return nil, &Error{Type: BadData, Msg: "invalid parameter \"query\": " + err.Error(), Err: err}
	}
	s := en.opts.StorageStep
	if step < s {
		step = s
	}
	step = (step + s - 1) / s * s
	r := eval.Range{Start: ceilTo(start, step), End: floorTo(end, step) + step, Step: step}
	if instant {
		r = eval.Range{Start: floorTo(start, s), End: floorTo(start, s) + s, Step: s}
	}
	if r.End <= r.Start {
		r.Start = r.End - step
	}
	res, err := en.asl.Eval(ctx, styles, r)
	if err != nil {
		return nil, err
	}
	out := &Result{Type: TypeMatrix, Start: r.Start, Step: r.Step, Points: r.N(), Stats: res.Stats}
	if instant {
		out.Type, out.Start, out.Points = TypeVector, start, 1
	}
	for _, l := range res.Lines {
		if anyValue(l.Values) {
			out.Series = append(out.Series, Series{Tags: promTags(l.Tags), Values: l.Values})
		}
	}
	return out, nil
}

// promTags renames the name tag to NameLabel.
func promTags(ts tags.Set) tags.Set {
	for i, t := range ts {
		if t.Key == tags.NameKey {
			out := make(tags.Set, len(ts))
			copy(out, ts)
			out[i].Key = NameLabel
			return out.Normalize()
		}
	}
	return ts
}

// StoreKey maps a Prometheus label name to the store's tag key.
func StoreKey(k string) string {
	if k == NameLabel {
		return tags.NameKey
	}
	return k
}

// PromKey maps a store tag key to its Prometheus label name.
func PromKey(k string) string {
	if k == tags.NameKey {
		return NameLabel
	}
	return k
}

// anyValue reports whether a line has at least one point; a line with none
// is left out of the answer, as Prometheus omits series with no samples.
func anyValue(vs []float64) bool {
	for _, v := range vs {
		if !math.IsNaN(v) {
			return true
		}
	}
	return false
}

// floorTo rounds t down to a multiple of step, also below zero.
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// ceilTo rounds t up to a multiple of step.
func ceilTo(t, step int64) int64 {
	f := floorTo(t, step)
	if f == t {
		return t
	}
	return f + step
}
