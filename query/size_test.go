package query

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
)

// TestExpressionSizeLimit is issue #17 item 4: `:dup,:add` repeated N
// times doubled the work N times (seconds at N=18, never at N=20). Past
// the size limit the program is refused at once with a *stack.Error naming
// the limit; below it, parsing stays fast.
func TestExpressionSizeLimit(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"name,a,:eq,:sum", "name,a,:eq", "1"} {
		for _, op := range []string{":add", ":and", ":or"} {
			if op != ":add" && base != "name,a,:eq" {
				continue
			}
			p := base + strings.Repeat(",:dup,"+op, 40)
			t0 := time.Now()
			_, err := Parse(p, ParseOptions{})
			d := time.Since(t0)
			var se *stack.Error
			var ze *expr.SizeError
			if base == "1" {
				// Constants fold: 1,:dup,:add is 2, no tree grows.
				if err != nil {
					t.Errorf("Parse(%.40q...) = %v", p, err)
				}
			} else if !errors.As(err, &se) || !errors.As(err, &ze) || !strings.Contains(err.Error(), "max-expression-size") {
				t.Errorf("Parse(%.40q...) = %v, want a size error", p, err)
			}
			if d > time.Second {
				t.Errorf("Parse(%.40q...) took %v", p, d)
			}
		}
	}
	p := "name,a,:eq,:sum" + strings.Repeat(",:dup,:add", 8)
	if _, err := Parse(p, ParseOptions{}); err != nil {
		t.Errorf("Parse of 2^8 nodes: %v", err)
	}
}
