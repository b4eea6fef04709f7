package promql_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// BenchmarkRangeFunctions evaluates in-process what a dashboard of
// counters asks: a grouped sum of rates (not pushed down: each series'
// window is read) and a grouped sum pushed into the store, over 2 000
// counters of 100 apps, 6 h at 60 s, at a 60 s step.
func BenchmarkRangeFunctions(b *testing.B) {
	const n, samples = 2000, 360
	inputs := make([]querytest.Input, n)
	for i := range inputs {
		vals := make([]float64, samples)
		for j := range vals {
			vals[j] = float64(j*(i%7+1)) * 60
		}
		inputs[i] = querytest.Input{Start: t0, Values: vals,
			Tags: tags.New("name", "requests", "app", fmt.Sprintf("app-%02d", i%100), "node", fmt.Sprint(i), "atlas.dstype", "counter")}
	}
	end := t0 + (samples-1)*step
	store := querytest.Open(b, step, end, inputs...)
	en, err := promql.New(store, promql.Options{StorageStep: step})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{`sum by (app) (rate(requests[5m]))`, `sum by (app) (requests)`} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := en.Range(context.Background(), q, t0, end, step)
				if err != nil || len(res.Series) != 100 {
					b.Fatalf("%s: %v, %d series", q, err, len(res.Series))
				}
			}
		})
	}
}
