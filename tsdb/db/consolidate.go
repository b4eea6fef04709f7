package db

import (
	"math"

	"github.com/sextant-dev/sextant/tsdb"
)

// consolidate reduces the primaries prim (len(out)*m values, NaN for no
// data) to out, each output point combining m consecutive primaries with
// cf, as Atlas does (asl.md §1.2): avg divides by m for rates (a missing
// primary counts as zero) and by the number of present primaries for
// gauges; every function gives NaN when no primary has data.
func consolidate(out, prim []float64, m int, cf tsdb.Consolidation, gauge bool) {
	if m == 1 {
		copy(out, prim)
		return
	}
	for i := range out {
		w := prim[i*m : i*m+m]
		var acc float64
		n := 0
		switch cf {
		case tsdb.CFMin:
			acc = math.Inf(1)
			for _, v := range w {
				if v == v {
					acc = min(acc, v)
					n++
				}
			}
		case tsdb.CFMax:
			acc = math.Inf(-1)
			for _, v := range w {
				if v == v {
					acc = max(acc, v)
					n++
				}
			}
		default:
			for _, v := range w {
				if v == v {
					acc += v
					n++
				}
			}
			if cf == tsdb.CFAvg && n > 0 {
				if gauge {
					acc /= float64(n)
				} else {
					acc /= float64(m)
				}
			}
		}
		if n == 0 {
			acc = math.NaN()
		}
		out[i] = acc
	}
}

// aggregator combines series point by point, NaN meaning no data: the
// result is NaN only where every input was NaN (count gives NaN, not 0,
// there, as in Atlas).
type aggregator struct {
	agg  tsdb.Aggregation
	vals []float64
	// cnt counts per point the series with a value there for min and max,
	// and the series without one for sum and count: gaps are rare, so a
	// sum's loop stores nothing but the sum for most points (a fifth less
	// of a grouped sum's aggregation CPU than counting every value).
	cnt []int32
	// series counts the series added to a sum or count.
	series int32
}

func newAggregator(agg tsdb.Aggregation, n int) *aggregator {
	a := &aggregator{agg: agg, vals: make([]float64, n), cnt: make([]int32, n)}
	return a
}

// add combines the values v of one series at points [at, at+len(v));
// dense says that v holds no NaN. The caller counts the series in
// a.series, once however many parts of it it adds: parts of a series at
// disjoint points may be added concurrently.
func (a *aggregator) add(v []float64, at int, dense bool) {
	vals, cnt := a.vals[at:at+len(v)], a.cnt[at:at+len(v)]
	switch a.agg {
	case tsdb.AggSum, tsdb.AggCount:
		if dense {
			// Fast path: no value to skip.
			for i, x := range v {
				vals[i] += x
			}
			return
		}
		// Count keeps summing too; it is cheap and keeps one loop.
		for i, x := range v {
			if x == x {
				vals[i] += x
			} else {
				cnt[i]++
			}
		}
	case tsdb.AggMin:
		for i, x := range v {
			if x == x {
				if cnt[i] == 0 || x < vals[i] {
					vals[i] = x
				}
				cnt[i]++
			}
		}
	case tsdb.AggMax:
		for i, x := range v {
			if x == x {
				if cnt[i] == 0 || x > vals[i] {
					vals[i] = x
				}
				cnt[i]++
			}
		}
	}
}

// result returns the aggregate; the aggregator must not be used after.
func (a *aggregator) result() []float64 {
	out := a.vals
	sum := a.agg == tsdb.AggSum || a.agg == tsdb.AggCount
	for i, c := range a.cnt {
		if sum {
			c = a.series - c
		}
		switch {
		case c == 0:
			out[i] = math.NaN()
		case a.agg == tsdb.AggCount:
			out[i] = float64(c)
		}
	}
	return out
}
