package expr

import (
	"fmt"

	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// DataVocabulary turns queries into data expressions: aggregates, group
// bys and raw series, with consolidation and time shifts.
var DataVocabulary = &stack.Vocabulary{Name: "data", Deps: []*stack.Vocabulary{QueryVocabulary}, Words: dataWords()}

// dataWords builds the data vocabulary: the words whose result the store
// computes. They only ever wrap a query (or another data expression, for
// :cf-* and :offset), never math, so everything they build can be handed
// to the store as one FetchRequest.
func dataWords() []*stack.Word {
	// agg builds :sum, :count, :min and :max on a query: the store
	// aggregates (tsdb.FetchRequest's Aggregation), and only the result
	// lines leave it.
	agg := func(fn AggFn, summary string) *stack.Word {
		return &stack.Word{
			Name: fn.String(), In: params(param("q", QueryT)), Out: "DataExpr", Summary: summary,
			Examples: []string{"name,sps,:eq", ":true"},
			Exec: func(c *stack.Context) error {
				return c.Push(&Aggregate{Fn: fn, Query: c.Pop().(*tags.Query)})
			},
		}
	}
	// cf builds :cf-avg and friends, which choose how the store combines
	// the storage steps that fall into one graph step (asl.md §1.2). The
	// default (CFDefault) is avg for :sum and :count, min for :min and max
	// for :max; the word rewrites every aggregate below it (WithCF).
	cf := func(cf CF, summary string) *stack.Word {
		return &stack.Word{
			Name: "cf-" + cf.String(), In: params(param("", TimeSeriesT)), Out: "TimeSeriesExpr", Summary: summary,
			Examples: []string{"name,sps,:eq", "name,sps,:eq,:max", "name,sps,:eq,(,nf.app,),:by", "ERROR:"},
			Exec: func(c *stack.Context) error {
				e, err := WithCF(mustTS(c.Pop()), cf)
				if err != nil {
					return err
				}
				return c.Push(e)
			},
		}
	}
	return []*stack.Word{
		{
			Name: "all", In: params(param("q", QueryT)), Out: "DataExpr",
			Summary:  "Every time series matching the query, unaggregated (for debugging).",
			Examples: []string{"name,sps,:eq", "ERROR:42"},
			Exec: func(c *stack.Context) error {
				return c.Push(&All{Query: c.Pop().(*tags.Query)})
			},
		},
		agg(Sum, "Sum of the time series matching the query; the default aggregate of a bare query."),
		agg(Count, "Number of time series matching the query with a value at each step."),
		agg(Min, "Minimum of the time series matching the query."),
		agg(Max, "Maximum of the time series matching the query."),
		{
			Name: "by", In: params(param("af", AggrT), param("keys", stack.StringList)), Out: "DataExpr",
			Summary:  "Group the matching series by the values of keys: one line per distinct value tuple; series lacking a key are dropped.",
			Examples: []string{"name,sps,:eq,(,nf.app,)", "name,sps,:eq,:max,(,nf.app,nf.node,)", "ERROR:name,sps,:eq,(,)"},
			Exec: func(c *stack.Context) error {
				keys := c.Pop().(stack.List).Strings()
				// A bare query under :by is a :sum (asAggr), Atlas's default
				// aggregate.
				af, _ := asAggr(c.Pop())
				if len(keys) == 0 {
					return fmt.Errorf("group by needs at least one key")
				}
				// The keys keep the user's order: it is the order of the
				// default legend, (k1=v1 k2=v2).
				return c.Push(&GroupBy{Agg: af, Keys: keys})
			},
		},
		{
			Name: "offset", In: params(param("", PresentT), param("d", DurationT)), Out: "TimeSeriesExpr",
			Summary:  "Shift the data window back by a duration, e.g. week over week (legend gets \" (offset=1w)\").",
			Examples: []string{"name,sps,:eq,1w", "name,sps,:eq,(,nf.app,),:by,PT1H", "ERROR:name,sps,:eq,soon"},
			Exec: func(c *stack.Context) error {
				d, _ := ParseDuration(c.Pop().(string))
				// A negative offset would read the future: always empty,
				// and most likely a typo.
				if d < 0 {
					return fmt.Errorf("offset %s is negative", FormatDuration(d))
				}
				return applyTS(c, c.Pop(), func(t TimeSeriesExpr) (TimeSeriesExpr, error) { return WithOffset(t, d) })
			},
		},
		cf(CFAvg, "Consolidate primary datapoints by their average when the step is larger than the storage step."),
		cf(CFSum, "Consolidate primary datapoints by their sum."),
		cf(CFMin, "Consolidate primary datapoints by their minimum."),
		cf(CFMax, "Consolidate primary datapoints by their maximum."),
	}
}

// applyTS applies f to a time series or to a presentation's expression,
// keeping the presentation's settings (style passthrough).
func applyTS(c *stack.Context, v any, f func(TimeSeriesExpr) (TimeSeriesExpr, error)) error {
	// A word applied after :legend or :color rewrites the expression
	// and keeps the presentation, so the order of style and math
	// words does not matter to the user.
	if s, ok := v.(*Style); ok {
		e, err := f(s.Expr)
		if err != nil {
			return err
		}
		return c.Push(s.withExpr(e))
	}
	e, err := f(mustTS(v))
	if err != nil {
		return err
	}
	return c.Push(e)
}
