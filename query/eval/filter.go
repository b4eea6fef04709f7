package eval

import (
	"math"
	"slices"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Summary holds the summary statistics of a line over the range.
type Summary struct {
	Count                 int
	Total, Max, Min, Last float64
}

// Summarize computes the statistics of the non-NaN values.
func Summarize(vs []float64) Summary {
	s := Summary{Total: math.NaN(), Max: math.NaN(), Min: math.NaN(), Last: math.NaN()}
	for _, v := range vs {
		if v != v {
			continue
		}
		if s.Count == 0 {
			s.Total, s.Max, s.Min = v, v, v
		} else {
			s.Total += v
			s.Max = max(s.Max, v)
			s.Min = min(s.Min, v)
		}
		s.Last = v
		s.Count++
	}
	return s
}

// Avg is the mean of the non-NaN values, NaN if none.
func (s Summary) Avg() float64 {
	if s.Count == 0 {
		return math.NaN()
	}
	return s.Total / float64(s.Count)
}

// Get returns a statistic by name: avg, max, min, last, total, count.
func (s Summary) Get(stat string) float64 {
	switch stat {
	case "avg":
		return s.Avg()
	case "max":
		return s.Max
	case "min":
		return s.Min
	case "last":
		return s.Last
	case "total":
		return s.Total
	case "count":
		return float64(s.Count)
	}
	return math.NaN()
}

// stat is :stat: each input line becomes a constant line holding one of
// its summary statistics over the evaluated range. Inside :filter it is
// what a condition compares against (the line's average, say); alone it
// draws, for instance, the mean as a flat reference line.
func (x *run) stat(st *expr.Stat) ([]Series, error) {
	in, err := x.eval(st.Expr)
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(in))
	for i, s := range in {
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		c := Summarize(s.Values).Get(st.Stat)
		for j := range v {
			v[j] = c
		}
		out[i] = Series{Tags: s.Tags, Label: "stat-" + st.Stat + "(" + s.Label + ")", Values: v, Offset: s.Offset}
	}
	return out, nil
}

// anyTrue reports whether a line is true (not NaN, not 0) at some step.
func anyTrue(vs []float64) bool {
	for _, v := range vs {
		if expr.ToBool(v) {
			return true
		}
	}
	return false
}

// filter keeps the lines of the expression whose condition line is true at
// some step: an ungrouped condition applies to all, a grouped one to the
// lines of its group.
func (x *run) filter(f *expr.Filter) ([]Series, error) {
	in, err := x.eval(f.Expr)
	if err != nil {
		return nil, err
	}
	conds, err := x.eval(f.Cond)
	if err != nil {
		return nil, err
	}
	if !expr.IsGrouped(f.Cond) {
		if len(conds) != 1 {
			return nil, userErrorf("filter condition %s has %d lines, want 1", f.Cond, len(conds))
		}
		if anyTrue(conds[0].Values) {
			return in, nil
		}
		return nil, nil
	}
	// A grouped condition is joined to the lines on the expression's
	// grouping keys. A key with two condition lines is ambiguous (which of
	// them decides?), so its lines are dropped rather than kept on the
	// strength of either one.
	keys := f.Expr.Grouping()
	byKey := map[string][]float64{}
	dups := map[string]bool{}
	for _, c := range conds {
		k := joinKey(keys, c.Tags)
		if _, ok := byKey[k]; ok {
			dups[k] = true
		}
		byKey[k] = c.Values
	}
	var out []Series
	for _, s := range in {
		k := joinKey(keys, s.Tags)
		if c, ok := byKey[k]; ok && !dups[k] && anyTrue(c) {
			out = append(out, s)
		}
	}
	return out, nil
}

// priority keeps the k lines with the highest (or lowest) statistic, plus
// an aggregate of the others when asked.
func (x *run) priority(p *expr.Priority) ([]Series, error) {
	in, err := x.eval(p.Expr)
	if err != nil {
		return nil, err
	}
	type ranked struct {
		s    Series
		stat float64
	}
	rs := make([]ranked, len(in))
	for i, s := range in {
		rs[i] = ranked{s, Summarize(s.Values).Get(p.Stat)}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		c := expr.CompareNaNLast(a.stat, b.stat)
		if !p.Bottom {
			c = -c
		}
		return c
	})
	k := min(p.K, len(rs))
	out := make([]Series, 0, k+1)
	for _, r := range rs[:k] {
		out = append(out, r.s)
	}
	rest := rs[k:]
	if p.Others == "" || len(rest) == 0 {
		return out, nil
	}
	v, err := x.alloc()
	if err != nil {
		return nil, err
	}
	// The others are aggregated point by point; avg is their sum divided
	// by how many of them have a value at that point.
	fn := map[string]expr.AggFn{"min": expr.Min, "max": expr.Max, "sum": expr.Sum, "avg": expr.Sum}[p.Others]
	a := aggregator{fn: fn, out: v}
	var cnt aggregator
	if p.Others == "avg" {
		c, err := x.alloc()
		if err != nil {
			return nil, err
		}
		cnt = aggregator{fn: expr.Count, out: c}
	}
	for _, r := range rest {
		a.add(r.s.Values)
		if cnt.out != nil {
			cnt.add(r.s.Values)
		}
	}
	if cnt.out != nil {
		for i := range v {
			v[i] /= cnt.out[i]
		}
	}
	// The others line takes the tags of the first line it aggregates with
	// every grouping key set to --others--, as Atlas marks it, so that it
	// sorts and joins like any other line of the group.
	ts := slices.Clone(rest[0].s.Tags)
	for _, key := range p.Expr.Grouping() {
		ts = merge(ts, tags.Set{{Key: key, Value: "--others--"}})
	}
	label := "--others--"
	if g := p.Expr.Grouping(); g != nil {
		label, _ = expr.GroupLabel(g, ts)
	}
	return append(out, Series{Tags: ts, Label: label, Values: v, Offset: rest[0].s.Offset}), nil
}

// consolidate shows lines at a coarser step: each point takes the cf of
// the points in its coarse interval (T-step, T].
func (x *run) consolidate(c *expr.Consolidate) ([]Series, error) {
	in, err := x.eval(c.Expr)
	if err != nil {
		return nil, err
	}
	step := c.Step
	if r := step % x.r.Step; r != 0 {
		step += x.r.Step - r
	}
	m := int(step / x.r.Step)
	// avg sums here and divides by the count of present values below.
	fn := map[expr.CF]expr.AggFn{expr.CFSum: expr.Sum, expr.CFMin: expr.Min, expr.CFMax: expr.Max, expr.CFAvg: expr.Sum}[c.CF]
	out := make([]Series, len(in))
	for i, s := range in {
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		for j := 0; j < x.n; {
			t := x.r.Start + int64(j)*x.r.Step
			end := t
			if r := ((t % step) + step) % step; r != 0 {
				end += step - r
			}
			// points j..last share the interval ending at end
			last := min(x.n-1, j+int((end-t)/x.r.Step))
			first := max(0, last-m+1)
			agg := aggregator{fn: fn, out: []float64{math.NaN()}}
			cnt := 0
			for _, val := range s.Values[first : last+1] {
				agg.add([]float64{val})
				if val == val {
					cnt++
				}
			}
			r := agg.out[0]
			if c.CF == expr.CFAvg && cnt > 0 {
				r /= float64(cnt)
			}
			for ; j <= last; j++ {
				v[j] = r
			}
		}
		out[i] = Series{Tags: s.Tags, Label: s.Label, Values: v, Offset: s.Offset}
	}
	return out, nil
}
