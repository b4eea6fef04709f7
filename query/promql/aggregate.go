package promql

import (
	"math"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// aggregate evaluates sum, avg, min, max, count, stddev, topk, bottomk and
// quantile, by or without tags.
func (x *run) aggregate(a *parser.AggregateExpr) (value, error) {
	op := a.Op.String()
	// An aggregation straight over a selector is what most dashboards ask
	// (sum by (app) (x)): the store aggregates it while it reads, the way
	// ASL's :sum,:by does, and never builds a line per series. without()
	// cannot be pushed down: its groups depend on every other tag.
	if vs, ok := unparen(a.Expr).(*parser.VectorSelector); ok && !a.Without {
		switch op {
		case "sum", "min", "max", "count", "avg":
			return x.pushdown(op, vs, storeKeys(a.Grouping))
		}
	}
	var param scalar
	if a.Param != nil {
		p, err := x.eval(a.Param)
		if err != nil {
			return nil, err
		}
		var ok bool
		if param, ok = p.(scalar); !ok {
			return nil, badData("the parameter of %s must be a scalar", op)
		}
	}
	in, err := x.vectorArg(a.Expr)
	if err != nil {
		return nil, err
	}
	// The general path: the argument is evaluated into lines, which are
	// grouped here and combined point by point, skipping absent (NaN)
	// points as Prometheus skips series with no sample at that time.
	groups := group(in, storeKeys(a.Grouping), a.Without)
	switch op {
	case "topk", "bottomk":
		return x.topk(in, groups, param, op == "bottomk"), nil
	}
	out := make(vector, 0, len(groups))
	vals := make([]float64, 0, len(in))
	for _, g := range groups {
		res := make([]float64, x.n)
		for p := range res {
			vals = vals[:0]
			for _, i := range g.members {
				if v := in[i].v[p]; !math.IsNaN(v) {
					vals = append(vals, v)
				}
			}
			res[p] = aggregateValues(op, vals, param, p)
		}
		out = append(out, series{tags: g.tags, v: res})
	}
	return out, nil
}

// aggregateValues combines the present values of one group at point p.
func aggregateValues(op string, vals []float64, param scalar, p int) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	switch op {
	case "sum":
		return sum(vals)
	case "avg":
		return sum(vals) / float64(len(vals))
	case "count":
		return float64(len(vals))
	case "min":
		return slices.Min(vals)
	case "max":
		return slices.Max(vals)
	case "stddev":
		// Population standard deviation, as Prometheus computes it (it
		// divides by n, not n-1). Two passes are exact enough for the
		// group sizes of a dashboard and simpler than Welford's update.
		mean := sum(vals) / float64(len(vals))
		ss := 0.0
		for _, v := range vals {
			ss += (v - mean) * (v - mean)
		}
		return math.Sqrt(ss / float64(len(vals)))
	case "quantile":
		return quantile(param[p], vals)
	}
	return math.NaN()
}

// sum adds the values in order; an empty group has been handled by the
// caller, so the zero start never shows as a wrong 0.
func sum(vals []float64) float64 {
	s := 0.0
	for _, v := range vals {
		s += v
	}
	return s
}

// quantile is Prometheus's φ-quantile of values: linear interpolation
// between the closest ranks; -Inf below 0 and +Inf above 1. It sorts vals.
func quantile(q float64, vals []float64) float64 {
	switch {
	case len(vals) == 0 || math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	sort.Float64s(vals)
	rank := q * float64(len(vals)-1)
	lo := math.Max(0, math.Floor(rank))
	hi := math.Min(float64(len(vals)-1), lo+1)
	w := rank - math.Floor(rank)
	return vals[int(lo)]*(1-w) + vals[int(hi)]*w
}

// aggGroup is one output group: its tags and the input series in it.
type aggGroup struct {
	tags    tags.Set
	members []int
}

// group splits series by the tags of by(keys), or all tags but keys and
// the name for without(keys). Groups come in order of first appearance.
func group(in vector, keys []string, withoutKeys bool) []*aggGroup {
	byKey := map[string]*aggGroup{}
	var order []*aggGroup
	for i, s := range in {
		var ts tags.Set
		if withoutKeys {
			ts = without(s.tags, append(slices.Clone(keys), tags.NameKey)...)
		} else {
			ts = only(s.tags, keys)
		}
		// The group key is the canonical encoding of the group's tags,
		// so two series with the same group values meet whatever order
		// their other tags came in.
		k := string(ts.AppendTo(nil))
		g := byKey[k]
		if g == nil {
			g = &aggGroup{tags: ts}
			byKey[k] = g
			order = append(order, g)
		}
		g.members = append(g.members, i)
	}
	return order
}

// topk keeps, per group and point, the k largest (smallest) elements with
// all their tags.
func (x *run) topk(in vector, groups []*aggGroup, k scalar, bottom bool) vector {
	out := make(vector, len(in))
	for i, s := range in {
		v := make([]float64, x.n)
		for p := range v {
			v[p] = math.NaN()
		}
		out[i] = series{tags: s.tags, v: v}
	}
	// topk is decided at every point separately, as in Prometheus: a series
	// may be in the top k at one time and out of it at the next, and then
	// it has no value (NaN) at the times it is out. The stable sort keeps
	// ties in input order so that a graph does not flicker between calls.
	idx := make([]int, 0, len(in))
	for _, g := range groups {
		for p := 0; p < x.n; p++ {
			idx = idx[:0]
			for _, i := range g.members {
				if !math.IsNaN(in[i].v[p]) {
					idx = append(idx, i)
				}
			}
			slices.SortStableFunc(idx, func(a, b int) int {
				va, vb := in[a].v[p], in[b].v[p]
				if bottom {
					va, vb = vb, va
				}
				switch {
				case va > vb:
					return -1
				case va < vb:
					return 1
				}
				return 0
			})
			n := len(idx)
			switch {
			case math.IsNaN(k[p]) || k[p] < 1:
				n = 0
			case k[p] < float64(n):
				n = int(k[p])
			}
			for _, i := range idx[:n] {
				out[i].v[p] = in[i].v[p]
			}
		}
	}
	return out
}

// pushdown evaluates sum, min, max, count or avg by keys of a plain
// selector in the store: one grouped fetch per function (avg is sum over
// count). Series lacking a key of the grouping, which the store leaves
// out of groups, come in a second fetch and are grouped here.
func (x *run) pushdown(op string, vs *parser.VectorSelector, keys []string) (vector, error) {
	q, err := matchersQuery(vs.LabelMatchers)
	if err != nil {
		return nil, err
	}
	off := vs.OriginalOffset.Milliseconds()
	r, err := x.storageRange(off, 1)
	if err != nil {
		return nil, err
	}
	fns := map[string][]expr.AggFn{"sum": {expr.Sum}, "min": {expr.Min}, "max": {expr.Max}, "count": {expr.Count}, "avg": {expr.Sum, expr.Count}}[op]
	parts := make([]vector, len(fns))
	for i, fn := range fns {
		agg := &expr.Aggregate{Fn: fn, Query: q}
		var d expr.TimeSeriesExpr = agg
		if len(keys) > 0 {
			d = &expr.GroupBy{Agg: agg, Keys: keys}
		}
		got, err := x.fetch(d, r)
		if err != nil {
			return nil, err
		}
		parts[i] = x.sample(got, r, off)
		for j := range parts[i] {
			parts[i][j].tags = only(parts[i][j].tags, keys)
		}
	}
	out := parts[0]
	// avg is the only function that is not its own partial aggregate: the
	// store returns per-group sums and counts, and the mean is taken here,
	// matching groups by their tags since the two fetches are separate.
	if op == "avg" {
		counts := map[string][]float64{}
		for _, c := range parts[1] {
			counts[string(c.tags.AppendTo(nil))] = c.v
		}
		for j := range out {
			c := counts[string(out[j].tags.AppendTo(nil))]
			avg := make([]float64, len(out[j].v))
			for p, v := range out[j].v {
				if c == nil {
					avg[p] = math.NaN()
				} else {
					avg[p] = v / c[p]
				}
			}
			out[j].v = avg
		}
	}
	// Slow path: series without some key of the grouping.
	all := tags.True()
	for _, k := range keys {
		if k != tags.NameKey {
			all = tags.And(all, tags.Has(k))
		}
	}
	if all.Op() == tags.OpTrue {
		return out, nil
	}
	got, err := x.fetch(&expr.All{Query: tags.And(q, tags.Not(all))}, r)
	if err != nil || len(got) == 0 {
		return out, err
	}
	rest := x.sample(got, r, off)
	for _, g := range group(rest, keys, false) {
		res := make([]float64, x.n)
		vals := make([]float64, 0, len(g.members))
		for p := range res {
			vals = vals[:0]
			for _, i := range g.members {
				if v := rest[i].v[p]; !math.IsNaN(v) {
					vals = append(vals, v)
				}
			}
			res[p] = aggregateValues(op, vals, nil, p)
		}
		out = append(out, series{tags: g.tags, v: res})
	}
	return out, nil
}

// vectorArg evaluates an expression that must be an instant vector.
func (x *run) vectorArg(e parser.Expr) (vector, error) {
	v, err := x.eval(e)
	if err != nil {
		return nil, err
	}
	vec, ok := v.(vector)
	if !ok {
		return nil, badData("expected an instant vector, got %s", e)
	}
	return vec, nil
}

// scalarArg evaluates an expression that must be a scalar.
func (x *run) scalarArg(e parser.Expr) (scalar, error) {
	v, err := x.eval(e)
	if err != nil {
		return nil, err
	}
	s, ok := v.(scalar)
	if !ok {
		return nil, badData("expected a scalar, got %s", e)
	}
	return s, nil
}
