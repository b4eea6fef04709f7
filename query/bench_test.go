package query_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// bench40 is a realistic 40-token expression: an error ratio per cluster,
// smoothed, with presentation.
const bench40 = "name,http.requests,:eq,nf.app,www,:eq,:and,status,5,:starts,:and,(,nf.cluster,),:by," +
	"name,http.requests,:eq,nf.app,www,:eq,:and,(,nf.cluster,),:by,:div,100,:mul,5,3,:rolling-mean,$nf.cluster,:legend,ff0000,:color,1,:axis,2,:lw"

// BenchmarkParse parses and plans (builds the data expressions the store
// will be asked for) a 40-token expression.
func BenchmarkParse(b *testing.B) {
	toks, err := stack.Tokenize(bench40)
	if err != nil || len(toks) != 40 {
		b.Fatalf("%d tokens: %v", len(toks), err)
	}
	b.ReportAllocs()
	for b.Loop() {
		styles, err := query.Parse(bench40, query.ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(expr.DataExprs(styles[0].Expr)) != 2 {
			b.Fatal("want two data expressions")
		}
	}
	b.ReportMetric(float64(strings.Count(bench40, ",")+1), "tokens")
}

// BenchmarkPercentiles evaluates a :percentiles grouped by app over 60
// steps of 3 apps × 10 nodes × 20 percentile buckets: Spectator timers (a
// max, no min: one empty read for the clamp) and OTLP histograms (a min
// and a max: three more reads, and every estimate clamped).
func BenchmarkPercentiles(b *testing.B) {
	const step, n = int64(60_000), 60
	now := int64(1_700_000_040_000) / step * step
	for _, otlp := range []bool{false, true} {
		name := "spectator"
		if otlp {
			name = "otlp"
		}
		b.Run(name, func(b *testing.B) {
			var in []querytest.Input
			line := func(f func(k int) float64, kv ...string) {
				vals := make([]float64, n)
				for k := range vals {
					vals[k] = f(k)
				}
				in = append(in, querytest.Input{Start: now - n*step, Values: vals, Tags: tags.New(kv...)})
			}
			for a := range 3 {
				for node := range 10 {
					id := []string{"name", "lat", "nf.app", fmt.Sprint("app", a), "nf.node", fmt.Sprint("i-", node)}
					for j := range 20 {
						line(func(k int) float64 { return float64(1 + (k+j)%7) }, append(id, "statistic", "percentile", "percentile", lib.PercentileTag('T', 90+j))...)
					}
					line(func(k int) float64 { return 0.05 + 0.001*float64(k%5) }, append(id, "statistic", "max", "atlas.dstype", "gauge")...)
					if otlp {
						line(func(k int) float64 { return 0.002 + 0.0001*float64(k%3) }, append(id, "statistic", "min", "atlas.dstype", "min-gauge")...)
					}
				}
			}
			en := query.NewEngine(querytest.Open(b, step, now, in...), eval.Options{})
			styles, err := query.Parse("name,lat,:eq,(,nf.app,),:by,(,50,90,99,),:percentiles", query.ParseOptions{})
			if err != nil {
				b.Fatal(err)
			}
			r := eval.Range{Start: now - n*step, End: now, Step: step}
			b.ReportAllocs()
			for b.Loop() {
				res, err := en.Eval(context.Background(), styles, r)
				if err != nil || len(res.Lines) != 9 {
					b.Fatalf("%v lines: %v", res, err)
				}
			}
		})
	}
}
