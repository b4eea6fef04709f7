package promql

import (
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Functions are the PromQL functions Sextant evaluates; every other
// function is a bad_data error naming it.
var Functions = []string{
	"rate", "irate", "increase", "delta", "deriv",
	"avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
	"count_over_time", "last_over_time", "quantile_over_time",
	"abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max",
	"sqrt", "exp", "ln", "log2", "log10",
	"time", "vector", "scalar", "absent",
	"label_replace", "label_join",
	"sort", "sort_desc", "sort_by_label", "sort_by_label_desc",
	"histogram_quantile",
}

// Aggregations are the PromQL aggregation operators Sextant evaluates.
var Aggregations = []string{"sum", "avg", "min", "max", "count", "stddev", "topk", "bottomk", "quantile"}

// supportedFuncs and supportedAggs are the subset as sets, for the check
// that runs before any data is read.
var (
	supportedFuncs = setOf(Functions)
	supportedAggs  = setOf(Aggregations)
)

// setOf is a membership set of xs.
func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// check refuses, with a bad_data error naming it, every construct of e
// outside the subset.
func check(e parser.Expr) error {
	var err error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if err != nil {
			return err
		}
		err = checkNode(n)
		return err
	})
	return err
}

// checkNode refuses one node outside the subset with a bad_data error that
// names the construct. The whole tree is checked before evaluation, so an
// unsupported function deep inside a query fails at once, not after the
// selectors around it were fetched.
func checkNode(n parser.Node) error {
	switch n := n.(type) {
	case *parser.Call:
		if !supportedFuncs[n.Func.Name] {
			return badData("function %q is not supported by Sextant (docs/prometheus.md lists the supported PromQL)", n.Func.Name)
		}
	case *parser.AggregateExpr:
		if name := n.Op.String(); !supportedAggs[name] {
			return badData("aggregation %q is not supported by Sextant (docs/prometheus.md lists the supported PromQL)", name)
		}
	// and/or/unless need set semantics over label sets that the
	// evaluator's vector matching does not implement; refused rather
	// than approximated.
	case *parser.BinaryExpr:
		switch {
		case n.Op.IsSetOperator():
			return badData("operator %q is not supported by Sextant (docs/prometheus.md lists the supported PromQL)", n.Op)
		case n.Op == parser.ATAN2:
			return badData("operator %q is not supported by Sextant (docs/prometheus.md lists the supported PromQL)", n.Op)
		case n.VectorMatching != nil && (n.VectorMatching.FillValues.LHS != nil || n.VectorMatching.FillValues.RHS != nil):
			return badData("fill modifiers are not supported by Sextant")
		}
	case *parser.SubqueryExpr:
		return badData("subqueries (%s) are not supported by Sextant", n)
	case *parser.MatrixSelector:
		if n.RangeExpr != nil {
			return badData("duration expressions (%s) are not supported by Sextant", n)
		}
	// Matchers are compiled here too, so a bad regex is a 400 before
	// any read, with the matcher named.
	case *parser.VectorSelector:
		switch {
		case n.Timestamp != nil || n.StartOrEnd != 0:
			return badData("the @ modifier (%s) is not supported by Sextant", n)
		case n.OriginalOffsetExpr != nil:
			return badData("duration expressions (%s) are not supported by Sextant", n)
		case n.Anchored || n.Smoothed:
			return badData("anchored and smoothed selectors (%s) are not supported by Sextant", n)
		}
		for _, m := range n.LabelMatchers {
			if _, err := matcherQuery(m); err != nil {
				return err
			}
		}
	case *parser.DurationExpr:
		return badData("duration expressions (%s) are not supported by Sextant", n)
	}
	return nil
}

// matcherQuery turns one label matcher into a tag query with Prometheus's
// rules: a regex must match the whole value, and a matcher that matches
// the empty string also matches series without the tag.
func matcherQuery(m *labels.Matcher) (*tags.Query, error) {
	key := StoreKey(m.Name)
	matchesEmpty := m.Matches("")
	switch m.Type {
	// {k=""} selects the series without k, and {k!=""} those with
	// it: Prometheus treats a missing label as the empty value.
	case labels.MatchEqual:
		if m.Value == "" {
			return tags.Not(tags.Has(key)), nil
		}
		return tags.Eq(key, m.Value), nil
	case labels.MatchNotEqual:
		if m.Value == "" {
			return tags.Has(key), nil
		}
		return tags.Not(tags.Eq(key, m.Value)), nil
	}
	// tags.Re anchors at the start (Atlas's :re); the $ anchors the end,
	// since Prometheus matches the whole value; (?s:) lets . match a
	// newline, as Prometheus's regex does.
	re, err := tags.Re(key, "(?s:"+m.Value+")$")
	if err != nil {
		return nil, badData("invalid regular expression %q for %s: %v", m.Value, m.Name, err)
	}
	if m.Type == labels.MatchRegexp {
		if matchesEmpty {
			return tags.Or(re, tags.Not(tags.Has(key))), nil
		}
		return re, nil
	}
	if matchesEmpty {
		return tags.Not(re), nil
	}
	return tags.And(tags.Has(key), tags.Not(re)), nil
}

// SelectorsQuery parses match[] selectors (series selectors such as
// up{job="api"}) into one tag query matching any of them. Errors are
// bad_data naming the selector.
func (en *Engine) SelectorsQuery(sels []string) (*tags.Query, error) {
	q := tags.False()
	for _, s := range sels {
		ms, err := en.parser.ParseMetricSelector(s)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		sq, err := matchersQuery(ms)
		if err != nil {
			return nil, err
		}
		// A series matching any of the selectors is listed once.
		q = tags.Or(q, sq)
	}
	return q, nil
}

// Selectors returns the tag queries of every selector of a PromQL query,
// for exemplars: which series a query reads.
func (en *Engine) Selectors(q string) ([]*tags.Query, error) {
	e, err := en.parse(q)
	if err != nil {
		return nil, err
	}
	var out []*tags.Query
	for _, vs := range parser.ExtractSelectors(e) {
		sq, err := matchersQuery(vs)
		if err != nil {
			return nil, err
		}
		out = append(out, sq)
	}
	return out, nil
}

// unparen strips the parentheses and step-invariant wrappers the parser
// adds, so that a pattern such as "aggregation over a plain selector" is
// recognised however the user bracketed it.
func unparen(e parser.Expr) parser.Expr {
	for {
		switch p := e.(type) {
		case *parser.ParenExpr:
			e = p.Expr
		case *parser.StepInvariantExpr:
			e = p.Expr
		default:
			return e
		}
	}
}

// keepsOrder reports whether the answer keeps the order of e's series:
// the sort functions at the top.
func keepsOrder(e parser.Expr) bool {
	c, ok := unparen(e).(*parser.Call)
	if !ok {
		return false
	}
	switch c.Func.Name {
	case "sort", "sort_desc", "sort_by_label", "sort_by_label_desc":
		return true
	}
	return false
}
