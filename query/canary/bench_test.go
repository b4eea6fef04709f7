package canary

import (
	"context"
	"fmt"
	"testing"

	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// BenchmarkJudge judges 20 metrics over 3 h at 60 s: each metric an
// average over 5 nodes of the baseline and 5 of the canary (200 series in
// all), so 40 evaluations of 180 steps, 20 Mann-Whitney tests and 20
// Hodges-Lehmann estimates over 32 400 differences each.
func BenchmarkJudge(b *testing.B) {
	const (
		metrics = 20
		nodes   = 5
		n       = 180
	)
	var inputs []querytest.Input
	start := now - (n-1)*step
	for m := range metrics {
		for _, cluster := range []string{"api-baseline", "api-canary"} {
			factor := 1.0
			if cluster == "api-canary" && m%4 == 0 {
				factor = 1.3
			}
			for node := range nodes {
				inputs = append(inputs, querytest.Input{
					Tags: tags.New("name", fmt.Sprintf("metric%02d", m), "nf.app", "api", "nf.cluster", cluster,
						"nf.node", fmt.Sprintf("%s-%d", cluster, node)),
					Start:  start,
					Values: noisy(uint64(m*100+node), n, 100*factor, 0.05),
				})
			}
		}
	}
	j := newJudge(b, querytest.Open(b, step, now, inputs...))
	req := &Request{Baseline: "nf.cluster,api-baseline,:eq", Canary: "nf.cluster,api-canary,:eq", S: "e-3h", E: "now", Step: "60s"}
	for m := range metrics {
		req.Metrics = append(req.Metrics, Metric{Name: fmt.Sprintf("metric%02d", m),
			Q: fmt.Sprintf("name,metric%02d,:eq,:avg", m), Direction: Increase})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a, err := j.Judge(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if a.Metrics[0].Classification != High || a.Metrics[1].Classification != Pass || a.Metrics[0].Baseline.Count != n {
			b.Fatalf("unexpected answer: %+v", a.Metrics[:2])
		}
	}
}
