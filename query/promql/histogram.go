package promql

import (
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// percentileKey is the tag of Sextant's percentile-timer and
// distribution-summary buckets: T (nanoseconds) or D, then the bucket
// index as four hex digits.
const percentileKey = "percentile"

// histogramQuantile is histogram_quantile(φ, v) over Prometheus's
// cumulative le buckets, or over Sextant's percentile buckets (timers in
// seconds), estimated as the stack language's :percentiles does.
func (x *run) histogramQuantile(c *parser.Call) (value, error) {
	// φ is a scalar per point: histogram_quantile(scalar(x), ...) may
	// ask a different quantile at each step.
	q, err := x.scalarArg(c.Args[0])
	if err != nil {
		return nil, err
	}
	v, err := x.vectorArg(c.Args[1])
	if err != nil {
		return nil, err
	}
	type hgroup struct {
		tags  tags.Set
		le    []leBucket
		pct   map[int][]float64
		timer bool
	}
	// Group the buckets of each histogram: the series' tags without the
	// name and the bucket tag identify it. The kind of bucket is part of
	// the group key, so an le histogram and a percentile timer that
	// happen to share their other tags are estimated separately. Series
	// that are not buckets (no le, or a malformed one) are left out, as
	// Prometheus leaves them out.
	byKey := map[string]*hgroup{}
	var order []*hgroup
	for _, s := range v {
		var key string
		var bound float64
		idx := -1
		timer := false
		if le, ok := s.tags.Get("le"); ok {
			b, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue
			}
			key, bound = "le", b
		} else if p, ok := s.tags.Get(percentileKey); ok && len(p) == 5 && (p[0] == 'T' || p[0] == 'D') {
			i, err := strconv.ParseUint(p[1:], 16, 16)
			// An index beyond Spectator's table is not one of our buckets:
			// left out like a malformed le.
			if err != nil || int(i) >= lib.NumPercentileBuckets {
				continue
			}
			key, idx, timer = percentileKey, int(i), p[0] == 'T'
		} else {
			continue
		}
		ts := without(dropName(s.tags), key)
		// The canonical binary form of the tags (tags.Set.AppendTo) is an
		// exact key: no separator can be confused with a tag's text.
		k := key + string(ts.AppendTo(nil))
		g := byKey[k]
		if g == nil {
			g = &hgroup{tags: ts, pct: map[int][]float64{}, timer: timer}
			byKey[k] = g
			order = append(order, g)
		}
		if idx >= 0 {
			if _, dup := g.pct[idx]; dup {
				return nil, &Error{Type: Execution, Msg: "histogram_quantile: two series for percentile bucket " + strconv.Itoa(idx) + " of " + promTags(ts).String()}
			}
			g.pct[idx] = s.v
		} else {
			g.le = append(g.le, leBucket{upper: bound, vals: s.v})
		}
	}
	// Percentile buckets are clamped to their group's [min, max] where
	// OTLP histograms wrote both, as :percentiles is (query/eval).
	var pctGroups []tags.Set
	for _, g := range order {
		if len(g.pct) > 0 && len(g.le) == 0 {
			pctGroups = append(pctGroups, g.tags)
		}
	}
	var ranges []*histRange
	if len(pctGroups) > 0 {
		if ranges, err = x.histRanges(c.Args[1], pctGroups); err != nil {
			return nil, err
		}
	}
	out := make(vector, 0, len(order))
	// Reused for every point of every group: the estimate wants the
	// counts dense and in bucket order.
	counts := make([]float64, lib.NumPercentileBuckets)
	ri := 0
	for _, g := range order {
		var hr *histRange
		if len(g.pct) > 0 && len(g.le) == 0 {
			if ranges != nil {
				hr = ranges[ri]
			}
			ri++
		}
		res := make([]float64, x.n)
		slices.SortFunc(g.le, func(a, b leBucket) int { return cmpFloat(a.upper, b.upper) })
		for p := range res {
			if g.pct != nil && len(g.le) == 0 {
				clear(counts)
				for i, vs := range g.pct {
					counts[i] = vs[p]
				}
				res[p] = percentileEstimate(q[p], counts, g.timer)
				if hr == nil {
					continue
				}
				if lo, hi, ok := hr.at(p); ok {
					res[p] = clampTo(res[p], lo, hi)
				}
				continue
			}
			res[p] = leQuantile(q[p], g.le, p)
		}
		out = append(out, series{tags: g.tags, v: res})
	}
	return out, nil
}

// leBucket is one cumulative bucket of a Prometheus histogram: its upper
// bound and its count per point.
type leBucket struct {
	upper float64
	vals  []float64
}

// cmpFloat orders bucket bounds; +Inf sorts last, as the +Inf bucket must.
func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// leQuantile is Prometheus's bucketQuantile at point p: linear
// interpolation inside the bucket the rank falls in, the upper bound of
// the second-highest bucket when it falls in +Inf.
func leQuantile(q float64, bs []leBucket, p int) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	type b struct{ upper, count float64 }
	var buckets []b
	for _, bk := range bs {
		if v := bk.vals[p]; !math.IsNaN(v) {
			buckets = append(buckets, b{bk.upper, v})
		}
	}
	if len(buckets) < 2 || !math.IsInf(buckets[len(buckets)-1].upper, 1) {
		return math.NaN()
	}
	// Counts must not decrease with the bound; repair as Prometheus does.
	for i := 1; i < len(buckets); i++ {
		if buckets[i].count < buckets[i-1].count {
			buckets[i].count = buckets[i-1].count
		}
	}
	total := buckets[len(buckets)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	i := 0
	for i < len(buckets)-1 && buckets[i].count < rank {
		i++
	}
	switch {
	case i == len(buckets)-1:
		return buckets[len(buckets)-2].upper
	case i == 0 && buckets[0].upper <= 0:
		return buckets[0].upper
	}
	start, prev := 0.0, 0.0
	if i > 0 {
		start, prev = buckets[i-1].upper, buckets[i-1].count
	}
	count := buckets[i].count - prev
	if count == 0 {
		return buckets[i].upper
	}
	return start + (buckets[i].upper-start)*((rank-prev)/count)
}

// percentileEstimate estimates the φ-quantile from per-bucket counts of
// Spectator's percentile buckets with the stack language's own estimate
// (eval.EstimatePercentiles), timers converted from nanoseconds to
// seconds. A φ outside [0, 1] lands below the first or above the last
// bucket seen, as :percentiles would place it.
func percentileEstimate(q float64, counts []float64, timer bool) float64 {
	if math.IsNaN(q) {
		return math.NaN()
	}
	var res [1]float64
	eval.EstimatePercentiles(counts, []float64{q * 100}, res[:])
	if timer {
		return res[0] * 1e-9
	}
	return res[0]
}
