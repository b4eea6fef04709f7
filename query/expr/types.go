package expr

import (
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Stack types of the vocabularies. Coercions follow Atlas: a query is an
// implicit :sum wherever an aggregate or time series is expected, a
// numeric string is a constant line, and a time series is a presentation.
var (
	QueryT = stack.Type{Name: "Query", Match: func(v any) bool { _, ok := v.(*tags.Query); return ok }}
	// AggrT accepts an ungrouped aggregate or a query.
	AggrT = stack.Type{Name: "AggregateFunction", Match: func(v any) bool { _, ok := asAggr(v); return ok }}
	// DataT accepts any data expression or a query.
	DataT = stack.Type{Name: "DataExpr", Match: func(v any) bool { _, ok := asData(v); return ok }}
	// TimeSeriesT accepts expressions, queries and numbers.
	TimeSeriesT = stack.Type{Name: "TimeSeriesExpr", Match: func(v any) bool { _, ok := AsTimeSeries(v); return ok }}
	// ExprT accepts only expression values (no strings or queries).
	ExprT     = stack.Type{Name: "TimeSeriesExpr", Match: func(v any) bool { _, ok := v.(TimeSeriesExpr); return ok }}
	StyleT    = stack.Type{Name: "StyleExpr", Match: func(v any) bool { _, ok := v.(*Style); return ok }}
	PresentT  = stack.Type{Name: "TimeSeriesExpr", Match: func(v any) bool { _, ok := AsStyle(v); return ok }}
	DurationT = stack.Type{Name: "Duration", Match: func(v any) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		_, err := ParseDuration(s)
		return err == nil
	}}
)

// AsTimeSeries coerces a stack item to a time series expression.
func AsTimeSeries(v any) (TimeSeriesExpr, bool) {
	switch x := v.(type) {
	case TimeSeriesExpr:
		return x, true
	case *tags.Query:
		return &Aggregate{Fn: Sum, Query: x}, true
	case string:
		if f, ok := stack.ToDouble(x); ok {
			return &Constant{V: f}, true
		}
	}
	return nil, false
}

// AsStyle coerces a stack item to a presentation.
func AsStyle(v any) (*Style, bool) {
	if s, ok := v.(*Style); ok {
		return s, true
	}
	if t, ok := AsTimeSeries(v); ok {
		return &Style{Expr: t}, true
	}
	return nil, false
}

// asAggr accepts what an aggregation word may take from the stack: an
// aggregate, or a bare query, which Atlas treats as an implicit :sum.
func asAggr(v any) (*Aggregate, bool) {
	switch x := v.(type) {
	case *Aggregate:
		return x, true
	case *tags.Query:
		return &Aggregate{Fn: Sum, Query: x}, true
	}
	return nil, false
}

// asData accepts any expression the store answers directly, again with a
// bare query standing for its :sum.
func asData(v any) (DataExpr, bool) {
	switch x := v.(type) {
	case DataExpr:
		return x, true
	case *tags.Query:
		return &Aggregate{Fn: Sum, Query: x}, true
	}
	return nil, false
}

// param and params build word signatures compactly in the vocabularies.
func param(name string, t stack.Type) stack.Param { return stack.Param{Name: name, Type: t} }

func params(ps ...stack.Param) []stack.Param { return ps }

// mustTS converts a stack value a signature already matched as a time
// series. Failing here means the signature and the body disagree, a
// programming error, hence the BUG panic rather than an error that would
// blame the user's query.
func mustTS(v any) TimeSeriesExpr {
	t, ok := AsTimeSeries(v)
	if !ok {
		panic("BUG: signature matched a non time series")
	}
	return t
}

// anyStack is the stack predicate of words that take whatever is there.
func anyStack([]any) bool { return true }
