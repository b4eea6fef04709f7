package expr

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// MathVocabulary combines and transforms time series.
var MathVocabulary = &stack.Vocabulary{Name: "math", Deps: []*stack.Vocabulary{DataVocabulary}, Words: mathWords()}

// TimeModes are the fields :time accepts.
var TimeModes = []string{
	"secondOfMinute", "secondOfDay", "minuteOfHour", "minuteOfDay", "hourOfDay",
	"dayOfWeek", "dayOfMonth", "dayOfYear", "monthOfYear", "yearOfCentury", "yearOfEra",
	// The first sixteen are Atlas's own names (the error lists them);
	// the ChronoField spellings below are what Atlas also accepts,
	// since it hands the mode to java.time.
	"seconds", "minutes", "hours", "days", "weeks",
	// java.time.temporal.ChronoField names
	"SECOND_OF_MINUTE", "SECOND_OF_DAY", "MINUTE_OF_HOUR", "MINUTE_OF_DAY", "HOUR_OF_DAY",
	"HOUR_OF_AMPM", "AMPM_OF_DAY", "DAY_OF_WEEK", "DAY_OF_MONTH", "DAY_OF_YEAR",
	"MONTH_OF_YEAR", "YEAR", "YEAR_OF_ERA", "ALIGNED_WEEK_OF_YEAR", "EPOCH_DAY",
	"INSTANT_SECONDS", "MILLI_OF_SECOND", "MINUTE_OF_DAY", "PROLEPTIC_MONTH",
}

// tsOrStyle is an input that may carry a presentation: the word
// rewrites the expression inside and keeps the style (applyTS).
var (
	tsOrStyle = param("", PresentT)
	expr1     = params(tsOrStyle)
)

// mathWords builds the math vocabulary (asl.md §2.5). The order of the
// list is the order of the reference docs; a word's examples are run by
// the examples test, and those marked ERROR: must fail.
func mathWords() []*stack.Word {
	words := []*stack.Word{
		{
			Name: "as", In: params(param("", TimeSeriesT), param("original", stack.String), param("replacement", stack.String)),
			Out: "TimeSeriesExpr", Summary: "Rename a tag key in the results (and the grouping).",
			Examples: []string{"name,sps,:eq,(,nf.cluster,),:by,nf.cluster,cluster"},
			Exec: func(c *stack.Context) error {
				to := c.Pop().(string)
				from := c.Pop().(string)
				// :as renames in the results only: the store is still asked for
				// the original key, so grouping by it still works.
				return c.Push(&As{Expr: mustTS(c.Pop()), From: from, To: to})
			},
		},
		groupByWord(),
		{
			Name: "const", In: params(param("v", stack.Double)), Out: "TimeSeriesExpr",
			Summary: "A line with the same value at every step.", Examples: []string{"42", "NaN", "ERROR:abc"},
			Exec: func(c *stack.Context) error {
				// The input type already matched a double: no error to check.
				v, _ := stack.ToDouble(c.Pop())
				return c.Push(&Constant{V: v})
			},
		},
		{
			Name: "pi", Match: anyStack, Out: "TimeSeriesExpr", Summary: "A constant line of π.", Examples: []string{""},
			Exec: func(c *stack.Context) error { return c.Push(&Constant{V: math.Pi}) },
		},
		{
			Name: "random", Match: anyStack, Out: "TimeSeriesExpr",
			Summary:  "Deterministic noise in [0, 1): a hash of each timestamp, handy for sample data.",
			Examples: []string{""},
			Exec:     func(c *stack.Context) error { return c.Push(&Random{}) },
		},
		{
			Name: "srandom", In: params(param("seed", stack.Int)), Out: "TimeSeriesExpr",
			Summary:  "Like :random, varied by a seed so several sample lines differ.",
			Examples: []string{"42", "ERROR:x"},
			Exec: func(c *stack.Context) error {
				n, _ := stack.ToInt(c.Pop())
				return c.Push(&Random{Seeded: true, Seed: int64(n)})
			},
		},
		{
			Name: "time", In: params(param("mode", stack.String)), Out: "TimeSeriesExpr",
			Summary:  "A line of a time field (UTC) at each step: hourOfDay, dayOfWeek, minuteOfDay, seconds since epoch ...",
			Examples: []string{"hourOfDay", "HOUR_OF_DAY", "seconds", "ERROR:fortnight"},
			Exec: func(c *stack.Context) error {
				m := c.Pop().(string)
				if !slices.Contains(TimeModes, m) {
					return fmt.Errorf("unknown time mode %q; use one of %s", m, strings.Join(TimeModes[:16], ", "))
				}
				return c.Push(&Time{Mode: m})
			},
		},
		{
			Name: "time-span", In: params(param("s", stack.String), param("e", stack.String)), Out: "TimeSeriesExpr",
			Summary:  "1 between two times (graph time syntax; gs and ge are the graph's start and end) and 0 elsewhere.",
			Examples: []string{"e-30m,ge", "2014-02-20T13:00,s+30m"},
			Exec: func(c *stack.Context) error {
				e := c.Pop().(string)
				s := c.Pop().(string)
				// The graph's tz (set by the API in the interpreter's variables)
				// resolves the dates; the graph's start and end (gs, ge) are
				// known only at evaluation, so the span is kept as text.
				zone := ""
				if z, ok := c.Vars["tz"].(string); ok {
					zone = z
				}
				return c.Push(&TimeSpan{Start: s, End: e, Zone: zone})
			},
		},
		{
			Name: "cg", In: params(param("", PresentT), param("keys", stack.StringList)), Out: "TimeSeriesExpr",
			Summary:  "Add keys to every group by in the expression (plain aggregates become group bys).",
			Examples: []string{"name,sps,:eq,(,nf.region,)", "name,sps,:eq,(,nf.node,),:by,(,nf.region,)"},
			Exec: func(c *stack.Context) error {
				keys := c.Pop().(stack.List).Strings()
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) { return AddGroupKeys(t, keys) })
			},
		},
		{
			Name: "cq", Match: func(s []any) bool { return len(s) >= 2 && QueryT.Match(s[len(s)-1]) },
			In: params(param("", ExprT), param("q", QueryT)), Out: "TimeSeriesExpr",
			Summary:  "AND a common query into every query of the expression below it (anything else is left alone).",
			Examples: []string{"name,cpu,:eq,:sum,nf.app,www,:eq", "42,nf.app,www,:eq"},
			Exec: func(c *stack.Context) error {
				q := c.Pop().(*tags.Query)
				// A bare query gets the AND directly; an expression has it pushed
				// into each of its data expressions (AndQuery), so the store
				// reads less, as the graph API's cq parameter does.
				switch v := c.Pop().(type) {
				case *tags.Query:
					return c.Push(tags.And(v, q))
				case *Style:
					e, err := AndQuery(v.Expr, q)
					if err != nil {
						return err
					}
					return c.Push(v.withExpr(e))
				case TimeSeriesExpr:
					e, err := AndQuery(v, q)
					if err != nil {
						return err
					}
					return c.Push(e)
				default:
					return c.Push(v) // not an expression: unchanged
				}
			},
		},
		{
			Name: "named-rewrite", In: params(param("original", MacroOriginalT), param("rewritten", TimeSeriesT), param("name", stack.String)),
			Out: "TimeSeriesExpr", Summary: "Internal: show a macro's expansion as the macro.",
			Exec: func(c *stack.Context) error {
				name := c.Pop().(string)
				ev := mustTS(c.Pop())
				orig := c.Pop()
				if _, ok := orig.(*tags.Query); !ok {
					orig = mustTS(orig)
				}
				return c.Push(&Rewrite{Name: name, Display: orig, Eval: ev})
			},
		},
		clamp(OpClampMin, "Raise values below a minimum to the minimum."),
		clamp(OpClampMax, "Lower values above a maximum to the maximum."),
		unary(OpAbs, "Absolute value of each datapoint."),
		unary(OpNeg, "Negate each datapoint."),
		unary(OpSqrt, "Square root of each datapoint."),
		unary(OpSin, "Sine of each datapoint (radians)."),
		unary(OpPerStep, "Turn a rate per second into an amount per step (multiply by the step in seconds)."),
		// The other trigonometric words are macros over :sin, as in Atlas:
		// cos x = sin(x + π/2), and the rest are ratios of the two.
		trig("cos", "Cosine of each datapoint (radians).", ":dup,:pi,2,:fdiv,:fadd,:sin"),
		trig("tan", "Tangent of each datapoint (radians).", ":dup,:dup,:sin,:swap,:cos,:fdiv"),
		trig("cot", "Cotangent of each datapoint (radians).", ":dup,:dup,:cos,:swap,:sin,:fdiv"),
		trig("sec", "Secant of each datapoint (radians).", ":dup,1,:swap,:cos,:fdiv"),
		trig("csc", "Cosecant of each datapoint (radians).", ":dup,1,:swap,:sin,:fdiv"),
	}
	for _, b := range binaryOps {
		words = append(words, binaryWord(b.op, b.summary))
	}
	words = append(words,
		aggWord(Sum, "Sum of the lines of an expression (for a query use data :sum)."),
		aggWord(Count, "Number of lines of an expression with a value at each step."),
		aggWord(Min, "Minimum of the lines of an expression."),
		aggWord(Max, "Maximum of the lines of an expression."),
		percentilesWord(),
		sampleCountWord(),
		&stack.Word{
			Name: "sample-count", In: params(param("", DataT)), Out: "TimeSeriesExpr",
			Summary:  "Rate of all samples of a percentile timer or distribution summary.",
			Examples: []string{"name,requestLatency,:eq"},
			// The one-argument form is the whole range of buckets.
			Body: []string{"0", "Infinity", ":sample-count"},
		},
		approxDistinctWord(),
		macro("avg", "Average of the lines: per step, the sum divided by the count of lines with a value.",
			[]string{"name,sps,:eq,(,nf.cluster,),:by", "name,sps,:eq", "name,sps,:eq,1h,:offset"},
			// :avg is sum over count (asl.md §2.5), so a line without a value
			// at a step does not pull the average toward 0.
			":dup,:dup,:sum,:swap,:count,:div,avg,:named-rewrite"),
		macro("stddev", "Population standard deviation across the lines at each step.",
			[]string{"name,sps,:eq,(,nf.cluster,),:by"},
			// sqrt((n·Σx² − (Σx)²) / n²) over the lines at each step, n the
			// number of lines with a value.
			":dup,0,:fadd,:dup,:count,:over,:dup,:mul,:sum,:mul,:over,:sum,:dup,:mul,:sub,:swap,:count,:dup,:mul,:div,:sqrt,stddev,:named-rewrite"),
		macro("pct", "Each line as a percentage of the sum of the lines.",
			[]string{"name,sps,:eq,(,nf.cluster,),:by"},
			":dup,:dup,:sum,:div,100,:mul,pct,:named-rewrite"),
		// The dist-* macros read the statistic tags the client library
		// publishes (count, totalTime or totalAmount, totalOfSquares,
		// max) and :cq the original query into each part.
		macro("dist-avg", "Average of a timer or distribution summary: total time or amount over count.",
			[]string{"name,playback.startLatency,:eq"},
			":dup,statistic,(,totalTime,totalAmount,),:in,:sum,statistic,count,:eq,:sum,:div,:swap,:cq,dist-avg,:named-rewrite"),
		macro("dist-max", "Maximum of a timer or distribution summary.",
			[]string{"name,playback.startLatency,:eq"},
			":dup,statistic,max,:eq,:max,:swap,:cq,dist-max,:named-rewrite"),
		macro("dist-stddev", "Standard deviation of a timer or distribution summary from count, total and total of squares.",
			[]string{"name,playback.startLatency,:eq"},
			":dup,statistic,count,:eq,:sum,statistic,totalOfSquares,:eq,:sum,:mul,statistic,(,totalAmount,totalTime,),:in,:sum,:dup,:mul,:sub,statistic,count,:eq,:sum,:dup,:mul,:div,:sqrt,:swap,:cq,dist-stddev,:named-rewrite"),
		macro("median", "Estimated median of a percentile timer or distribution summary.",
			[]string{"name,requestLatency,:eq"}, "(,50,),:percentiles"),
	)
	return words
}

// MacroOriginalT accepts what :named-rewrite keeps as a macro's original:
// a query (kept as written, for display) or a time series.
var MacroOriginalT = stack.Type{Name: "Expr", Match: func(v any) bool {
	if _, ok := v.(*tags.Query); ok {
		return true
	}
	_, ok := AsTimeSeries(v)
	return ok
}}

// macro defines a word by its body in the language itself, as Atlas
// defines :avg or :dist-max: the body runs with the word's input on the
// stack, so a macro needs no evaluator support of its own.
func macro(name, summary string, examples []string, body string) *stack.Word {
	return &stack.Word{
		Name: name, In: params(param("", TimeSeriesT)), Out: "TimeSeriesExpr", Summary: summary,
		Examples: examples, Body: strings.Split(body, ","),
	}
}

// trig defines a trigonometric word as a macro over :sin whose result is
// wrapped in :named-rewrite, so that it displays as itself (x,:cos) and
// not as the arithmetic it expands to.
func trig(name, summary, body string) *stack.Word {
	return &stack.Word{
		Name: name, In: params(param("", TimeSeriesT)), Out: "TimeSeriesExpr", Summary: summary,
		Examples: []string{"0", "1", "minuteOfDay,:time"},
		Body:     strings.Split(body+","+name+",:named-rewrite", ","),
	}
}

// UnaryFunc returns the pointwise function of a Unary op; per-step and
// the clamps need more than the value and return nil.
func UnaryFunc(op UnaryOp) func(float64) float64 {
	switch op {
	case OpAbs:
		return math.Abs
	case OpNeg:
		return func(v float64) float64 { return -v }
	case OpSqrt:
		return math.Sqrt
	case OpSin:
		return math.Sin
	}
	return nil
}

// unary defines a pointwise word. A constant operand is folded when the
// expression is parsed: 64,:sqrt is the constant 8, not a line computed
// at every step.
func unary(op UnaryOp, summary string) *stack.Word {
	f := UnaryFunc(op)
	return &stack.Word{
		Name: op.String(), In: expr1, Out: "TimeSeriesExpr", Summary: summary,
		Examples: []string{"0", "64", "-64", "name,sps,:eq,:sum"},
		Exec: func(c *stack.Context) error {
			return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
				if k, ok := t.(*Constant); ok && f != nil {
					return &Constant{V: f(k.V)}, nil // folded at parse time
				}
				return &Unary{Op: op, Expr: t}, nil
			})
		},
	}
}

// clamp defines :clamp-min and :clamp-max, which take their bound from
// the stack after the expression.
func clamp(op UnaryOp, summary string) *stack.Word {
	return &stack.Word{
		Name: op.String(), In: params(tsOrStyle, param("v", stack.Double)), Out: "TimeSeriesExpr", Summary: summary,
		Examples: []string{"name,sps,:eq,:sum,200e3", "ERROR:name,sps,:eq,:sum,x"},
		Exec: func(c *stack.Context) error {
			v, _ := stack.ToDouble(c.Pop())
			return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
				return &Unary{Op: op, Expr: t, Arg: v}, nil
			})
		},
	}
}

// binaryOps are the binary words with their summaries, in the order of the
// reference.
var binaryOps = []struct {
	op      BinaryOp
	summary string
}{
	{OpAdd, "a + b, treating NaN as 0 when the other side has a value."},
	{OpSub, "a - b, treating NaN as 0 when the other side has a value."},
	{OpMul, "a * b."},
	{OpDiv, "a / b; 0/0 is 0 and x/0 is NaN (use :fdiv for IEEE division)."},
	{OpPow, "a raised to the power b."},
	{OpGT, "1 where a > b, else 0 (NaN compares false)."},
	{OpGE, "1 where a >= b, else 0."},
	{OpLT, "1 where a < b, else 0."},
	{OpLE, "1 where a <= b, else 0."},
	{OpFAdd, "a + b with IEEE semantics: NaN if either is NaN."},
	{OpFSub, "a - b with IEEE semantics."},
	{OpFMul, "a * b with IEEE semantics."},
	{OpFDiv, "a / b with IEEE semantics: 1/0 is Infinity, 0/0 is NaN."},
	{OpAnd, "1 where both a and b are true (not NaN and not 0), else 0."},
	{OpOr, "1 where a or b is true (not NaN and not 0), else 0."},
}

// BinaryFunc returns the pointwise function of a binary operation.
func BinaryFunc(op BinaryOp) func(a, b float64) float64 {
	switch op {
	case OpAdd:
		return AddNaN
	case OpSub:
		return func(a, b float64) float64 { return AddNaN(a, -b) }
	case OpMul, OpFMul:
		return func(a, b float64) float64 { return a * b }
	// Atlas's :div (asl.md §1.3): 0/0 is 0, so an idle numerator over
	// an idle denominator (an error ratio with no requests) reads 0,
	// not a gap; x/0 is NaN. :fdiv is the IEEE division.
	case OpDiv:
		return func(a, b float64) float64 {
			if b == 0 {
				if a == 0 {
					return 0
				}
				return math.NaN()
			}
			return a / b
		}
	case OpPow:
		return math.Pow
	// Comparisons with NaN are false, hence 0: a gap never triggers.
	case OpGT:
		return func(a, b float64) float64 { return b2f(a > b) }
	case OpGE:
		return func(a, b float64) float64 { return b2f(a >= b) }
	case OpLT:
		return func(a, b float64) float64 { return b2f(a < b) }
	case OpLE:
		return func(a, b float64) float64 { return b2f(a <= b) }
	case OpFAdd:
		return func(a, b float64) float64 { return a + b }
	case OpFSub:
		return func(a, b float64) float64 { return a - b }
	case OpFDiv:
		return func(a, b float64) float64 { return a / b }
	case OpAnd:
		return func(a, b float64) float64 { return b2f(ToBool(a) && ToBool(b)) }
	case OpOr:
		return func(a, b float64) float64 { return b2f(ToBool(a) || ToBool(b)) }
	}
	return nil
}

// AddNaN adds, treating NaN as 0 unless both are NaN.
func AddNaN(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	}
	return a + b
}

// CompareNaNLast orders numbers as Java's Double.compare does, which the
// orderings of Atlas (:sort, :order, :topk and :bottomk) use: NaN after
// everything, +Inf included, and two NaNs equal. Unlike Java it holds -0
// and +0 equal; no statistic tells them apart.
func CompareNaNLast(a, b float64) int {
	switch an, bn := a != a, b != b; {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	return cmp.Compare(a, b)
}

// ToBool is Atlas' truth: not NaN and not (nearly) zero.
// The tolerance absorbs the rounding of a sum that should be 0.
func ToBool(v float64) bool { return !(v != v || math.Abs(v) < 1e-12) }

// b2f is a comparison's result as Atlas gives it: 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// binaryWord defines a binary operator. Either side may carry a
// presentation (a styled line), which the result keeps; two styled sides
// are refused since it is unclear whose style wins. Two constants fold.
func binaryWord(op BinaryOp, summary string) *stack.Word {
	f := BinaryFunc(op)
	return &stack.Word{
		Name: op.String(), Out: "TimeSeriesExpr", Summary: summary,
		In: params(param("a", PresentT), param("b", PresentT)),
		// Match refuses two styled operands before the word runs: a type
		// error of the word, rather than one side's style silently lost.
		Match: func(s []any) bool {
			if len(s) < 2 {
				return false
			}
			a, b := s[len(s)-2], s[len(s)-1]
			_, sa := a.(*Style)
			_, sb := b.(*Style)
			return PresentT.Match(a) && PresentT.Match(b) && !(sa && sb)
		},
		Examples: []string{"name,sps,:eq,42", "name,sps,:eq,:sum,name,requestsPerSecond,:eq,:max,(,name,),:by", "ERROR:name,sps,:eq"},
		Exec: func(c *stack.Context) error {
			bv, av := c.Pop(), c.Pop()
			build := func(a, b TimeSeriesExpr) (TimeSeriesExpr, error) {
				ka, ok1 := a.(*Constant)
				kb, ok2 := b.(*Constant)
				// Two constants fold to one, so 1,2,:add costs nothing
				// per step and prints as 3.0.
				if ok1 && ok2 {
					return &Constant{V: f(ka.V, kb.V)}, nil
				}
				return NewBinary(op, a, b)
			}
			if s, ok := bv.(*Style); ok {
				e, err := build(mustTS(av), s.Expr)
				if err != nil {
					return err
				}
				return c.Push(s.withExpr(e))
			}
			if s, ok := av.(*Style); ok {
				e, err := build(s.Expr, mustTS(bv))
				if err != nil {
					return err
				}
				return c.Push(s.withExpr(e))
			}
			e, err := build(mustTS(av), mustTS(bv))
			if err != nil {
				return err
			}
			return c.Push(e)
		},
	}
}

// aggWord defines :sum, :count, :min and :max. On a query they aggregate
// in the store; on an expression that is already lines they aggregate
// those lines (a MathAgg) at evaluation.
func aggWord(fn AggFn, summary string) *stack.Word {
	return &stack.Word{
		Name: fn.String(), In: params(param("", ExprT)), Out: "TimeSeriesExpr", Summary: summary,
		Examples: []string{"name,sps,:eq,:sum", "name,sps,:eq,:max,(,nf.cluster,),:by"},
		Exec: func(c *stack.Context) error {
			t := c.Pop().(TimeSeriesExpr)
			// On a plain data aggregate the math aggregate changes nothing,
			// except :count, which counts the one line.
			if _, ok := t.(*Aggregate); ok && fn != Count {
				return c.Push(t)
			}
			// A grouped data expression aggregated again (a :by then :max)
			// is a MathAgg over its lines: the store groups, the evaluator
			// takes the max of the groups.
			return c.Push(&MathAgg{Fn: fn, Expr: t})
		},
	}
}

// groupByWord defines :by in the math vocabulary. Atlas gives it two
// meanings: on an ungrouped expression it pushes the keys into every
// aggregate (so (a+b),(,k,),:by groups a and b alike), and on a grouped
// one it is a second aggregation level over a subset of the first keys.
func groupByWord() *stack.Word {
	return &stack.Word{
		Name: "by", In: params(param("", PresentT), param("keys", stack.StringList)), Out: "TimeSeriesExpr",
		Summary: "Group by keys across math: pushed into every aggregate of an ungrouped expression; " +
			"on a grouped one, a second level (implicit :sum) whose keys must be a subset of the first.",
		Examples: []string{"name,sps,:eq,:avg,(,nf.cluster,)", "name,sps,:eq,(,nf.cluster,nf.node,),:by,:max,(,nf.cluster,)",
			"ERROR:name,sps,:eq,(,nf.cluster,),:by,:sum,(,nf.node,)"},
		Exec: func(c *stack.Context) error {
			keys := c.Pop().(stack.List).Strings()
			if len(keys) == 0 {
				return fmt.Errorf("group by needs at least one key")
			}
			return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) {
				// x,(,a,b,),:by,:max,(,a,),:by: the explicit second level.
				if m, ok := t.(*MathAgg); ok && IsGrouped(m.Expr) {
					return NewMathGroupBy(m, keys)
				}
				// A grouped expression with no explicit second aggregate gets a
				// :sum, Atlas's implicit one.
				if IsGrouped(t) {
					return NewMathGroupBy(&MathAgg{Fn: Sum, Expr: t}, keys)
				}
				return ApplyGroupBy(t, keys)
			})
		},
	}
}

// percentileGroup turns a data expression into a sum grouped by key first.
func percentileGroup(word string, d DataExpr, key string) (*GroupBy, error) {
	switch x := d.(type) {
	// Whatever aggregate the user wrote (:max, :avg) is replaced by
	// a sum: bucket counts must be added across series for the
	// estimate, and the bucket key comes first in the grouping.
	case *Aggregate:
		a := *x
		a.Fn, a.CF = Sum, CFDefault
		return &GroupBy{Agg: &a, Keys: []string{key}}, nil
	case *GroupBy:
		a := *x.Agg
		a.Fn, a.CF = Sum, CFDefault
		return &GroupBy{Agg: &a, Keys: append([]string{key}, withoutKey(x.Keys, key)...)}, nil
	}
	return nil, fmt.Errorf(":%s can only be used with :sum and :by, not %s", word, d)
}

// percentilesWord defines :percentiles. The input's aggregation is
// replaced by a sum grouped by the percentile bucket tag first: the
// estimate needs the count in every bucket, summed across series, and
// only then interpolates within the bucket holding each percentile.
func percentilesWord() *stack.Word {
	return &stack.Word{
		Name: "percentiles", In: params(param("", DataT), param("percentiles", stack.DoubleList)), Out: "TimeSeriesExpr",
		Match: func(s []any) bool {
			if len(s) < 2 || !stack.DoubleList.Match(s[len(s)-1]) {
				return false
			}
			d, ok := asData(s[len(s)-2])
			if !ok {
				return false
			}
			_, all := d.(*All)
			return !all
		},
		Summary: "Estimate percentiles of a percentile timer or distribution summary from its bucket counters " +
			"(timers in seconds); one line per percentile, tagged percentile=\" 99.0\". " +
			"Unlike Atlas, where a group has statistic=min and statistic=max series at a step (OTLP histograms write both; " +
			"Spectator timers a max only), each estimate is clamped to that [min, max] (docs/otlp.md).",
		Examples: []string{"name,requestLatency,:eq,(,25,50,90,)", "name,requestLatency,:eq,(,nf.app,),:by,(,99,)",
			"ERROR:name,requestLatency,:eq,(,101,)"},
		Exec: func(c *stack.Context) error {
			l := c.Pop().(stack.List)
			d, _ := asData(c.Pop())
			var pcts []float64
			for _, it := range l {
				p, _ := stack.ToDouble(it)
				if !(p >= 0 && p <= 100) {
					return fmt.Errorf("invalid percentile %s, value must be 0.0 <= p <= 100.0", FormatDouble(p))
				}
				pcts = append(pcts, p)
			}
			if len(pcts) == 0 {
				return fmt.Errorf("no percentiles requested")
			}
			// Sorted and deduplicated: the lines come out in percentile
			// order, and (,99,99,) asks for one line, not two.
			slices.Sort(pcts)
			pcts = slices.Compact(pcts)
			g, err := percentileGroup("percentiles", d, PercentileKey)
			if err != nil {
				return err
			}
			return c.Push(NewPercentiles(g, pcts))
		},
	}
}

// sampleCountWord defines :sample-count, the rate of samples whose bucket
// lies within [min, max]: the share of requests faster than a threshold,
// say, read from the same buckets :percentiles uses.
func sampleCountWord() *stack.Word {
	return &stack.Word{
		Name: "sample-count", In: params(param("", DataT), param("min", stack.Double), param("max", stack.Double)), Out: "TimeSeriesExpr",
		Summary:  "Rate of the samples of a percentile timer or distribution summary between min and max (seconds for timers).",
		Examples: []string{"name,requestLatency,:eq,0.1,0.5", "ERROR:name,requestLatency,:eq,5,1"},
		Exec: func(c *stack.Context) error {
			mx, _ := stack.ToDouble(c.Pop())
			mn, _ := stack.ToDouble(c.Pop())
			d, _ := asData(c.Pop())
			if !(mn <= mx) {
				return fmt.Errorf("sample count range [%s, %s] is empty", FormatDouble(mn), FormatDouble(mx))
			}
			g, err := percentileGroup("sample-count", d, PercentileKey)
			if err != nil {
				return err
			}
			return c.Push(&SampleCount{Expr: g, Min: mn, Max: mx})
		},
	}
}

// approxDistinctWord defines :approx-distinct over HyperLogLog registers
// that a client publishes as one max gauge per register.
func approxDistinctWord() *stack.Word {
	return &stack.Word{
		Name: "approx-distinct", In: params(param("", DataT)), Out: "TimeSeriesExpr",
		Summary:  "Estimate a distinct count from HyperLogLog registers published as max gauges tagged distinct=R<hex index>.",
		Examples: []string{"name,uniqueUsers,:eq", "name,uniqueUsers,:eq,(,nf.app,),:by"},
		Exec: func(c *stack.Context) error {
			d, _ := asData(c.Pop())
			g, err := percentileGroup("approx-distinct", d, DistinctKey)
			if err != nil {
				return err
			}
			// Registers combine by max (a register holds the longest run of
			// leading zeros seen), across series and within a step.
			g.Agg.Fn, g.Agg.CF = Max, CFDefault
			return c.Push(&ApproxDistinct{Expr: g})
		},
	}
}
