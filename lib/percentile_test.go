package lib

import (
	"math"
	"testing"
)

func TestPercentileBuckets(t *testing.T) {
	t.Parallel()
	limits := percentileLimits()
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
	f := func(v int64, want int) {
		t.Helper()
		if got := PercentileBucketIndex(v); got != want {
			t.Errorf("PercentileBucketIndex(%d) = %d, want %d", v, got, want)
		}
	}
	f(-5, 0)
	f(0, 0)
	f(1, 0)
	f(4, 3)
	f(15, 14)
	f(16, 14)
	f(17, 15)
	f(math.MaxInt64, 275)
	if got := PercentileTag('T', 42); got != "T002A" {
		t.Errorf("PercentileTag = %q", got)
	}
}
