package lib

import (
	"fmt"
	"math"
	"sort"
	"sync"
)

// The percentile buckets of Spectator's PercentileBuckets: 1, 2, 3, then
// for each power of four 4^k (k = 1..30) the values 4^k, 4^k + d, ... below
// 4^(k+1) − d with d = 4^k/3 (integer division), and finally MaxInt64:
// 276 buckets whose widths grow with their values, so that a percentile
// estimated from bucket counts is within a few percent. Bucket i holds the
// values v with limit(i−1) < v ≤ limit(i). Percentile timers count
// nanoseconds in them; the stack language's :percentiles reads the counts
// back (asl.md §2.9).
var percentileLimits = sync.OnceValue(func() []int64 {
	limits := []int64{1, 2, 3}
	for exp := 2; exp < 64; exp += 2 {
		cur := int64(1) << exp
		delta := cur / 3
		// For exp = 62 this overflows to a negative bound and adds nothing,
		// as in Spectator.
		next := cur<<2 - delta
		for cur < next {
			limits = append(limits, cur)
			cur += delta
		}
	}
	return append(limits, math.MaxInt64)
})

// NumPercentileBuckets is the number of percentile buckets.
const NumPercentileBuckets = 276

// PercentileBucketLimit returns the upper limit of bucket i.
func PercentileBucketLimit(i int) int64 { return percentileLimits()[i] }

// PercentileBucketIndex returns the bucket of v: the first whose limit is
// at least v. Values up to 0 fall into bucket 0.
func PercentileBucketIndex(v int64) int {
	limits := percentileLimits()
	return sort.Search(len(limits), func(i int) bool { return limits[i] >= v })
}

// PercentileTag returns the value of the percentile tag of bucket i: the
// prefix (T for timers, whose buckets count nanoseconds, D for
// distribution summaries) and the index as four upper-case hex digits.
func PercentileTag(prefix byte, i int) string {
	return fmt.Sprintf("%c%04X", prefix, i)
}
