package expr

import (
	"slices"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Statistic values of the range a histogram's values lie in. OTLP
// histograms carry both (ingest writes statistic=min and statistic=max);
// Spectator meters publish a max only.
const (
	StatMin = "min"
	StatMax = "max"
)

// NewPercentiles returns the :percentiles node over g (grouped by the
// percentile key first) for the sorted, unique pcts, with its clamp bounds
// (Bounds) built once, so that every evaluation of the node (each live
// step) asks the store the same queries.
func NewPercentiles(g *GroupBy, pcts []float64) *Percentiles {
	b := percentileBounds(g)
	return &Percentiles{Expr: g, Pcts: pcts, bounds: &b}
}

// PercentileBounds are the data expressions of the range [min, max] that
// the estimates of a :percentiles are clamped to, step by step and group
// by group. They read the series that match the percentiles' query with
// its terms on statistic and percentile left out (so that a query naming
// statistic=percentile finds them too), grouped by its keys but
// percentile.
type PercentileBounds struct {
	Min DataExpr // the smallest statistic=min
	Max DataExpr // the largest statistic=max
	// Count counts the statistic=min and statistic=max series, grouped by
	// statistic last: a group is clamped only where every series with a
	// max has a min, so a Spectator timer (a max, no min) mixed into the
	// group of an OTLP histogram leaves it unclamped.
	Count DataExpr
}

// Bounds returns the clamp bounds of p. Only OTLP histograms write
// statistic=min, so Spectator's percentile timers, which publish a max
// only, are never clamped and keep Atlas's semantics exactly.
func (p *Percentiles) Bounds() PercentileBounds {
	if p.bounds != nil {
		return *p.bounds
	}
	return percentileBounds(p.Expr) // a node built without NewPercentiles
}

func percentileBounds(g *GroupBy) PercentileBounds {
	q := IgnoreKeys(g.Agg.Query, StatisticKey, PercentileKey)
	keys := slices.DeleteFunc(slices.Clone(g.Keys), func(k string) bool { return k == PercentileKey })
	mk := func(fn AggFn, q *tags.Query, keys []string) DataExpr {
		a := &Aggregate{Fn: fn, Query: q, Offset: g.Agg.Offset}
		if len(keys) == 0 {
			return a
		}
		return &GroupBy{Agg: a, Keys: keys}
	}
	return PercentileBounds{
		Min:   mk(Min, tags.And(q, tags.Eq(StatisticKey, StatMin)), keys),
		Max:   mk(Max, tags.And(q, tags.Eq(StatisticKey, StatMax)), keys),
		Count: mk(Count, tags.And(q, tags.In(StatisticKey, []string{StatMax, StatMin})), append(slices.Clip(keys), StatisticKey)),
	}
}

// IgnoreKeys returns a query that matches every series q matches whatever
// their values of keys (and maybe more): each term on one of keys becomes
// true where it narrows the match and false where it widens it (under an
// odd number of nots).
func IgnoreKeys(q *tags.Query, keys ...string) *tags.Query {
	return relax(q, keys, true)
}

// relax widens q (wide) or narrows it (!wide) by dropping its terms on keys.
func relax(q *tags.Query, keys []string, wide bool) *tags.Query {
	switch q.Op() {
	case tags.OpTrue, tags.OpFalse:
		return q
	case tags.OpAnd:
		s := q.Subs()
		return tags.And(relax(s[0], keys, wide), relax(s[1], keys, wide))
	case tags.OpOr:
		s := q.Subs()
		return tags.Or(relax(s[0], keys, wide), relax(s[1], keys, wide))
	case tags.OpNot:
		return tags.Not(relax(q.Subs()[0], keys, !wide))
	}
	if !slices.Contains(keys, q.Key()) {
		return q
	}
	if wide {
		return tags.True()
	}
	return tags.False()
}
