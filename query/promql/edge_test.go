package promql_test

import (
	"context"
	"testing"

	"github.com/sextant-dev/sextant/query/promql"
)

// TestExtremeTimes evaluates at the ends of the accepted time range: an
// empty answer or a user error, never a panic or a server fault.
func TestExtremeTimes(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	const far = int64(1) << 62 / 1000
	for _, at := range []int64{-far, far, 0, -1} {
		for _, q := range []string{`cpu`, `rate(requests[5m])`, `sum by (node) (cpu)`, `cpu offset 1w`, `name,cpu,:eq,:sum`} {
			if _, err := en.Instant(context.Background(), q, at); err != nil && promql.Classify(err).Type == promql.Internal {
				t.Errorf("Instant(%q, %d): internal error %v", q, at, err)
			}
		}
	}
	if res, err := en.Range(context.Background(), `cpu`, far-10*step, far, step); err != nil || len(res.Series) != 0 {
		t.Errorf("Range at the far end = %+v, %v; want nothing", res, err)
	}
}
