package eval

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// bucketBounds are the upper bounds of Spectator's 276 percentile buckets
// (PercentileBuckets): 1, 2, 3, then for each even power of two 2^e from
// 4 up, steps of a third of it until the next power of four; the last
// bucket is unbounded (MaxInt64).
var bucketBounds = makeBucketBounds()

func makeBucketBounds() []float64 {
	b := []float64{1, 2, 3}
	for exp := 2; exp < 64; exp += 2 {
		cur := int64(1) << exp
		delta := cur / 3
		next := (cur << 2) - delta
		if exp == 62 {
			next = math.MinInt64 // 4·2^62 overflows: Java yields no entries
		}
		for cur < next {
			b = append(b, float64(cur))
			cur += delta
		}
	}
	return append(b, float64(math.MaxInt64))
}

// bucketIndex is the bucket a value falls in.
func bucketIndex(v float64) int {
	switch {
	case !(v > 0):
		return 0
	// The first buckets are one unit wide ([0,1], (1,2], (2,3],
	// (3,4]): the index is the value itself, truncated.
	case v <= 4:
		return int(v)
	}
	i := sort.SearchFloat64s(bucketBounds, v)
	return min(i, len(bucketBounds)-1)
}

// EstimatePercentiles fills res[i] with the estimate of pcts[i] (in
// percent, sorted) from the counts of Spectator's percentile buckets
// (counts[i] is bucket i's, in any unit: a rate works), interpolating
// linearly inside a bucket; NaN when no bucket has a count. The result is
// in the buckets' unit (nanoseconds for a timer). It is the one estimate of
// the stack language's :percentiles and PromQL's histogram_quantile over
// Sextant's buckets.
func EstimatePercentiles(counts []float64, pcts, res []float64) {
	total, last := 0.0, -1
	// Counts are rates per second, not integers; a negative, NaN or
	// infinite one is skipped rather than allowed to pull the estimate
	// outside its buckets.
	for i, c := range counts {
		if c > 0 && !math.IsInf(c, 0) {
			total += c
			last = i
		}
	}
	if total == 0 {
		for i := range res {
			res[i] = math.NaN()
		}
		return
	}
	// Walk the buckets once, carrying the cumulative percentage: each
	// requested percentile (sorted) is placed in the bucket where the
	// running share first reaches it, by linear interpolation between
	// the bucket's lower and upper bound (asl.md §2.9).
	pi := 0
	prevP, prevB := 0.0, 0.0
	for i := 0; i <= last && pi < len(pcts); i++ {
		c := counts[i]
		if !(c > 0) || math.IsInf(c, 0) {
			c = 0
		}
		nextP := prevP + 100*c/total
		for pi < len(pcts) && nextP >= pcts[pi] {
			f := (pcts[pi] - prevP) / (nextP - prevP)
			// An empty bucket crossed exactly (nextP == prevP) gives 0/0:
			// the estimate is its lower bound.
			if math.IsNaN(f) || math.IsInf(f, 0) {
				f = 0
			}
			res[pi] = f*(bucketBounds[i]-prevB) + prevB
			pi++
		}
		prevP, prevB = nextP, bucketBounds[i]
	}
	// Rounding may leave the last percentiles (100) just above the
	// final cumulative share: they are the highest bucket seen.
	for ; pi < len(res); pi++ {
		res[pi] = bucketBounds[last]
	}
}

// bucketGroup is the lines of one group of a bucketed expression, indexed
// by bucket.
type bucketGroup struct {
	// key is the group's label: the user's group values, or every tag
	// but the bucket key when the user did not group; timer tells
	// nanosecond (T) buckets from unitless (D) ones.
	tags    tags.Set // without the bucket key
	key     string
	buckets map[int][]float64
	timer   bool
}

// bucketGroups evaluates e, a group-by over bucketKey and the user's own
// keys, and splits its lines into one group per combination of the user's
// keys (groupBuckets). grouped reports whether the user grouped by keys of
// their own: it decides the answer without buckets (noBuckets) and the
// label (bucketGroup.label). The bucket words (:percentiles,
// :sample-count, :approx-distinct) all start here.
func (x *run) bucketGroups(e *expr.GroupBy, bucketKey string) (groups []*bucketGroup, grouped bool, err error) {
	in, err := x.eval(e)
	if err != nil {
		return nil, false, err
	}
	userKeys := slices.DeleteFunc(slices.Clone(e.Keys), func(k string) bool { return k == bucketKey })
	groups, err = groupBuckets(in, bucketKey, userKeys)
	return groups, len(userKeys) > 0, err
}

// noBuckets is the answer of a bucket word whose input has no bucket
// lines: no line when the user grouped (as any group-by over nothing),
// else the NO DATA line, tagged with the exact keys of q (nil for none).
func (x *run) noBuckets(grouped bool, q *tags.Query) ([]Series, error) {
	if grouped {
		return nil, nil
	}
	return x.noData(q)
}

// label is the base of the group's line labels: its values of the user's
// keys when the user grouped, else the query's label.
func (g *bucketGroup) label(grouped bool, q *tags.Query) string {
	if grouped {
		return g.key
	}
	return QueryLabel(q)
}

// groupBuckets splits lines by their tags without the bucket key and
// parses the bucket index: T or D and 4 hex digits for percentiles,
// R and hex digits for distinct-count registers.
func groupBuckets(in []Series, key string, userKeys []string) ([]*bucketGroup, error) {
	byKey := map[string]*bucketGroup{}
	var order []*bucketGroup
	for _, s := range in {
		v, ok := s.Tags.Get(key)
		if !ok || len(v) < 2 {
			continue // a no-data placeholder, or not a bucket
		}
		// A bucket value that does not parse is not Spectator's: such a
		// line is ignored rather than failing the graph.
		idx, err := strconv.ParseUint(v[1:], 16, 16)
		if err != nil {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(s.Tags), func(t tags.Tag) bool { return t.Key == key })
		k := TagsLabel(rest)
		g := byKey[k]
		if g == nil {
			g = &bucketGroup{tags: rest, key: k, buckets: map[int][]float64{}, timer: v[0] == 'T'}
			if len(userKeys) > 0 {
				g.key, _ = expr.GroupLabel(userKeys, rest)
			}
			byKey[k] = g
			order = append(order, g)
		}
		if _, dup := g.buckets[int(idx)]; dup {
			return nil, userErrorf("invalid %s encoding: two lines for bucket %s", key, v)
		}
		g.buckets[int(idx)] = s.Values
	}
	// Groups in label order, so the lines come out in the same
	// order on every evaluation.
	slices.SortFunc(order, func(a, b *bucketGroup) int { return strings.Compare(a.key, b.key) })
	return order, nil
}

// formatPercentile pads a percentile so the decimal points line up:
// "  9.0", " 50.0", "100.0".
func formatPercentile(p float64) string {
	s := expr.FormatDouble(p)
	switch {
	case p < 10:
		return "  " + s
	case p < 100:
		return " " + s
	}
	return s
}

// percentiles estimates each requested percentile per group from the
// bucket counts at each step (asl.md §2.9): one line per percentile,
// tagged with the padded percentile so the legends sort as numbers.
func (x *run) percentiles(p *expr.Percentiles) ([]Series, error) {
	groups, grouped, err := x.bucketGroups(p.Expr, expr.PercentileKey)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return x.noBuckets(grouped, nil)
	}
	// The user's own group-by keys (without the bucket key) group the
	// [min, max] bounds the same way as the buckets.
	userKeys := slices.DeleteFunc(slices.Clone(p.Expr.Keys), func(k string) bool { return k == expr.PercentileKey })
	bounds, err := x.percentileBounds(p, userKeys)
	if err != nil {
		return nil, err
	}
	var out []Series
	// Reused for every step and group: the estimate needs the counts
	// in bucket order, dense, which the map of a group is not.
	counts := make([]float64, len(bucketBounds))
	res := make([]float64, len(p.Pcts))
	for _, g := range groups {
		gk := ""
		if len(userKeys) > 0 {
			gk = g.key
		}
		gb := bounds[gk]
		lines := make([][]float64, len(p.Pcts))
		for i := range lines {
			if lines[i], err = x.alloc(); err != nil {
				return nil, err
			}
		}
		conv := 1.0
		if g.timer {
			conv = 1e-9 // timer buckets are nanoseconds; results in seconds
		}
		for t := 0; t < x.n; t++ {
			clear(counts)
			for idx, vs := range g.buckets {
				if idx < len(counts) {
					counts[idx] = vs[t]
				}
			}
			EstimatePercentiles(counts, p.Pcts, res)
			for i, r := range res {
				lines[i][t] = r * conv
			}
			if gb == nil {
				continue
			}
			if lo, hi, ok := gb.at(t); ok {
				clampLines(lines, t, lo, hi)
			}
		}
		base := g.label(grouped, p.Expr.Agg.Query)
		for i, pct := range p.Pcts {
			ps := formatPercentile(pct)
			ts := merge(g.tags, tags.Set{{Key: expr.PercentileKey, Value: ps}})
			out = append(out, Series{Tags: ts, Label: "percentile(" + base + ", " + ps + ")", Values: lines[i], Offset: p.Expr.Agg.Offset})
		}
	}
	return out, nil
}

// rangeLines are the lines of one group's [min, max] and the counts of the
// series behind them (expr.PercentileBounds).
type rangeLines struct {
	lo, hi, nLo, nHi []float64
}

// at returns the range at step t, ok only when every series with a max
// has a min there.
func (r *rangeLines) at(t int) (lo, hi float64, ok bool) {
	if r.lo == nil || r.hi == nil || r.nLo == nil || r.nHi == nil || r.nLo[t] != r.nHi[t] {
		return 0, 0, false
	}
	return r.lo[t], r.hi[t], true
}

// percentileBounds reads the [min, max] lines the estimates of p are
// clamped to, by group key ("" when p has no user keys). The rest is read
// only when some min exists: Spectator data has none, and its percentiles
// then cost one empty read more, no more.
func (x *run) percentileBounds(p *expr.Percentiles, userKeys []string) (map[string]*rangeLines, error) {
	b := p.Bounds()
	out := map[string]*rangeLines{}
	read := func(e expr.DataExpr, set func(r *rangeLines, stat string, v []float64)) error {
		lines, err := x.eval(e)
		if err != nil {
			return err
		}
		for _, s := range lines {
			if !slices.ContainsFunc(s.Values, func(v float64) bool { return v == v }) {
				continue // no data, as the placeholder of an empty aggregate
			}
			k := ""
			if len(userKeys) > 0 {
				var ok bool
				if k, ok = expr.GroupLabel(userKeys, s.Tags); !ok {
					continue
				}
			}
			r := out[k]
			if r == nil {
				r = &rangeLines{}
				out[k] = r
			}
			stat, _ := s.Tags.Get(expr.StatisticKey)
			set(r, stat, s.Values)
		}
		return nil
	}
	if err := read(b.Min, func(r *rangeLines, _ string, v []float64) { r.lo = v }); err != nil || len(out) == 0 {
		return nil, err
	}
	if err := read(b.Max, func(r *rangeLines, _ string, v []float64) { r.hi = v }); err != nil {
		return nil, err
	}
	err := read(b.Count, func(r *rangeLines, stat string, v []float64) {
		switch stat {
		case expr.StatMin:
			r.nLo = v
		case expr.StatMax:
			r.nHi = v
		}
	})
	return out, err
}

// clampLines clamps the estimates at step t of every percentile line to
// [lo, hi], the min and max of the values behind them: a percentile never
// lies outside the range the values were recorded in, which interpolating
// inside a wide bucket would otherwise give. Nothing is clamped with
// inconsistent bounds.
func clampLines(lines [][]float64, t int, lo, hi float64) {
	if !(lo <= hi) { // NaN or inconsistent
		return
	}
	for _, l := range lines {
		if v := l[t]; v == v {
			l[t] = min(max(v, lo), hi)
		}
	}
}

// sampleCount sums the bucket rates between two values.
func (x *run) sampleCount(sc *expr.SampleCount) ([]Series, error) {
	groups, grouped, err := x.bucketGroups(sc.Expr, expr.PercentileKey)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return x.noBuckets(grouped, sc.Expr.Agg.Query)
	}
	out := make([]Series, 0, len(groups))
	for _, g := range groups {
		lo, hi := sc.Min, sc.Max
		if g.timer {
			lo, hi = lo*1e9, hi*1e9
		}
		// Whole buckets: a bucket counts when its index lies in the range
		// of the bounds' buckets, so the answer is as coarse as the
		// buckets are (asl.md §2.5).
		first, last := bucketIndex(lo), bucketIndex(hi)
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		for idx, vs := range g.buckets {
			if idx < first || idx > last {
				continue
			}
			for t, b := range vs {
				v[t] = expr.AddNaN(v[t], b)
			}
		}
		base := g.label(grouped, sc.Expr.Agg.Query)
		label := "sample-count(" + base + ", " + expr.FormatDouble(sc.Min) + ", " + expr.FormatDouble(sc.Max) + ")"
		out = append(out, Series{Tags: g.tags, Label: label, Values: v, Offset: sc.Expr.Agg.Offset})
	}
	return out, nil
}

// approxDistinct estimates distinct counts from HyperLogLog registers. The
// register count m is the smallest power of two (at least 16) covering the
// highest register index seen; registers without data count as empty.
func (x *run) approxDistinct(a *expr.ApproxDistinct) ([]Series, error) {
	groups, grouped, err := x.bucketGroups(a.Expr, expr.DistinctKey)
	if err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		return x.noBuckets(grouped, a.Expr.Agg.Query)
	}
	out := make([]Series, 0, len(groups))
	for _, g := range groups {
		m := 16
		for idx := range g.buckets {
			for m <= idx {
				m *= 2
			}
		}
		regs := make([][]float64, 0, len(g.buckets))
		for _, vs := range g.buckets {
			if a.Cumulative {
				cm := slices.Clone(vs)
				run := math.NaN()
				for t, v := range cm {
					if v == v && (run != run || v > run) {
						run = v
					}
					cm[t] = run
				}
				vs = cm
			}
			regs = append(regs, vs)
		}
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		for t := range v {
			v[t] = hllEstimate(regs, t, m)
		}
		base := g.label(grouped, a.Expr.Agg.Query)
		out = append(out, Series{Tags: g.tags, Label: "approx-distinct(" + base + ")", Values: v, Offset: a.Expr.Agg.Offset})
	}
	return out, nil
}

// hllEstimate is the HyperLogLog estimate at step t with small-range
// (linear counting) correction; NaN when no register has a value.
func hllEstimate(regs [][]float64, t, m int) float64 {
	sum, zeros, seen := 0.0, m, false
	for _, r := range regs {
		v := r[t]
		if !(v > 0) {
			continue
		}
		seen = true
		zeros--
		sum += math.Pow(2, -v)
	}
	if !seen {
		return math.NaN()
	}
	sum += float64(zeros) // empty registers contribute 2^0
	fm := float64(m)
	alpha := 0.7213 / (1 + 1.079/fm)
	switch m {
	case 16:
		alpha = 0.673
	case 32:
		alpha = 0.697
	case 64:
		alpha = 0.709
	}
	e := alpha * fm * fm / sum
	if e <= 2.5*fm && zeros > 0 {
		e = fm * math.Log(fm/float64(zeros))
	}
	return e
}
