package lib

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The percentile buckets of Spectator's PercentileBuckets: 1, 2, 3, then
// for each power of four 4^k (k = 1..30) the values 4^k, 4^k + d, ... below
// 4^(k+1) − d with d = 4^k/3 (integer division), and finally MaxInt64:
// 276 buckets whose widths grow with their values, so that a percentile
// estimated from bucket counts is within a few percent. Percentile timers
// count nanoseconds in them; the stack language's :percentiles reads the
// counts back (asl.md §2.9).
var percentileLimits = sync.OnceValues(func() ([]int64, [32]int) {
	limits := []int64{1, 2, 3}
	var powerOf4Index [32]int
	for exp := 2; exp < 64; exp += 2 {
		powerOf4Index[exp/2] = len(limits)
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
	return append(limits, math.MaxInt64), powerOf4Index
})

// NumPercentileBuckets is the number of percentile buckets.
const NumPercentileBuckets = 276

// PercentileBucketLimit returns the upper limit of bucket i.
func PercentileBucketLimit(i int) int64 {
	limits, _ := percentileLimits()
	return limits[i]
}

// PercentileBucketIndex returns the bucket of v as Spectator's
// PercentileBuckets.indexOf computes it: v up to 0 is bucket 0, up to 4
// bucket v, beyond from the power of four below v and the bucket width
// there, without a search.
func PercentileBucketIndex(v int64) int {
	switch {
	case v <= 0:
		return 0
	case v <= 4:
		return int(v)
	}
	limits, powerOf4Index := percentileLimits()
	shift := 63 - bits.LeadingZeros64(uint64(v))
	prevPowerOf4 := int64(1) << shift
	if shift%2 != 0 {
		shift--
		prevPowerOf4 >>= 1
	}
	delta := prevPowerOf4 / 3
	pos := int((v-prevPowerOf4)/delta) + powerOf4Index[shift/2]
	if pos >= len(limits)-1 {
		return len(limits) - 1
	}
	return pos + 1
}

// PercentileTag returns the value of the percentile tag of bucket i: the
// prefix (T for timers, whose buckets count nanoseconds, D for
// distribution summaries) and the index as four upper-case hex digits.
func PercentileTag(prefix byte, i int) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{prefix, hex[i>>12&15], hex[i>>8&15], hex[i>>4&15], hex[i&15]})
}

// buckets counts values per percentile bucket between two bucket indexes.
type buckets struct {
	lo, hi int // bucket range [lo, hi]
	counts []atomic.Int64
	last   []int64 // counts at the previous step; owned by Measure
	tags   []string
}

func newBuckets(prefix byte, min, max int64) buckets {
	lo, hi := PercentileBucketIndex(min), PercentileBucketIndex(max)
	if hi < lo {
		lo, hi = hi, lo
	}
	b := buckets{lo: lo, hi: hi, counts: make([]atomic.Int64, hi-lo+1), last: make([]int64, hi-lo+1), tags: make([]string, hi-lo+1)}
	for i := range b.tags {
		b.tags[i] = PercentileTag(prefix, lo+i)
	}
	return b
}

func (b *buckets) record(v int64) {
	i := min(max(PercentileBucketIndex(v), b.lo), b.hi) - b.lo
	b.counts[i].Add(1)
}

// measure reports each used bucket's rate as a counter tagged
// statistic=percentile and percentile=<tag>.
func (b *buckets) measure(e *emitter, id Id) {
	for i := range b.counts {
		c := b.counts[i].Load()
		if c == 0 {
			continue // never used: no series
		}
		e.rate(id.WithTags("statistic", StatPercentile, "percentile", b.tags[i]), "", float64(c-b.last[i]))
		b.last[i] = c
	}
}

// PercentileTimer is a Timer that also counts durations in percentile
// buckets, so the stack language's :percentiles can estimate any
// percentile across instances. Each bucket in use is a series: keep the
// range narrow (PercentileTimerFor) for timers with many tag combinations.
type PercentileTimer struct {
	Timer
	buckets buckets
}

func newPercentileTimer(id Id, min, max time.Duration) *PercentileTimer {
	t := &PercentileTimer{Timer: *newTimer(id)}
	t.buckets = newBuckets('T', int64(min), int64(max))
	return t
}

// Record adds one duration; negative durations are ignored.
func (t *PercentileTimer) Record(d time.Duration) {
	if d < 0 {
		return
	}
	t.Timer.record(int64(d))
	t.buckets.record(int64(d))
	t.touch(t)
}

// Time runs fn and records how long it took.
func (t *PercentileTimer) Time(fn func()) {
	start := time.Now()
	defer func() { t.Record(time.Since(start)) }()
	fn()
}

func (t *PercentileTimer) measure(e *emitter) bool {
	active := t.Timer.measure(e)
	t.buckets.measure(e, t.id)
	return active
}

// PercentileDistributionSummary is a DistributionSummary that also counts
// amounts in percentile buckets (tag values D00XX), for :percentiles.
type PercentileDistributionSummary struct {
	DistributionSummary
	buckets buckets
}

func newPercentileDistributionSummary(id Id, min, max int64) *PercentileDistributionSummary {
	d := &PercentileDistributionSummary{DistributionSummary: *newDistributionSummary(id)}
	d.buckets = newBuckets('D', min, max)
	return d
}

// Record adds one amount; negative and NaN amounts are ignored.
func (d *PercentileDistributionSummary) Record(amount float64) {
	if !(amount >= 0) || math.IsInf(amount, 1) {
		return
	}
	d.DistributionSummary.record(amount)
	d.buckets.record(int64(math.Min(amount, math.MaxInt64/2)))
	d.touch(d)
}

func (d *PercentileDistributionSummary) measure(e *emitter) bool {
	active := d.DistributionSummary.measure(e)
	d.buckets.measure(e, d.id)
	return active
}
