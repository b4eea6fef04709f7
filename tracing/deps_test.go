package tracing_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

const mod = "github.com/sextant-dev/sextant/"

// TestDeps enforces STYLE.md §2 for the tracing packages: the contract
// knows only pdata; the store alone imports Pebble; the HTTP face sees
// the store through the contract.
func TestDeps(t *testing.T) {
	t.Parallel()
	tsdbtest.CheckDeps(t, mod+"tracing", func(d string) string {
		if strings.HasPrefix(d, mod) && d != mod+"tracing" && d != mod+"lib/partial" {
			return "the contract imports nothing of this module but lib/partial (the context marker it shares with tsdb)"
		}
		if strings.Contains(d, "pebble") {
			return "the contract has no implementation"
		}
		return ""
	})
	for _, pkg := range []string{"tracing/spanstore", "tracing/api"} {
		tsdbtest.CheckDeps(t, mod+pkg, func(d string) string {
			for _, up := range []string{"query", "alerting", "ingest", "ui", "cmd", "tsdb"} {
				if d == mod+"tsdb/fatal" && pkg == "tracing/spanstore" {
					continue // the stores' shared handling of Pebble's fatal errors (stdlib only)
				}
				if d == mod+up || strings.HasPrefix(d, mod+up+"/") {
					return "tracing imports nothing beside or above it"
				}
			}
			if strings.HasPrefix(d, mod+"lib/") && d != mod+"lib/wire" && d != mod+"lib/partial" {
				return "the server uses lib's registry only"
			}
			if pkg == "tracing/api" && (strings.Contains(d, "pebble") || d == mod+"tracing/spanstore") {
				return "the API sees the store through the contract"
			}
			return ""
		})
	}
	// The store does not speak HTTP.
	for _, d := range tsdbtest.Imports(t, mod+"tracing/spanstore") {
		if strings.HasPrefix(d, "net/http") {
			t.Errorf("tracing/spanstore imports %s", d)
		}
	}
}
