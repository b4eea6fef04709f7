package lib

import (
	"math"
	"testing"
)

func TestPercentileBuckets(t *testing.T) {
	limits, _ := percentileLimits()
	if len(limits) != NumPercentileBuckets {
		t.Fatalf("%d buckets, want %d", len(limits), NumPercentileBuckets)
	}
	// Known limits (Spectator's PercentileBuckets).
	for i, want := range map[int]int64{0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 13: 14, 14: 16, 15: 21, 22: 56, 23: 64, 275: math.MaxInt64} {
		if got := PercentileBucketLimit(i); got != want {
			t.Errorf("limit %d = %d, want %d", i, got, want)
		}
	}
	for i := 1; i < len(limits); i++ {
		if limits[i] <= limits[i-1] {
			t.Fatalf("limits not increasing at %d", i)
		}
	}
	// Spectator's indexOf: a value falls in the first bucket whose limit
	// is above it, found arithmetically.
	f := func(v int64, want int) {
		t.Helper()
		if got := PercentileBucketIndex(v); got != want {
			t.Errorf("PercentileBucketIndex(%d) = %d, want %d", v, got, want)
		}
	}
	f(-5, 0)
	f(0, 0)
	f(1, 1)
	f(4, 4)
	f(5, 5)
	f(14, 14)
	f(16, 15)
	f(20, 15)
	f(21, 16)
	f(math.MaxInt64, 275)
	// Against a search: the first limit above v, or one more for the
	// values Spectator's arithmetic puts into the next power of four's
	// first bucket (just below a power of four).
	for v := int64(5); v < 1<<58; v = v*13/10 + 1 {
		want := 0
		for limits[want] <= v {
			want++
		}
		if got := PercentileBucketIndex(v); got != want && got != want+1 {
			t.Fatalf("PercentileBucketIndex(%d) = %d, search says %d", v, got, want)
		}
	}
	if got := PercentileTag('T', 42); got != "T002A" {
		t.Errorf("PercentileTag = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { PercentileBucketIndex(123456789) }); n != 0 {
		t.Errorf("PercentileBucketIndex allocates %v", n)
	}
}
