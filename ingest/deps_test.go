package ingest

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps: ingest writes through the tsdb contract only (STYLE.md §2).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	tsdbtest.CheckDeps(t, mod+"ingest", func(d string) string {
		for _, impl := range []string{"tsdb/db", "tsdb/head", "tsdb/disk", "tsdb/index", "tsdb/chunk", "tsdb/wal", "tsdb/norm",
			"query", "alerting", "ui", "cmd"} {
			if d == mod+impl || strings.HasPrefix(d, mod+impl+"/") {
				return "ingest sees the store through the tsdb contract only"
			}
		}
		if strings.Contains(d, "pebble") || strings.Contains(d, "gorilla/websocket") {
			return "not ingest's dependency"
		}
		return ""
	})
}
