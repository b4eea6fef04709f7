package cluster

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestDeps: the membership knows Kafka and the standard library; the rest
// of the binary reaches it through plain Go types (STYLE.md §1, §2).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = "github.com/sextant-dev/sextant/"
	tsdbtest.CheckDeps(t, mod+"ingest/cluster", func(d string) string {
		if strings.HasPrefix(d, mod) && d != mod+"ingest/cluster" && d != mod+"lib" && !strings.HasPrefix(d, mod+"lib/") {
			return "the membership depends on lib (metrics) only within this module"
		}
		if strings.Contains(d, "pebble") || strings.Contains(d, "gorilla/websocket") {
			return "not the membership's dependency"
		}
		return ""
	})
}
