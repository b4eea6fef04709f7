package expr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Tag keys with a meaning to the language.
const (
	PercentileKey = "percentile" // bucket of a percentile timer or distribution summary
	DistinctKey   = "distinct"   // register of a HyperLogLog distinct count
	StatisticKey  = "statistic"  // Spectator's statistic: count, totalTime, max ...
)

// Transform rebuilds e top-down. f sees each node first; when it returns
// ok, its result replaces the node and the node's children are not
// visited. Otherwise the children are transformed and the node rebuilt
// (through the validating constructors, so a rewrite that breaks an
// invariant is an error).
//
// Nodes are never modified in place, here or by any f: one node can sit in
// several places at once (:dup pushes the same pointer twice, a macro's
// display shares its expansion's subtrees), so changing it for one use
// would silently change the others. Rewrites copy the node they change
// (c := *d) and leave the rest shared.
func Transform(e TimeSeriesExpr, f func(TimeSeriesExpr) (TimeSeriesExpr, bool, error)) (TimeSeriesExpr, error) {
	if r, ok, err := f(e); err != nil || ok {
		return r, err
	}
	// The cases below list every composite node; a node type added to
	// the AST must be added here, to DataExprs and to the evaluator, or
	// its children are silently left as they were.
	t := func(x TimeSeriesExpr) (TimeSeriesExpr, error) { return Transform(x, f) }
	switch n := e.(type) {
	case *Unary:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		return &Unary{Op: n.Op, Expr: x, Arg: n.Arg}, nil
	case *Binary:
		l, err := t(n.L)
		if err != nil {
			return nil, err
		}
		r, err := t(n.R)
		if err != nil {
			return nil, err
		}
		return NewBinary(n.Op, l, r)
	case *MathAgg:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		return &MathAgg{Fn: n.Fn, Expr: x}, nil
	case *MathGroupBy:
		x, err := t(n.Agg)
		if err != nil {
			return nil, err
		}
		// When a rewrite replaced the aggregate by something that is no
		// longer a MathAgg, the group by has nothing left to group: the
		// rewritten node stands alone.
		agg, ok := x.(*MathAgg)
		if !ok {
			return x, nil
		}
		return NewMathGroupBy(agg, n.Keys)
	case *Percentiles:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		// The bucket words read bucket lines grouped by their bucket key:
		// a rewrite that loses the grouping is refused, not evaluated into
		// a wrong estimate.
		g, ok := x.(*GroupBy)
		if !ok {
			return nil, fmt.Errorf("rewrite turned the input of :percentiles into %s", x)
		}
		return NewPercentiles(g, n.Pcts), nil
	case *SampleCount:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		g, ok := x.(*GroupBy)
		if !ok {
			return nil, fmt.Errorf("rewrite turned the input of :sample-count into %s", x)
		}
		return &SampleCount{Expr: g, Min: n.Min, Max: n.Max}, nil
	case *ApproxDistinct:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		g, ok := x.(*GroupBy)
		if !ok {
			return nil, fmt.Errorf("rewrite turned the input of :approx-distinct into %s", x)
		}
		return &ApproxDistinct{Expr: g}, nil
	case *As:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		return &As{Expr: x, From: n.From, To: n.To}, nil
	// The display is rewritten too, when it is an expression, so that
	// the line's label describes what was evaluated.
	case *Rewrite:
		ev, err := t(n.Eval)
		if err != nil {
			return nil, err
		}
		out := &Rewrite{Name: n.Name, Display: n.Display, Params: n.Params, Eval: ev}
		if d, ok := n.Display.(TimeSeriesExpr); ok {
			if out.Display, err = t(d); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *Stateful:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		c := *n
		c.Expr = x
		return &c, nil
	case *Stat:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		return &Stat{Expr: x, Stat: n.Stat}, nil
	case *Filter:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		c, err := t(n.Cond)
		if err != nil {
			return nil, err
		}
		return NewFilter(x, c)
	case *Priority:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		c := *n
		c.Expr = x
		return &c, nil
	case *Consolidate:
		x, err := t(n.Expr)
		if err != nil {
			return nil, err
		}
		return &Consolidate{Expr: x, CF: n.CF, Step: n.Step}, nil
	}
	// Leaves: data expressions and generators.
	return e, nil
}

// DataExprs returns the data expressions e reads, in evaluation order,
// each distinct expression once. Distinct by their program text, not by
// pointer: the same query written twice in a program (an error ratio's
// numerator and denominator) is one read, as in the evaluator's fetch
// cache, which uses the same key.
func DataExprs(e TimeSeriesExpr) []DataExpr {
	var out []DataExpr
	seen := map[string]bool{}
	var walk func(TimeSeriesExpr)
	walk = func(e TimeSeriesExpr) {
		switch n := e.(type) {
		// Keyed by the program text, which includes the offset and the
		// consolidation: 1h,:offset of a query is a different read.
		case DataExpr:
			if k := n.String(); !seen[k] {
				seen[k] = true
				out = append(out, n)
			}
		case *Unary:
			walk(n.Expr)
		case *Binary:
			walk(n.L)
			walk(n.R)
		case *MathAgg:
			walk(n.Expr)
		case *MathGroupBy:
			walk(n.Agg)
		case *Percentiles:
			walk(n.Expr)
		case *SampleCount:
			walk(n.Expr)
		case *ApproxDistinct:
			walk(n.Expr)
		case *As:
			walk(n.Expr)
		// A macro reads what its expansion reads; the display is for
		// the label only.
		case *Rewrite:
			walk(n.Eval)
		case *Stateful:
			walk(n.Expr)
		case *Stat:
			walk(n.Expr)
		case *Filter:
			walk(n.Expr)
			walk(n.Cond)
		case *Priority:
			walk(n.Expr)
		case *Consolidate:
			walk(n.Expr)
		}
	}
	walk(e)
	return out
}

// singleOffset returns the offset shared by every data expression of e.
// A line's offset is only meaningful (for its legend and its timestamps)
// when all its inputs were shifted alike; false means they were not.
func singleOffset(e TimeSeriesExpr) (int64, bool) {
	// A generator (a constant, :time) has no data expression and no
	// offset to report.
	ds := DataExprs(e)
	if len(ds) == 0 {
		return 0, false
	}
	off := ds[0].DataOffset()
	for _, d := range ds[1:] {
		if d.DataOffset() != off {
			return 0, false
		}
	}
	return off, true
}

// WithOffset shifts every data expression of e back by off ms.
func WithOffset(e TimeSeriesExpr, off int64) (TimeSeriesExpr, error) {
	return Transform(e, func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		switch d := n.(type) {
		// The offset replaces any offset already set rather than adding
		// to it: the legacy list form (:offset on a style) shifts the
		// expression as written.
		case *Aggregate:
			c := *d
			c.Offset = off
			return &c, true, nil
		case *GroupBy:
			a := *d.Agg
			a.Offset = off
			return &GroupBy{Agg: &a, Keys: d.Keys}, true, nil
		// :all (raw series, no aggregation) is shifted like the rest.
		case *All:
			return &All{Query: d.Query, Offset: off}, true, nil
		}
		return nil, false, nil
	})
}

// WithCF sets the consolidation function of every aggregate in e.
// Rewrites are expanded: the result evaluates and displays their expansion.
// A macro's display cannot carry a :cf-max that changes its meaning, so
// showing the macro after the change would misdescribe the line.
func WithCF(e TimeSeriesExpr, cf CF) (TimeSeriesExpr, error) {
	var f func(TimeSeriesExpr) (TimeSeriesExpr, bool, error)
	f = func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		switch d := n.(type) {
		case *Rewrite:
			r, err := Transform(d.Eval, f)
			return r, true, err
		case *Aggregate:
			c := *d
			c.CF = cf
			return &c, true, nil
		case *GroupBy:
			a := *d.Agg
			a.CF = cf
			return &GroupBy{Agg: &a, Keys: d.Keys}, true, nil
		}
		return nil, false, nil
	}
	return Transform(e, f)
}

// AndQuery ANDs q into every query of e (:cq).
func AndQuery(e TimeSeriesExpr, q *tags.Query) (TimeSeriesExpr, error) {
	var f func(TimeSeriesExpr) (TimeSeriesExpr, bool, error)
	f = func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		switch d := n.(type) {
		case *Aggregate:
			c := *d
			c.Query = tags.And(d.Query, q)
			return &c, true, nil
		case *GroupBy:
			a := *d.Agg
			a.Query = tags.And(d.Agg.Query, q)
			return &GroupBy{Agg: &a, Keys: d.Keys}, true, nil
		case *All:
			return &All{Query: tags.And(d.Query, q), Offset: d.Offset}, true, nil
		case *Rewrite:
			ev, err := Transform(d.Eval, f)
			if err != nil {
				return nil, true, err
			}
			out := &Rewrite{Name: d.Name, Params: d.Params, Eval: ev, Display: d.Display}
			switch disp := d.Display.(type) {
			// A macro over a query (:dist-avg of name,x,:eq) displays the
			// query: it gets the AND too, or the label would lie.
			case *tags.Query:
				out.Display = tags.And(disp, q)
			case TimeSeriesExpr:
				if out.Display, err = Transform(disp, f); err != nil {
					return nil, true, err
				}
			}
			return out, true, nil
		}
		return nil, false, nil
	}
	return Transform(e, f)
}

// AddGroupKeys adds keys to every group by in e, turning plain aggregates
// into group bys (:cg).
func AddGroupKeys(e TimeSeriesExpr, keys []string) (TimeSeriesExpr, error) {
	var f func(TimeSeriesExpr) (TimeSeriesExpr, bool, error)
	f = func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		switch d := n.(type) {
		case *Aggregate:
			// The keys are cloned: the caller's list (a stack.List) may be
			// shared with other expressions of the same program.
			return &GroupBy{Agg: d, Keys: slices.Clone(keys)}, true, nil
		case *GroupBy:
			return &GroupBy{Agg: d.Agg, Keys: mergeKeys(d.Keys, keys)}, true, nil
		// The second level's keys must stay a subset of the first's, so
		// the common keys go into both: the inner aggregate first (via
		// Transform), then the outer group by.
		case *MathGroupBy:
			inner, err := Transform(d.Agg, f)
			if err != nil {
				return nil, true, err
			}
			agg, ok := inner.(*MathAgg)
			if !ok {
				return nil, true, fmt.Errorf("BUG: group by of %T", inner)
			}
			g, err := NewMathGroupBy(agg, mergeKeys(d.Keys, keys))
			return g, true, err
		}
		return nil, false, nil
	}
	return Transform(e, f)
}

// mergeKeys is a's keys followed by those of b not already in a, keeping
// the order in which the user first named each key.
func mergeKeys(a, b []string) []string {
	out := slices.Clone(a)
	for _, k := range b {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// ApplyGroupBy pushes a group by into every aggregate of an ungrouped
// expression: plain aggregates become group bys, aggregates over grouped
// expressions gain a second level (:by on math).
func ApplyGroupBy(e TimeSeriesExpr, keys []string) (TimeSeriesExpr, error) {
	var f func(TimeSeriesExpr) (TimeSeriesExpr, bool, error)
	f = func(n TimeSeriesExpr) (TimeSeriesExpr, bool, error) {
		switch d := n.(type) {
		case *Rewrite:
			ev, err := Transform(d.Eval, f)
			if err != nil {
				return nil, true, err
			}
			out := &Rewrite{Name: d.Name, Display: d.Display, Params: d.Params, Eval: ev}
			// A display that is already grouped keeps its own grouping: the
			// keys are pushed into the expansion that evaluates.
			if disp, ok := d.Display.(TimeSeriesExpr); ok && !IsGrouped(disp) {
				if out.Display, err = Transform(disp, f); err != nil {
					return nil, true, err
				}
			}
			return out, true, nil
		case *Aggregate:
			return &GroupBy{Agg: d, Keys: slices.Clone(keys)}, true, nil
		case *MathAgg:
			// An aggregate over grouped lines gains a second level; one over
			// ungrouped lines is left to its children's group bys.
			if IsGrouped(d.Expr) {
				g, err := NewMathGroupBy(d, keys)
				return g, true, err
			}
		}
		return nil, false, nil
	}
	return Transform(e, f)
}

// NewBinary builds a binary operation, checking that the groupings can be
// joined: equal, or one a subset of the other.
func NewBinary(op BinaryOp, l, r TimeSeriesExpr) (*Binary, error) {
	if err := checkSize(l, r); err != nil {
		return nil, err
	}
	// Atlas joins the two sides line by line on the smaller grouping's
	// keys (asl.md §2.5): with equal groupings each line meets its
	// twin, with a subset each line of the finer side meets its group
	// (and keeps its own tags). Two unrelated groupings have no join.
	gl, gr := l.Grouping(), r.Grouping()
	if gl != nil && gr != nil && !subset(gl, gr) && !subset(gr, gl) {
		return nil, fmt.Errorf("both sides of binary operation must have the same grouping or one side must be a subset of the other [%s ⊈ %s]",
			listString(gl), listString(gr))
	}
	return &Binary{Op: op, L: l, R: r}, nil
}

// NewMathGroupBy builds a second-level group by; keys must be a subset of
// the grouping under the aggregate.
func NewMathGroupBy(agg *MathAgg, keys []string) (*MathGroupBy, error) {
	inner := agg.Expr.Grouping()
	if inner == nil {
		return nil, fmt.Errorf("input expression must already be grouped")
	}
	if !subset(keys, inner) {
		return nil, fmt.Errorf("%s is not a subset of %s", listString(keys), listString(inner))
	}
	return &MathGroupBy{Agg: agg, Keys: slices.Clone(keys)}, nil
}

// NewFilter builds a filter; a grouped condition needs a grouped input.
func NewFilter(e, cond TimeSeriesExpr) (*Filter, error) {
	if err := checkSize(e, cond); err != nil {
		return nil, err
	}
	// An ungrouped input is one line; a grouped condition would have
	// to pick one of its lines for it, which Atlas refuses too.
	if !IsGrouped(e) && IsGrouped(cond) {
		return nil, fmt.Errorf("filter grouping must match expr grouping: %s is grouped by %s but the input is not grouped",
			cond, listString(cond.Grouping()))
	}
	return &Filter{Expr: e, Cond: cond}, nil
}

// keyString is the label of a group: (k1=v1 k2=v2) in key order.
func keyString(keys []string, ts tags.Set) (string, bool) {
	// false when a key is missing: the line belongs to no group.
	var b strings.Builder
	b.WriteByte('(')
	for i, k := range keys {
		v, ok := ts.Get(k)
		if !ok {
			return "", false
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	b.WriteByte(')')
	return b.String(), true
}

// GroupLabel is the default label of a group-by line: (k1=v1 k2=v2) in key
// order. ok is false when the tags lack a key.
func GroupLabel(keys []string, ts tags.Set) (string, bool) { return keyString(keys, ts) }
