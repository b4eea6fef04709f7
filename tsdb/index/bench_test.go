package index

import (
	"fmt"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// benchIndex builds the tsdbtest workload shape: 100k series, 50 names, 100 apps
// (1/10 starting with "api"), 2000 nodes, 3 regions, 5 statuses.
func benchIndex(b *testing.B) *Index {
	b.Helper()
	ix := New()
	for i := range 100000 {
		k := i / 50
		node := k % 2000
		app := node % 100
		s := tags.New("name", fmt.Sprintf("metric_%02d", i%50),
			"app", fmt.Sprintf("%s%02d", []string{"api", "www", "db", "cache", "mq", "auth", "search", "recs", "play", "edge"}[app%10], app/10),
			"node", fmt.Sprintf("i-%08x", node*2654435761),
			"region", fmt.Sprint("r", node/100%3), "status", fmt.Sprint(200+(k/2000+node)%5))
		ix.Add(uint32(i), s)
	}
	return ix
}

func BenchmarkSelect(b *testing.B) {
	ix := benchIndex(b)
	for _, tc := range []struct {
		name string
		q    *tags.Query
	}{
		{"eq", tags.Eq("name", "metric_07")},
		{"eq-and-prefix", tags.And(tags.Eq("name", "metric_07"), tags.Starts("app", "api"))},
		{"regex-no-prefix", tags.And(tags.Eq("name", "metric_07"), must(tags.Re("node", ".*ff")))},
		{"true", tags.True()},
		{"not", tags.And(tags.Eq("name", "metric_07"), tags.Not(tags.Eq("region", "r1")))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix.Select(tc.q)
			}
		})
	}
}

func BenchmarkValues(b *testing.B) {
	ix := benchIndex(b)
	matched := ix.Select(tags.Eq("name", "metric_07"))
	b.ReportAllocs()
	for b.Loop() {
		ix.Values("node", matched, "", 1000)
	}
}
