package alerting_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const mod = "github.com/sextant-dev/sextant/"

// TestDeps enforces the levels of STYLE.md §2 for the alerting packages:
// alerting sees the query facade, the live evaluator and the tsdb
// contract; notify and api see alerting (and HTTP); nothing sees a store
// implementation.
func TestDeps(t *testing.T) {
	t.Parallel()
	allowed := map[string][]string{
		"alerting":        {"alerting", "query", "query/", "tsdb", "tsdb/tags", "lib"},
		"alerting/notify": {"alerting", "alerting/notify", "query", "query/", "tsdb", "tsdb/tags", "lib"},
		"alerting/api":    {"alerting", "alerting/api", "query", "query/", "tsdb", "tsdb/tags", "lib"},
	}
	for pkg, ok := range allowed {
		tsdbtest.CheckDeps(t, mod+pkg, func(d string) string {
			if !strings.HasPrefix(d, mod) {
				return ""
			}
			rel := strings.TrimPrefix(d, mod)
			if rel == "query/api" || strings.HasPrefix(rel, "query/chart") {
				return "alerting does not use the query HTTP API or charts"
			}
			for _, a := range ok {
				if rel == a || strings.HasSuffix(a, "/") && strings.HasPrefix(rel, a) || a == "lib" && strings.HasPrefix(rel, "lib") {
					return ""
				}
			}
			return "not a lower level of " + pkg
		})
	}
	for _, d := range tsdbtest.Imports(t, mod+"alerting") {
		if strings.HasPrefix(d, "net/http") {
			t.Errorf("alerting imports %s: only alerting/notify and alerting/api speak HTTP", d)
		}
	}
}
