package live_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps: the live evaluator sits on level L4 (STYLE.md §2): it sees the
// store only through the tsdb contract and speaks no HTTP.
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	allowed := []string{"query/live", "lib", "query", "query/eval", "query/expr", "query/stack", "tsdb", "tsdb/tags"}
	tsdbtest.CheckDeps(t, mod+"query/live", func(d string) string {
		if strings.HasPrefix(d, "net/http") {
			return "the live evaluator knows expressions and steps, not connections"
		}
		if !strings.HasPrefix(d, mod) {
			return ""
		}
		for _, a := range allowed {
			if d == mod+a || (a == "lib" && strings.HasPrefix(d, mod+"lib/")) {
				return ""
			}
		}
		return "not a lower layer of query/live"
	})
}
