package ui_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps enforces STYLE.md §2 for the UI: it sees the store only
// through the tsdb contract and never reaches into cmd.
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	tsdbtest.CheckDeps(t, mod+"ui", func(d string) string {
		for _, low := range []string{"tsdb/db", "tsdb/head", "tsdb/disk", "tsdb/index", "tsdb/chunk", "tracing/spanstore", "cmd"} {
			if strings.HasPrefix(d, mod+low) {
				return "the UI uses contracts, not implementations"
			}
		}
		if strings.Contains(d, "cockroachdb/pebble") {
			return "only the stores import pebble"
		}
		return ""
	})
}
