package expr

import (
	"math"
	"slices"
	"strconv"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TimeSeriesExpr is an expression that evaluates to a list of time series.
type TimeSeriesExpr interface {
	// String is the expression in canonical stack-language form. Parsing
	// it gives an equal expression, which is what makes it usable as a
	// cache key, a live subscription key and the :list output.
	String() string
	// Grouping returns the keys of the final group by, nil if ungrouped.
	// Binary operations join their sides on these keys.
	Grouping() []string
	isTimeSeries()
}

// DataExpr is the part of an expression the store answers: a query with
// an aggregation, a grouping and an offset.
type DataExpr interface {
	TimeSeriesExpr
	// DataQuery is the tag predicate the store's index resolves.
	DataQuery() *tags.Query
	// DataOffset shifts the data in time (:offset), in milliseconds: the
	// store is asked for [start-offset, end-offset) and the answer is
	// shifted forward, so a week-over-week comparison is two fetches.
	DataOffset() int64
}

// AggFn is an aggregation across time series.
type AggFn uint8

// Aggregation functions.
const (
	Sum AggFn = iota + 1
	Count
	Min
	Max
)

// String is the function's word without the colon, as Atlas names it in
// legends and explain output.
func (f AggFn) String() string {
	switch f {
	case Sum:
		return "sum"
	case Count:
		return "count"
	case Min:
		return "min"
	case Max:
		return "max"
	}
	return "AggFn(" + strconv.Itoa(int(f)) + ")"
}

// CF is a consolidation function: how primary datapoints combine when the
// query step is a multiple of the storage step.
type CF uint8

// Consolidation functions. CFDefault is avg for :sum and :count, min for
// :min and max for :max.
const (
	CFDefault CF = iota
	CFAvg
	CFSum
	CFMin
	CFMax
)

// String is the consolidation's name; an out-of-range value wraps rather
// than panicking, since it is only ever used for display.
func (c CF) String() string {
	return [...]string{"default", "avg", "sum", "min", "max"}[c%5]
}

// Effective resolves CFDefault for an aggregation.
func (c CF) Effective(f AggFn) CF {
	if c != CFDefault {
		return c
	}
	switch f {
	case Min:
		return CFMin
	case Max:
		return CFMax
	}
	return CFAvg
}

// Aggregate is q,:sum (also :count, :min, :max): one line aggregating
// every matching series. A bare query is an implicit :sum.
type Aggregate struct {
	Fn    AggFn
	Query *tags.Query
	// CF combines the storage-step values inside one output step; it is
	// applied per series before the aggregation across series, as Atlas
	// does, so :max over a coarse step is the max of each series' maxima.
	CF     CF
	Offset int64 // ms
}

// GroupBy is af,(,keys,),:by: one line per distinct value tuple of keys,
// series lacking a key dropped.
type GroupBy struct {
	Agg *Aggregate
	// Keys in the order the user gave them; the order decides the legend
	// and the sort of the output lines, not which series match.
	Keys []string
}

// All is q,:all: every matching series, unaggregated.
type All struct {
	Query  *tags.Query
	Offset int64
}

// Constant is a line with one value everywhere.
type Constant struct{ V float64 }

// Random is deterministic noise in [0, 1) from a hash of the timestamp;
// with Seeded set the seed varies the line.
type Random struct {
	Seeded bool
	Seed   int64 // only read when Seeded: :random and 0,:srandom differ
}

// Time is a line of a time field at each timestamp, e.g. hourOfDay.
type Time struct {
	// Mode is the field, one of TimeModes: Atlas's camel-case names
	// (hourOfDay, dayOfWeek, ...) or java.time's ChronoField names
	// (HOUR_OF_DAY, ...), which Atlas also accepts.
	Mode string
}

// TimeSpan is 1 inside [Start, End] and 0 elsewhere; the bounds are in the
// graph time syntax and resolve against the evaluation range.
type TimeSpan struct {
	Start, End string
	Zone       string // IANA zone for dates without an offset; "" is UTC
}

// Unary applies Op to every value: abs, neg, sqrt, sin, per-step,
// clamp-min and clamp-max (with Arg).
type Unary struct {
	Op   UnaryOp
	Expr TimeSeriesExpr
	Arg  float64 // the bound of clamp-min and clamp-max; unused otherwise
}

// Binary combines two expressions point by point: add, sub, mul, div, pow,
// gt, ge, lt, le, fadd, fsub, fmul, fdiv, and, or.
type Binary struct {
	Op BinaryOp
	// L and R are joined line by line on their grouping keys: an
	// ungrouped side is broadcast against every line of the other, and a
	// grouped side matches the lines of the other with the same values of
	// its keys (see Grouping and LHSDrives).
	L, R TimeSeriesExpr
}

// MathAgg aggregates the lines of an expression into one.
type MathAgg struct {
	Fn   AggFn
	Expr TimeSeriesExpr
}

// MathGroupBy aggregates the lines of a grouped expression by a subset of
// its keys.
type MathGroupBy struct {
	Agg  *MathAgg
	Keys []string
}

// Percentiles estimates percentiles from percentile-bucket counters.
// Expr groups by the percentile key (first) and any user keys.
type Percentiles struct {
	Expr *GroupBy
	// Pcts as the user wrote them after sorting and removing duplicates:
	// each becomes one output line per group, labelled with the padding
	// Atlas uses ("  9.0", " 99.0") so that legends sort numerically.
	Pcts []float64 // sorted, unique, each in [0, 100]
	// bounds caches Bounds (NewPercentiles); read only once built.
	bounds *PercentileBounds
}

// SampleCount sums the percentile-bucket rates of a timer or distribution
// summary whose buckets lie within [Min, Max] (in seconds for timers).
type SampleCount struct {
	Expr     *GroupBy // grouped by percentile
	Min, Max float64
}

// ApproxDistinct estimates a distinct count from HyperLogLog registers
// published as max gauges tagged distinct=R<hex index>.
type ApproxDistinct struct {
	Expr       *GroupBy // max, grouped by distinct first
	Cumulative bool     // registers take their running max first
}

// As renames a tag key in the results and the grouping.
type As struct {
	Expr     TimeSeriesExpr
	From, To string
}

// Rewrite is a macro's expansion (Eval) shown as the macro (Display,
// Params and the word Name), e.g. name,sps,:eq,:avg.
type Rewrite struct {
	Name    string
	Display any // *tags.Query or a TimeSeriesExpr
	Params  []string
	Eval    TimeSeriesExpr
}

// Stateful operators. Params by Op:
// delay, rolling-count, rolling-min, rolling-max, rolling-sum: N;
// rolling-mean: N and Min; trend: Window; des, sdes: N (training), Alpha,
// Beta; integral, cumulative-max, derivative: none.
type Stateful struct {
	Op   StatefulOp
	Expr TimeSeriesExpr
	// N is a window or training length in steps, Min the fewest non-NaN
	// values :rolling-mean needs before it answers.
	N, Min int
	// Alpha and Beta are the smoothing factors of Holt's double
	// exponential smoothing (level and trend) for :des and :sdes.
	Alpha, Beta float64
	// Window is :trend's window as a duration; it is turned into steps
	// at evaluation, once the step is known.
	Window int64 // ms
}

// Stat is a line per input line holding a summary statistic of it over
// the evaluation range: avg, max, min, last, total, count.
type Stat struct {
	Expr TimeSeriesExpr
	Stat string // one of avg, max, min, last, total, count
}

// StatRef is :stat-max and friends: inside a :filter condition it stands
// for the statistic of the filtered expression.
type StatRef struct{ Stat string }

// Filter keeps the lines of Expr whose Cond is true at some point.
type Filter struct {
	Expr, Cond TimeSeriesExpr
}

// Priority keeps the K lines with the highest (topk) or lowest (bottomk)
// statistic; with Others set, one more line aggregates the rest.
type Priority struct {
	Expr TimeSeriesExpr
	Stat string // the statistic lines are ranked by, as for Stat
	K    int
	// Bottom ranks the lowest first (:bottomk). The sort is stable, so
	// ties keep the input order (sorted by tags) and the answer does not
	// flicker between calls.
	Bottom bool
	Others string // "", "min", "max", "sum" or "avg"
}

// Consolidate shows Expr at a coarser step.
type Consolidate struct {
	Expr TimeSeriesExpr
	CF   CF
	Step int64 // ms
}

func (*Aggregate) isTimeSeries()      {}
func (*GroupBy) isTimeSeries()        {}
func (*All) isTimeSeries()            {}
func (*Constant) isTimeSeries()       {}
func (*Random) isTimeSeries()         {}
func (*Time) isTimeSeries()           {}
func (*TimeSpan) isTimeSeries()       {}
func (*Unary) isTimeSeries()          {}
func (*Binary) isTimeSeries()         {}
func (*MathAgg) isTimeSeries()        {}
func (*MathGroupBy) isTimeSeries()    {}
func (*Percentiles) isTimeSeries()    {}
func (*SampleCount) isTimeSeries()    {}
func (*ApproxDistinct) isTimeSeries() {}
func (*As) isTimeSeries()             {}
func (*Rewrite) isTimeSeries()        {}
func (*Stateful) isTimeSeries()       {}
func (*Stat) isTimeSeries()           {}
func (*StatRef) isTimeSeries()        {}
func (*Filter) isTimeSeries()         {}
func (*Priority) isTimeSeries()       {}
func (*Consolidate) isTimeSeries()    {}

// DataQuery returns the query. DataOffset the time shift in ms.
func (a *Aggregate) DataQuery() *tags.Query { return a.Query }
func (a *Aggregate) DataOffset() int64      { return a.Offset }
func (g *GroupBy) DataQuery() *tags.Query   { return g.Agg.Query }
func (g *GroupBy) DataOffset() int64        { return g.Agg.Offset }
func (a *All) DataQuery() *tags.Query       { return a.Query }
func (a *All) DataOffset() int64            { return a.Offset }

// Grouping implementations.
func (*Aggregate) Grouping() []string        { return nil }
func (g *GroupBy) Grouping() []string        { return g.Keys }
func (*All) Grouping() []string              { return nil }
func (*Constant) Grouping() []string         { return nil }
func (*Random) Grouping() []string           { return nil }
func (*Time) Grouping() []string             { return nil }
func (*TimeSpan) Grouping() []string         { return nil }
func (u *Unary) Grouping() []string          { return u.Expr.Grouping() }
func (*MathAgg) Grouping() []string          { return nil }
func (g *MathGroupBy) Grouping() []string    { return g.Keys }
func (p *Percentiles) Grouping() []string    { return p.Expr.Keys }
func (s *SampleCount) Grouping() []string    { return userKeys(s.Expr.Keys, PercentileKey) }
func (a *ApproxDistinct) Grouping() []string { return userKeys(a.Expr.Keys, DistinctKey) }
func (r *Rewrite) Grouping() []string        { return r.Eval.Grouping() }
func (s *Stateful) Grouping() []string       { return s.Expr.Grouping() }
func (s *Stat) Grouping() []string           { return s.Expr.Grouping() }
func (*StatRef) Grouping() []string          { return nil }
func (f *Filter) Grouping() []string         { return f.Expr.Grouping() }
func (p *Priority) Grouping() []string       { return p.Expr.Grouping() }
func (c *Consolidate) Grouping() []string    { return c.Expr.Grouping() }

// The methods below close the TimeSeriesExpr and DataExpr interfaces over
// the AST's node types: isTimeSeries marks the nodes, DataQuery and
// DataOffset expose what the store answers, and Grouping says by which keys
// a node's lines are identified. A node that wraps another passes its
// grouping through; an aggregation across lines (MathAgg) or a constant
// has none, and so joins against anything.

// Grouping of a binary operation is the larger side's: when both sides are
// grouped one must be a subset of the other (checked when it is built).
func (b *Binary) Grouping() []string {
	if b.lhsGrouping() {
		return b.L.Grouping()
	}
	return b.R.Grouping()
}

// lhsGrouping reports whether the right side's keys are a subset of the
// left's, so the left side drives the join.
func (b *Binary) lhsGrouping() bool { return subset(b.R.Grouping(), b.L.Grouping()) }

// LHSDrives reports whether the join iterates the left side's lines (and
// keeps their tags); otherwise it iterates the right side's.
func (b *Binary) LHSDrives() bool { return b.lhsGrouping() }

// Grouping of :as renames the key.
func (a *As) Grouping() []string {
	g := a.Expr.Grouping()
	if g == nil {
		return nil
	}
	out := slices.Clone(g)
	for i, k := range out {
		if k == a.From {
			out[i] = a.To
		}
	}
	return out
}

// userKeys is keys without the internal key k, nil if none remain.
func userKeys(keys []string, k string) []string {
	out := withoutKey(keys, k)
	if len(out) == 0 {
		return nil
	}
	return out
}

// subset reports whether every key of a is in b; an empty a is a subset of
// anything, which is how an ungrouped side joins a grouped one.
func subset(a, b []string) bool {
	for _, k := range a {
		if !slices.Contains(b, k) {
			return false
		}
	}
	return true
}

// IsGrouped reports whether e has a final grouping.
func IsGrouped(e TimeSeriesExpr) bool { return e.Grouping() != nil }

// Style is a presentation: an expression with display settings such as
// legend, color or line style. Settings keep the order they were set in.
type Style struct {
	Expr     TimeSeriesExpr
	Settings []Setting
}

// Setting is one presentation key and value.
type Setting struct{ Key, Value string }

// Get returns a setting's value.
func (s *Style) Get(key string) (string, bool) {
	for _, st := range s.Settings {
		if st.Key == key {
			return st.Value, true
		}
	}
	return "", false
}

// with returns a copy with key set to value (replacing an earlier value)
// and the keys in drop removed.
func (s *Style) with(key, value string, drop ...string) *Style {
	out := &Style{Expr: s.Expr, Settings: make([]Setting, 0, len(s.Settings)+1)}
	for _, st := range s.Settings {
		if st.Key != key && !slices.Contains(drop, st.Key) {
			out.Settings = append(out.Settings, st)
		}
	}
	if key != "" {
		out.Settings = append(out.Settings, Setting{key, value})
	}
	return out
}

// withExpr returns a copy around another expression.
func (s *Style) withExpr(e TimeSeriesExpr) *Style {
	return &Style{Expr: e, Settings: s.Settings}
}

// FormatDouble renders v as Java's Double.toString does, which Atlas uses
// for constant names and JSON output: 42.0, 0.1, 1.0E10, NaN, Infinity.
func FormatDouble(v float64) string { return string(AppendDouble(nil, v)) }

// AppendDouble appends FormatDouble(v) to dst without allocating.
func AppendDouble(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(v, -1):
		return append(dst, "-Infinity"...)
	case v == 0:
		if math.Signbit(v) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	a := math.Abs(v)
	if a >= 1e-3 && a < 1e7 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, v, 'f', -1, 64)
		for _, c := range dst[start:] {
			if c == '.' {
				return dst
			}
		}
		return append(dst, ".0"...)
	}
	// Scientific: Java writes 1.0E10 and 1.234E-5.
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], v, 'E', -1, 64)
	e := 0
	for e < len(s) && s[e] != 'E' {
		e++
	}
	mant, exp := s[:e], s[e+1:]
	dst = append(dst, mant...)
	hasDot := false
	for _, c := range mant {
		hasDot = hasDot || c == '.'
	}
	if !hasDot {
		dst = append(dst, ".0"...)
	}
	dst = append(dst, 'E')
	if exp[0] == '-' {
		dst = append(dst, '-')
	}
	exp = exp[1:] // sign
	for len(exp) > 1 && exp[0] == '0' {
		exp = exp[1:]
	}
	return append(dst, exp...)
}
