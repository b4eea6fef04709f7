package canary

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps keeps the package on its level (STYLE.md §2): the query facade
// and the tsdb contract below it, the client library for self-metrics,
// and no HTTP (query/api serves the canary API and posts its webhooks).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	allowed := []string{"query", "query/eval", "query/expr", "query/stack", "query/canary", "tsdb", "tsdb/tags"}
	tsdbtest.CheckDeps(t, mod+"query/canary", func(d string) string {
		if !strings.HasPrefix(d, mod) || d == mod+"lib" || strings.HasPrefix(d, mod+"lib/") {
			return ""
		}
		for _, a := range allowed {
			if d == mod+a {
				return ""
			}
		}
		return "not a lower layer of query/canary"
	})
	for _, d := range tsdbtest.Imports(t, mod+"query/canary") {
		if strings.HasPrefix(d, "net/http") {
			t.Errorf("query/canary imports %s: only query/api speaks HTTP", d)
		}
	}
}
