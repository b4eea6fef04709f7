package query_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// seedPrograms returns the programs of the script tests and the
// conformance vectors, to seed the fuzzer with real language.
func seedPrograms(tb testing.TB) []string {
	tb.Helper()
	var out []string
	files, _ := filepath.Glob(filepath.Join("testdata", "script", "*.txt"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if (strings.HasPrefix(l, "eval") || strings.HasPrefix(l, "parse")) && i+1 < len(lines) {
				out = append(out, lines[i+1])
			}
		}
	}
	b, err := os.ReadFile(filepath.Join("eval", "testdata", "conformance", "asl-cases.json"))
	if err != nil {
		tb.Fatalf("read the conformance vectors for the seed corpus: %v", err)
	}
	var v struct{ Cases []struct{ Expr string } }
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("conformance vectors: %v", err)
	}
	for _, c := range v.Cases {
		out = append(out, c.Expr)
	}
	return out
}

// FuzzParse runs arbitrary programs through the parser and the evaluator:
// nothing may panic, errors from parsing are positioned, and the limits
// keep work bounded.
func FuzzParse(f *testing.F) {
	for _, p := range seedPrograms(f) {
		f.Add(p)
	}
	store := querytest.Open(f, 60_000, 10*60_000,
		querytest.Input{Tags: tags.New("name", "cpu", "app", "a", "percentile", "T0042"), Values: []float64{1, 2, 3, 4}},
		querytest.Input{Tags: tags.New("name", "cpu", "app", "b", "percentile", "T0050"), Values: []float64{4, 3, 2, 1}},
	)
	engine := query.NewEngine(store, eval.Options{MaxLines: 1000, MaxDatapoints: 100_000, Now: func() int64 { return 600_000 }})
	f.Fuzz(func(t *testing.T, prog string) {
		styles, err := query.Parse(prog, query.ParseOptions{})
		if err != nil {
			if _, ok := stack.AsError(err); !ok {
				t.Fatalf("Parse(%q) error %v is not a *stack.Error", prog, err)
			}
			return
		}
		// Rendering must not panic either.
		for _, s := range styles {
			_ = s.String()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = engine.Eval(ctx, styles, eval.Range{Start: 0, End: 5 * 60_000, Step: 60_000})
	})
}
