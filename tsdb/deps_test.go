package tsdb_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const mod = "github.com/sextant-dev/sextant/"

// TestDeps enforces the dependency direction of STYLE.md §2 for the store.
func TestDeps(t *testing.T) {
	t.Parallel()
	// The contract knows only tag sets.
	tsdbtest.CheckDeps(t, mod+"tsdb", func(d string) string {
		// tsdb/tags runs Java-only regex syntax (lookarounds) with regexp2.
		// lib/partial is the context marker it shares with the tracing contract.
		if d != mod+"tsdb" && d != mod+"tsdb/tags" && d != mod+"lib/partial" && !strings.HasPrefix(d, "github.com/dlclark/regexp2") {
			return "the contract package depends only on tsdb/tags (and lib/partial)"
		}
		return ""
	})
	for _, pkg := range []string{"tsdb/tags", "tsdb/fatal", "tsdb/chunk", "tsdb/index", "tsdb/norm", "tsdb/wal", "tsdb/head", "tsdb/disk", "tsdb/db"} {
		tsdbtest.CheckDeps(t, mod+pkg, func(d string) string {
			for _, up := range []string{"query", "alerting", "ingest", "ui", "tracing", "cmd"} {
				if strings.HasPrefix(d, mod+up) {
					return "the store imports nothing above it"
				}
			}
			if strings.Contains(d, "cockroachdb/pebble") && pkg != "tsdb/disk" && pkg != "tsdb/db" &&
				!(pkg == "tsdb/wal" && (strings.Contains(d, "pebble/v2/vfs") || strings.Contains(d, "pebble/v2/internal"))) {
				return "only tsdb/disk imports pebble (the WAL uses its vfs.FS, to share the store's)"
			}
			// lib's registry brings lib/wire (ids and tags) along, the
			// contract lib/partial; anything else under lib (tracing, the
			// publisher's HTTP) stays out.
			if strings.HasPrefix(d, mod+"lib/") && d != mod+"lib/wire" && d != mod+"lib/partial" {
				return "the server uses lib's registry only"
			}
			return ""
		})
	}
	// The store does not know that HTTP exists (Pebble's error library
	// pulls net/http in transitively; the store's own code must not).
	for _, d := range tsdbtest.Imports(t, mod+"tsdb/...") {
		if strings.HasPrefix(d, "net/http") {
			t.Errorf("a tsdb package imports %s", d)
		}
	}
}
