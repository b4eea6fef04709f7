package query_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
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
