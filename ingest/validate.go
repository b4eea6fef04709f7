package ingest

import (
	"fmt"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Validation of what OTLP carries that the store could not keep
// faithfully: each function returns "" for a good item, or the rejection
// reason and message; callers reject the item through their protocol's
// partial-success path (issue #17 item 8).

// problem is why an item is rejected: a reason (the rejection counter's
// tag) and a message; the zero problem means none.
type problem struct{ reason, msg string }

// maxOTLPTime is the last OTLP timestamp (ns) that fits the store's signed
// 64-bit times; later ones used to wrap to negative times (a far-future
// span stored at 1970, a metric "too old: timestamp 0").
const maxOTLPTime = pcommon.Timestamp(math.MaxInt64)

// checkTime rejects a timestamp that does not fit a signed 64-bit ns time.
func checkTime(what string, t pcommon.Timestamp) problem {
	if t > maxOTLPTime {
		return problem{ReasonTimestamp, fmt.Sprintf("%s %d ns is beyond the year 2262", what, uint64(t))}
	}
	return problem{}
}

// checkSpan rejects a span with an unusable time.
func checkSpan(s ptrace.Span) problem {
	if p := checkTime("start time", s.StartTimestamp()); p.reason != "" {
		return p
	}
	if p := checkTime("end time", s.EndTimestamp()); p.reason != "" {
		return p
	}
	if s.EndTimestamp() < s.StartTimestamp() {
		return problem{ReasonTimestamp, fmt.Sprintf("span ends (%d ns) before it starts (%d ns)", uint64(s.EndTimestamp()), uint64(s.StartTimestamp()))}
	}
	return problem{}
}

// checkHistogram rejects an explicit-bucket histogram whose bucket counts
// do not match its bounds (n bounds make n+1 buckets), or whose bounds do
// not increase.
func checkHistogram(dp pmetric.HistogramDataPoint) problem {
	bounds, counts := dp.ExplicitBounds(), dp.BucketCounts()
	if counts.Len() != 0 && counts.Len() != bounds.Len()+1 {
		return problem{ReasonValue, fmt.Sprintf("histogram has %d bucket counts for %d bounds, want %d", counts.Len(), bounds.Len(), bounds.Len()+1)}
	}
	for i := 1; i < bounds.Len(); i++ {
		if !(bounds.At(i) > bounds.At(i-1)) {
			return problem{ReasonValue, fmt.Sprintf("histogram bounds do not increase at %d: %v after %v", i, bounds.At(i), bounds.At(i-1))}
		}
	}
	return checkTime("timestamp", dp.Timestamp())
}

// Exponential histogram scales the OTLP spec allows.
const minExpScale, maxExpScale = -10, 20

// checkExpHistogram rejects an exponential histogram with a scale outside
// the spec's range.
func checkExpHistogram(dp pmetric.ExponentialHistogramDataPoint) problem {
	if s := dp.Scale(); s < minExpScale || s > maxExpScale {
		return problem{ReasonValue, fmt.Sprintf("exponential histogram scale %d is outside %d to %d", s, minExpScale, maxExpScale)}
	}
	return checkTime("timestamp", dp.Timestamp())
}

// checkMonotonicDelta rejects a negative increment of a monotonic sum.
func checkMonotonicDelta(v float64) problem {
	if v < 0 {
		return problem{ReasonValue, fmt.Sprintf("monotonic delta sum has a negative increment %v", v)}
	}
	return problem{}
}
