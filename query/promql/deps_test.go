package promql_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps keeps query/promql on level L4 (STYLE.md §2): it sees storage
// only through the tsdb contract, reuses the query packages below it, and
// does not speak HTTP (query/api does).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	allowed := []string{"query", "query/eval", "query/expr", "query/stack", "query/promql", "tsdb", "tsdb/tags", "lib", "lib/wire", "lib/partial"}
	tsdbtest.CheckDeps(t, mod+"query/promql", func(d string) string {
		if !strings.HasPrefix(d, mod) {
			return ""
		}
		for _, a := range allowed {
			if d == mod+a {
				return ""
			}
		}
		return "not a lower layer of query/promql"
	})
	for _, d := range tsdbtest.Imports(t, mod+"query/promql") {
		if strings.HasPrefix(d, "net/http") {
			t.Errorf("query/promql imports %s: only query/api speaks HTTP", d)
		}
	}
}
