package expr

import (
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestIgnoreKeys(t *testing.T) {
	t.Parallel()
	name, app := tags.Eq("name", "lat"), tags.Eq("app", "a")
	stat, pct := tags.Eq(StatisticKey, "percentile"), tags.Eq(PercentileKey, "T0042")
	f := func(q, want *tags.Query) {
		t.Helper()
		if got := IgnoreKeys(q, StatisticKey, PercentileKey); got.String() != want.String() {
			t.Errorf("IgnoreKeys(%s) = %s, want %s", q, got, want)
		}
	}
	f(name, name)
	f(tags.And(name, stat), name)
	f(tags.And(tags.And(name, app), tags.And(stat, pct)), tags.And(name, app))
	f(tags.And(name, tags.Not(tags.Eq(StatisticKey, "count"))), name)
	f(tags.And(name, tags.Has(PercentileKey)), name)
	// Under a not, a term on the keys narrows: not(name and stat) widens
	// to everything, not(name or stat) to not(name).
	f(tags.Not(tags.And(name, stat)), tags.True())
	f(tags.Not(tags.Or(name, stat)), tags.Not(name))
	f(tags.Or(name, stat), tags.True())
	f(stat, tags.True())
}

func TestPercentileBounds(t *testing.T) {
	t.Parallel()
	q := tags.And(tags.Eq("name", "lat"), tags.Eq(StatisticKey, "percentile"))
	g := &GroupBy{Agg: &Aggregate{Fn: Sum, Query: q, Offset: 60_000}, Keys: []string{PercentileKey, "app"}}
	b := NewPercentiles(g, []float64{99}).Bounds()
	for _, tc := range []struct {
		got  DataExpr
		want string
	}{
		{b.Min, "name,lat,:eq,statistic,min,:eq,:and,:min,(,app,),:by,1m,:offset"},
		{b.Max, "name,lat,:eq,statistic,max,:eq,:and,:max,(,app,),:by,1m,:offset"},
		{b.Count, "name,lat,:eq,statistic,(,max,min,),:in,:and,:count,(,app,statistic,),:by,1m,:offset"},
	} {
		if got := tc.got.String(); got != tc.want {
			t.Errorf("bound = %s, want %s", got, tc.want)
		}
	}
	// Without user keys the bounds are plain aggregates.
	p := NewPercentiles(&GroupBy{Agg: &Aggregate{Fn: Sum, Query: q}, Keys: []string{PercentileKey}}, []float64{50})
	if got, want := p.Bounds().Max.String(), "name,lat,:eq,statistic,max,:eq,:and,:max"; got != want {
		t.Errorf("ungrouped max = %s, want %s", got, want)
	}
}
