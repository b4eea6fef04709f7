package kafkalog

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps: the log sees the stores through the tsdb and tracing contracts
// only, and knows no HTTP (STYLE.md §2).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	tsdbtest.CheckDeps(t, mod+"ingest/kafkalog", func(d string) string {
		for _, impl := range []string{"tsdb/db", "tsdb/head", "tsdb/disk", "tsdb/index", "tsdb/chunk", "tsdb/wal", "tsdb/norm",
			"tracing/spanstore", "query", "alerting", "ui", "cmd"} {
			if d == mod+impl || strings.HasPrefix(d, mod+impl+"/") {
				return "the log sees the stores through their contracts only"
			}
		}
		if d == mod+"ingest" {
			return "the handlers use the log, not the other way round"
		}
		if d == "net/http" || strings.Contains(d, "pebble") {
			return "not the log's dependency"
		}
		return ""
	})
}
