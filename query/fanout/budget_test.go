package fanout

import (
	"context"
	"errors"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
)

func TestCostHeader(t *testing.T) {
	t.Parallel()
	c := tsdb.Cost{Series: 12, Datapoints: 1 << 40, Bytes: 0}
	if got, ok := parseCost(formatCost(c)); !ok || got != c {
		t.Errorf("parseCost(formatCost(%+v)) = %+v, %v", c, got, ok)
	}
	for _, s := range []string{"", "1 2", "1 2 3 4", "1 -2 3", "a b c", "1 2 99999999999999999999"} {
		if _, ok := parseCost(s); ok {
			t.Errorf("parseCost(%q) accepted", s)
		}
	}
}

// FuzzParseCost: any header value parses to a cost or is refused; a cost
// parsed formats back to a value that parses to it.
func FuzzParseCost(f *testing.F) {
	f.Add("40 2400 1048576")
	f.Add("0 0 0")
	f.Add(" 1\t2  3 ")
	f.Add("1 2")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseCost(s)
		if !ok {
			return
		}
		if again, ok := parseCost(formatCost(c)); !ok || again != c {
			t.Fatalf("%q: %+v formats to %q, which parses to %+v, %v", s, c, formatCost(c), again, ok)
		}
	})
}

// TestBudgetSettles walks the budget through rounds: a round settles once
// every node told its cost or ended, the total of the costs is checked
// against the limits, and a node's refusal waits for the total.
func TestBudgetSettles(t *testing.T) {
	t.Parallel()
	limits := tsdb.Cost{Series: 100, Datapoints: 1000}
	limitOf := func(err error) (string, int) {
		var le *tsdb.LimitError
		if !errors.As(err, &le) {
			return "", 0
		}
		return le.Limit, le.Got
	}

	t.Run("over the total", func(t *testing.T) {
		b := newBudget(limits)
		ctx, stop := b.start(context.Background())
		defer stop()
		b.startRound([]string{"a", "b", "c"})
		b.costed("a", tsdb.Cost{Series: 40, Datapoints: 400})
		b.costed("b", tsdb.Cost{Series: 40, Datapoints: 400})
		if b.err() != nil || ctx.Err() != nil {
			t.Fatalf("settled before c told its cost: %v", b.err())
		}
		b.costed("c", tsdb.Cost{Series: 30, Datapoints: 300})
		if l, got := limitOf(b.err()); l != "max-series-per-query" || got != 110 {
			t.Errorf("err = %v, want max-series-per-query with 110", b.err())
		}
		if !errors.Is(context.Cause(ctx), b.err()) {
			t.Errorf("the read's context ended with %v", context.Cause(ctx))
		}
	})

	t.Run("a refusal names the total", func(t *testing.T) {
		b := newBudget(limits)
		_, stop := b.start(context.Background())
		defer stop()
		b.startRound([]string{"a", "b"})
		b.costed("a", tsdb.Cost{Series: 101})
		b.ended("a", &tsdb.LimitError{Limit: "max-series-per-query", Max: 100, Got: 101})
		if b.err() != nil {
			t.Fatalf("settled before b told its cost: %v", b.err())
		}
		b.ended("b", errors.New("connection reset")) // b failed without a cost
		if l, got := limitOf(b.err()); l != "max-series-per-query" || got != 101 {
			t.Errorf("err = %v, want max-series-per-query with 101", b.err())
		}
	})

	t.Run("a node's own limit", func(t *testing.T) {
		b := newBudget(limits)
		_, stop := b.start(context.Background())
		defer stop()
		b.startRound([]string{"a", "b"})
		b.costed("a", tsdb.Cost{Series: 10})
		b.costed("b", tsdb.Cost{Series: 10})
		if b.err() != nil {
			t.Fatal(b.err())
		}
		// Within the query's limits, refused by a node's lower ones.
		own := &tsdb.LimitError{Limit: "max-series-per-query", Max: 5, Got: 10}
		b.ended("a", own)
		if !errors.Is(b.err(), own) {
			t.Errorf("err = %v, want the node's refusal", b.err())
		}
	})

	t.Run("failover", func(t *testing.T) {
		b := newBudget(limits)
		_, stop := b.start(context.Background())
		defer stop()
		b.startRound([]string{"a", "b"})
		b.costed("a", tsdb.Cost{Series: 60, Datapoints: 600})
		b.costed("b", tsdb.Cost{Series: 30, Datapoints: 300})
		b.ended("a", nil)
		b.ended("b", errors.New("connection reset")) // after its cost: not counted
		b.endRound()
		if b.err() != nil {
			t.Fatal(b.err())
		}
		if r := b.remaining(); *r != (tsdb.Cost{Series: 40, Datapoints: 400}) {
			t.Errorf("remaining after a's answer = %+v", *r)
		}
		// b's share goes to c, whose cost counts instead.
		b.startRound([]string{"c"})
		b.costed("c", tsdb.Cost{Series: 30, Datapoints: 300})
		b.ended("c", nil)
		b.endRound()
		if b.err() != nil {
			t.Errorf("within the limits: %v", b.err())
		}
		b.startRound([]string{"d"})
		b.costed("d", tsdb.Cost{Series: 11})
		if l, got := limitOf(b.err()); l != "max-series-per-query" || got != 101 {
			t.Errorf("err = %v, want max-series-per-query with 101", b.err())
		}
	})

	t.Run("no limits", func(t *testing.T) {
		var b *budget = newBudget(tsdb.Cost{})
		if b != nil {
			t.Fatal("a budget without limits")
		}
		ctx, stop := b.start(context.Background())
		defer stop()
		b.startRound([]string{"a"})
		b.costed("a", tsdb.Cost{Series: 1 << 40})
		b.ended("a", nil)
		b.endRound()
		if b.err() != nil || ctx.Err() != nil || b.remaining() != nil {
			t.Errorf("a nil budget enforced something")
		}
	})
}
