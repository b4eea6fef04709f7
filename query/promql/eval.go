package promql

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// value is what an expression evaluates to: scalar, vector or
// stringValue.
type value any

// scalar holds one value per point.
type scalar []float64

// stringValue is a string literal.
type stringValue string

// series is one series of a vector: tags with the store's keys (name,
// not __name__) and one value per point, NaN where absent.
type series struct {
	tags tags.Set
	v    []float64
}

// vector is a list of series. A sorted vector (sort, sort_desc, ...)
// keeps its order in the answer.
type vector []series

// run is the state of one evaluation.
type run struct {
	en      *Engine
	ctx     context.Context
	start   int64 // ms, the first point
	step    int64 // ms between points
	n       int   // points
	instant bool
	// fetched caches selector fetches by expression and storage range.
	fetched map[string][]eval.Series
	stats   eval.Stats
}

// at is the time of point i.
func (x *run) at(i int) int64 { return x.start + int64(i)*x.step }

// eval evaluates one node at every point of the run. The context is
// checked at each node, so a cancelled request stops between steps of a
// large expression rather than only at the next fetch.
func (x *run) eval(e parser.Expr) (value, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, err
	}
	switch n := e.(type) {
	case *parser.ParenExpr:
		return x.eval(n.Expr)
	case *parser.StepInvariantExpr:
		return x.eval(n.Expr)
	case *parser.NumberLiteral:
		return x.constant(n.Val), nil
	case *parser.StringLiteral:
		return stringValue(n.Val), nil
	case *parser.UnaryExpr:
		return x.unary(n)
	case *parser.VectorSelector:
		return x.selector(n)
	case *parser.BinaryExpr:
		return x.binary(n)
	case *parser.AggregateExpr:
		return x.aggregate(n)
	case *parser.Call:
		return x.call(n)
	case *parser.MatrixSelector:
		return nil, badData("a range vector (%s) can only be the argument of a function such as rate", n)
	}
	return nil, badData("unsupported expression %s", e)
}

// constant is a number literal as a scalar: the same value at every point.
func (x *run) constant(v float64) scalar {
	s := make(scalar, x.n)
	for i := range s {
		s[i] = v
	}
	return s
}

// unary is unary minus (unary plus changes nothing); on a vector it drops
// the name, as arithmetic does in Prometheus.
func (x *run) unary(u *parser.UnaryExpr) (value, error) {
	v, err := x.eval(u.Expr)
	if err != nil || u.Op != parser.SUB {
		return v, err
	}
	switch v := v.(type) {
	case scalar:
		out := make(scalar, len(v))
		for i, f := range v {
			out[i] = -f
		}
		return out, nil
	case vector:
		out := make(vector, len(v))
		for i, s := range v {
			vals := make([]float64, len(s.v))
			for j, f := range s.v {
				vals[j] = -f
			}
			out[i] = series{tags: dropName(s.tags), v: vals}
		}
		return out, nil
	}
	return v, nil
}

// storageRange is the storage steps a selector with offset off and a
// window of w steps needs for the points: [Start, End) at the storage
// step. Reading more than MaxStorageSteps is an execution error.
func (x *run) storageRange(off int64, w int) (eval.Range, error) {
	s := x.en.opts.StorageStep
	first := floorTo(x.at(0)-off, s)
	last := floorTo(x.at(x.n-1)-off, s)
	r := eval.Range{Start: first - int64(w-1)*s, End: last + s, Step: s}
	if n := r.N(); n > MaxStorageSteps || n < 0 {
		return r, &Error{Type: Execution, Msg: fmt.Sprintf("query reads %d storage steps per series, limit is %d: shorten the range or the window", n, MaxStorageSteps)}
	}
	return r, nil
}

// MaxStorageSteps bounds the storage steps one selector reads per series
// (the points' span plus a range selector's window): about two years at
// 60 s.
const MaxStorageSteps = 1_000_000

// index returns the position in a fetch over r of the storage step point
// i reads.
func (x *run) index(r eval.Range, off int64, i int) int {
	return int((floorTo(x.at(i)-off, r.Step) - r.Start) / r.Step)
}

// fetch evaluates a data expression over r through query/eval, once per
// evaluation.
func (x *run) fetch(d expr.TimeSeriesExpr, r eval.Range) ([]eval.Series, error) {
	key := d.String() + "@" + itoa(r.Start) + ":" + itoa(r.End)
	if s, ok := x.fetched[key]; ok {
		return s, nil
	}
	got, st, err := x.en.ev.Eval(x.ctx, d, r)
	if err != nil {
		return nil, err
	}
	x.stats.Fetches += st.Fetches
	x.stats.SeriesScanned += st.SeriesScanned
	x.stats.DatapointsScanned += st.DatapointsScanned
	x.stats.InputLines += st.InputLines
	x.stats.FetchTime += st.FetchTime
	x.fetched[key] = got
	return got, nil
}

// selector evaluates an instant selector: every matching series' storage
// step ending at or before each point.
func (x *run) selector(vs *parser.VectorSelector) (vector, error) {
	q, err := matchersQuery(vs.LabelMatchers)
	if err != nil {
		return nil, err
	}
	off := vs.OriginalOffset.Milliseconds()
	r, err := x.storageRange(off, 1)
	if err != nil {
		return nil, err
	}
	got, err := x.fetch(&expr.All{Query: q}, r)
	if err != nil {
		return nil, err
	}
	return x.sample(got, r, off), nil
}

// sample picks each point's storage step out of fetched lines. The
// values of the returned series may alias the fetched lines: callers
// never modify a series' values in place.
func (x *run) sample(got []eval.Series, r eval.Range, off int64) vector {
	out := make(vector, 0, len(got))
	i0 := x.index(r, off, 0)
	for _, s := range got {
		if x.step == r.Step {
			// Fast path: one point per storage step, as a panel at the
			// storage step asks; point i reads step i0+i.
			out = append(out, series{tags: s.Tags, v: s.Values[i0 : i0+x.n : i0+x.n]})
			continue
		}
		vals := make([]float64, x.n)
		for i := range vals {
			vals[i] = s.Values[x.index(r, off, i)]
		}
		out = append(out, series{tags: s.Tags, v: vals})
	}
	return out
}

// window is the storage steps of one series a range selector sees at one
// point, oldest first: vals[k] ends at start + k*step.
type window struct {
	vals        []float64
	start, step int64
	gauge       bool
}

// time is the end of step k of the window.
func (w window) time(k int) int64 { return w.start + int64(k)*w.step }

// rangeVectors fetches x[r] and calls fn for every series and point with
// the window of storage steps ending in (T-r, T]; fn's results make the
// returned vector. The window's slices are only valid during the call.
func (x *run) rangeVectors(ms *parser.MatrixSelector, fn func(s eval.Series, i int, w window) float64) (vector, error) {
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	if !ok {
		return nil, badData("unsupported range expression %s", ms)
	}
	q, err := matchersQuery(vs.LabelMatchers)
	if err != nil {
		return nil, err
	}
	off := vs.OriginalOffset.Milliseconds()
	w, err := x.windowSteps(ms.Range.Milliseconds())
	if err != nil {
		return nil, err
	}
	r, err := x.storageRange(off, w)
	if err != nil {
		return nil, err
	}
	got, err := x.fetch(&expr.All{Query: q}, r)
	if err != nil {
		return nil, err
	}
	out := make(vector, 0, len(got))
	for _, s := range got {
		vals := make([]float64, x.n)
		gauge := isGauge(s.Tags)
		for i := range vals {
			end := x.index(r, off, i)
			first := end - w + 1
			vals[i] = fn(s, i, window{vals: s.Values[first : end+1], start: r.Start + int64(first)*r.Step, step: r.Step, gauge: gauge})
		}
		out = append(out, series{tags: s.Tags, v: vals})
	}
	return out, nil
}

// windowSteps is the number of storage steps ending in (T-r, T]: at least
// one.
func (x *run) windowSteps(r int64) (int, error) {
	s := x.en.opts.StorageStep
	w := max(1, (r+s-1)/s)
	if w > MaxStorageSteps {
		return 0, &Error{Type: Execution, Msg: fmt.Sprintf("a range of %d storage steps is longer than the limit of %d", w, MaxStorageSteps)}
	}
	return int(w), nil
}

// rangeSelector answers a range selector asked at one instant: the stored
// steps of each series in the window, as a matrix.
func (x *run) rangeSelector(ms *parser.MatrixSelector, res *Result) error {
	res.Type = TypeMatrix
	_, err := x.rangeVectors(ms, func(s eval.Series, _ int, w window) float64 {
		var vals []float64
		var ts []int64
		for k, v := range w.vals {
			if !math.IsNaN(v) {
				vals, ts = append(vals, v), append(ts, w.time(k))
			}
		}
		if len(vals) > 0 {
			res.Series = append(res.Series, Series{Tags: promTags(s.Tags), Values: vals})
			res.Times = append(res.Times, ts)
		}
		return math.NaN()
	})
	return err
}

// isGauge reports whether a series is a gauge (its values are levels) as
// opposed to a counter stored as a per-second rate. rate() and increase()
// need to know: over a rate they average it, over a gauge (a cumulative
// count that remote write sent as a gauge) they take the increase between
// its values with resets counted, as Prometheus does.
func isGauge(ts tags.Set) bool {
	v, _ := ts.Get("atlas.dstype")
	return v == "gauge" || v == "min-gauge" // min gauges: an OTLP histogram's min
}

// matchersQuery turns label matchers into a tag query with Prometheus's
// rules: regexes are anchored at both ends, and a matcher that matches
// the empty string also matches series without the tag.
func matchersQuery(ms []*labels.Matcher) (*tags.Query, error) {
	q := tags.True()
	for _, m := range ms {
		mq, err := matcherQuery(m)
		if err != nil {
			return nil, err
		}
		q = tags.And(q, mq)
	}
	return q, nil
}

// sortSeries orders series by their tags, as Prometheus orders results.
func sortSeries(ss []Series) {
	slices.SortFunc(ss, func(a, b Series) int { return compareTags(a.Tags, b.Tags) })
}

// compareTags orders canonical tag sets key by key, then value by value,
// shorter first on a common prefix: the order of Prometheus's label sets.
func compareTags(a, b tags.Set) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Key, b[i].Key); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// dropName returns ts without the name tag.
func dropName(ts tags.Set) tags.Set {
	return without(ts, tags.NameKey)
}

// without returns ts without the given keys; ts itself when it has none.
func without(ts tags.Set, keys ...string) tags.Set {
	has := false
	for _, t := range ts {
		if slices.Contains(keys, t.Key) {
			has = true
			break
		}
	}
	if !has {
		return ts
	}
	out := make(tags.Set, 0, len(ts))
	for _, t := range ts {
		if !slices.Contains(keys, t.Key) {
			out = append(out, t)
		}
	}
	return out
}

// only returns the tags of ts with the given keys.
func only(ts tags.Set, keys []string) tags.Set {
	out := make(tags.Set, 0, len(keys))
	for _, t := range ts {
		if slices.Contains(keys, t.Key) {
			out = append(out, t)
		}
	}
	return out
}

// itoa formats an integer for messages.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
