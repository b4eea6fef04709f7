package index

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// BenchmarkSelectIn selects one name among five apps (:in), the live
// evaluator's and the alert rules' benchmark shape, on the workload of
// benchIndex with ids laid out as the head makes them: the shard (one of
// 64) in the top bits, so that a posting list spreads over 64 roaring
// containers.
func BenchmarkSelectIn(b *testing.B) {
	ix := New()
	apps := []string{"api", "www", "db", "cache", "mq", "auth", "search", "recs", "play", "edge"}
	for i := range 100000 {
		k := i / 50
		node := k % 2000
		app := node % 100
		s := tags.New("name", fmt.Sprintf("metric_%02d", i%50),
			"app", fmt.Sprintf("%s%02d", apps[app%10], app/10),
			"node", fmt.Sprintf("i-%08x", node*2654435761))
		ix.Add(uint32(i%64)<<26|uint32(i/64), s)
	}
	in := tags.In("app", []string{"api00", "www00", "db00", "cache00", "mq00"})
	for _, tc := range []struct {
		name string
		q    *tags.Query
	}{
		{"eq-and-in", tags.And(tags.Eq("name", "metric_07"), in)},
		{"in-names-and-eq", tags.And(tags.Eq("app", "api00"), tags.In("name", []string{"metric_01", "metric_02", "metric_03", "metric_04", "metric_05"}))},
		{"in", in},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				ix.Select(tc.q)
			}
			// CPU time: on a machine shared with other builds the wall
			// clock also counts waiting for a core.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
