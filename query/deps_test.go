package query_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const mod = "github.com/sextant-dev/sextant/"

// TestDeps enforces the layering of STYLE.md §2 for the query packages.
func TestDeps(t *testing.T) {
	t.Parallel()
	only := func(allowed ...string) func(string) string {
		return func(d string) string {
			if !strings.HasPrefix(d, mod) {
				return ""
			}
			for _, a := range allowed {
				if d == mod+a {
					return ""
				}
			}
			return "not a lower layer of this package"
		}
	}
	// The contract brings lib/partial (its context marker) along.
	tsdbContract := []string{"tsdb", "tsdb/tags", "lib/partial"}
	tsdbtest.CheckDeps(t, mod+"query/stack", func(d string) string {
		if d != mod+"query/stack" {
			return "the interpreter uses the standard library only"
		}
		return ""
	})
	tsdbtest.CheckDeps(t, mod+"query/expr", only("query/expr", "query/stack", "tsdb/tags"))
	tsdbtest.CheckDeps(t, mod+"query/eval", only(append(tsdbContract, "query/eval", "query/expr", "query/stack")...))
	tsdbtest.CheckDeps(t, mod+"query/chart", only("query/chart"))
	tsdbtest.CheckDeps(t, mod+"query", only(append(tsdbContract, "query", "query/eval", "query/expr", "query/stack")...))
	tsdbtest.CheckDeps(t, mod+"query/api", func(d string) string {
		if d == mod+"tracing" {
			return "" // the tracing contract: exemplars and the span-metrics names
		}
		for _, store := range []string{"tsdb/db", "tsdb/head", "tsdb/disk", "tsdb/index", "tsdb/chunk", "tsdb/wal", "ingest", "ui", "alerting", "tracing", "cmd"} {
			if d == mod+store || strings.HasPrefix(d, mod+store+"/") {
				return "query sees storage only through the tsdb contract"
			}
		}
		return ""
	})
	// The fan-out querier sees the store nodes only through HTTP and the
	// contracts: no store, no language, no franz-go (the membership is
	// cmd's to wire in).
	tsdbtest.CheckDeps(t, mod+"query/fanout", func(d string) string {
		if strings.Contains(d, "franz-go") || strings.Contains(d, "cockroachdb/pebble") {
			return "the fan-out querier reads the stores over HTTP only"
		}
		if !strings.HasPrefix(d, mod) {
			return ""
		}
		switch strings.TrimPrefix(d, mod) {
		case "query/fanout", "tsdb", "tsdb/tags", "tracing":
			return ""
		}
		if strings.HasPrefix(d, mod+"lib") {
			return "" // the registry
		}
		return "query/fanout depends on the tsdb and tracing contracts only"
	})
	for _, pkg := range []string{"query", "query/stack", "query/expr", "query/eval", "query/chart"} {
		for _, d := range tsdbtest.Imports(t, mod+pkg) {
			if strings.HasPrefix(d, "net/http") {
				t.Errorf("%s imports %s: only query/api speaks HTTP", pkg, d)
			}
		}
	}
}
