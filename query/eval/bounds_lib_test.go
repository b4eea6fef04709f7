package eval

import (
	"testing"

	"github.com/sextant-dev/sextant/lib"
)

// TestBucketBoundsAreSpectators checks the evaluator's table of percentile
// bucket bounds against the client library's, which publishes the buckets:
// the evaluator may not import lib (STYLE §2), so it keeps its own copy,
// and this test is what keeps the two equal.
func TestBucketBoundsAreSpectators(t *testing.T) {
	t.Parallel()
	if len(bucketBounds) != lib.NumPercentileBuckets {
		t.Fatalf("%d bucket bounds, lib has %d", len(bucketBounds), lib.NumPercentileBuckets)
	}
	for i, b := range bucketBounds {
		if want := float64(lib.PercentileBucketLimit(i)); b != want {
			t.Errorf("bucketBounds[%d] = %v, lib says %v", i, b, want)
		}
	}
}
