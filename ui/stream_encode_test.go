package ui

import (
	"math"
	"testing"

	"github.com/sextant-dev/sextant/query/live"
)

// TestLineCache: the lines of one update are encoded once and shared; the
// message a subscriber gets from the shared encoding is the one it would
// encode itself; another update is encoded afresh, and eviction keeps the
// cache bounded.
func TestLineCache(t *testing.T) {
	t.Parallel()
	update := func(v float64) []live.Line {
		return []live.Line{
			{ID: "a", Label: "sum(x)", Tags: map[string]string{"name": "x", "<k>": "\"v\""}, Start: 60_000, End: 120_000, Step: 60_000, Values: []float64{v}},
			{ID: "b", Label: "y", Start: 60_000, End: 180_000, Step: 60_000, Values: []float64{math.NaN(), math.Inf(1)}},
		}
	}
	var lc lineCache
	u1 := update(1.5)
	t1 := lc.tails(u1)
	if t2 := lc.tails(u1); &t2[0][0] != &t1[0][0] {
		t.Errorf("the same update was encoded twice")
	}
	for i := range u1 {
		for _, sub := range []string{"s1", "\"quoted\""} {
			got := string(append(appendTimeseriesHead(nil, sub), t1[i]...))
			if want := string(appendTimeseries(nil, sub, &u1[i])); got != want {
				t.Errorf("line %d for %s: shared encoding\n %s\nwant\n %s", i, sub, got, want)
			}
		}
	}
	u2 := update(2.5)
	if t2 := lc.tails(u2); string(t2[0]) == string(t1[0]) {
		t.Errorf("another update got the first one's encoding: %s", t2[0])
	}
	for range 3 * lineCacheSize {
		lc.tails(update(3))
	}
	if n := len(lc.m); n > lineCacheSize {
		t.Errorf("%d cached updates, limit is %d", n, lineCacheSize)
	}
}
