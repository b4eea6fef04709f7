package promql

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Statistic values of the range an OTLP histogram's values lie in (ingest
// writes both; Spectator meters publish a max only).
const (
	statisticKey = "statistic"
	statMin      = "min"
	statMax      = "max"
)

// histRange is the [min, max] of one histogram_quantile group at each
// point, and how many min and max series are behind it.
type histRange struct {
	lo, hi   []float64
	nLo, nHi []int
}

// at returns the range at point p, ok only when every series with a max
// has a min there (a Spectator timer, which has no min, mixed into the
// group leaves it unclamped).
func (r *histRange) at(p int) (lo, hi float64, ok bool) {
	if r.nLo[p] == 0 || r.nLo[p] != r.nHi[p] || !(r.lo[p] <= r.hi[p]) {
		return 0, 0, false
	}
	return r.lo[p], r.hi[p], true
}

// histRanges reads the [min, max] that histogram_quantile's estimates over
// Sextant's percentile buckets are clamped to, as the stack language's
// :percentiles does: the statistic=min and statistic=max series matching
// the argument's selector (its matchers on statistic and percentile left
// out), over the argument's window (min_over_time and max_over_time of a
// range selector), for the groups given by their tags. It reads nothing,
// and clamps nothing, when the argument has other than one selector.
func (x *run) histRanges(arg parser.Expr, groups []tags.Set) ([]*histRange, error) {
	var sels []*parser.VectorSelector
	var rng *parser.MatrixSelector
	parser.Inspect(arg, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			sels = append(sels, n)
		case *parser.MatrixSelector:
			rng = n
		}
		return nil
	})
	if len(sels) != 1 {
		return nil, nil
	}
	read := func(stat, fn string) (vector, error) {
		vs := *sels[0]
		vs.LabelMatchers = slices.DeleteFunc(slices.Clone(vs.LabelMatchers), func(m *labels.Matcher) bool {
			return m.Name == statisticKey || m.Name == percentileKey
		})
		vs.LabelMatchers = append(vs.LabelMatchers, labels.MustNewMatcher(labels.MatchEqual, statisticKey, stat))
		if rng == nil {
			return x.vectorArg(&vs)
		}
		return x.vectorArg(&parser.Call{Func: parser.Functions[fn],
			Args: parser.Expressions{&parser.MatrixSelector{VectorSelector: &vs, Range: rng.Range}}})
	}
	mins, err := read(statMin, "min_over_time")
	if err != nil || len(mins) == 0 {
		return nil, err
	}
	maxs, err := read(statMax, "max_over_time")
	if err != nil {
		return nil, err
	}
	out := make([]*histRange, len(groups))
	for i, g := range groups {
		r := &histRange{lo: nans(x.n), hi: nans(x.n), nLo: make([]int, x.n), nHi: make([]int, x.n)}
		keys := rangeKeys(g)
		for _, s := range mins {
			if sameOn(keys, g, s.tags) {
				fold(r.lo, r.nLo, s.v, math.Min)
			}
		}
		for _, s := range maxs {
			if sameOn(keys, g, s.tags) {
				fold(r.hi, r.nHi, s.v, math.Max)
			}
		}
		out[i] = r
	}
	return out, nil
}

// rangeKeys are the keys of a group's tags that its min and max series
// must share: all but statistic and atlas.dstype, in which they differ
// from the buckets.
func rangeKeys(g tags.Set) []string {
	keys := make([]string, 0, len(g))
	for _, t := range g {
		if t.Key != statisticKey && t.Key != tsdb.DSTypeKey {
			keys = append(keys, t.Key)
		}
	}
	return keys
}

// sameOn reports whether a and b have the same values for keys.
func sameOn(keys []string, a, b tags.Set) bool {
	for _, k := range keys {
		va, _ := a.Get(k)
		vb, ok := b.Get(k)
		if !ok || va != vb {
			return false
		}
	}
	return true
}

// fold combines the present values of v into acc with f, counting them.
func fold(acc []float64, n []int, v []float64, f func(a, b float64) float64) {
	for p, f1 := range v {
		if math.IsNaN(f1) {
			continue
		}
		if n[p] == 0 {
			acc[p] = f1
		} else {
			acc[p] = f(acc[p], f1)
		}
		n[p]++
	}
}

func nans(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// clampTo clamps v to [lo, hi].
func clampTo(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	return min(max(v, lo), hi)
}
