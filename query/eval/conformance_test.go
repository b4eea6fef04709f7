package eval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// conformanceFile is the public golden vectors (testdata/conformance/README.md
// describes them), relative to this package.
var conformanceFile = filepath.Join("testdata", "conformance", "asl-cases.json")

type confCase struct {
	Name          string            `json:"name"`
	Category      string            `json:"category"`
	Expr          string            `json:"expr"`
	StepMs        int64             `json:"step_ms"`
	StartMs       int64             `json:"start_ms"`
	EndMs         int64             `json:"end_ms"`
	Input         []confSeries      `json:"input"`
	InputStartMs  *int64            `json:"input_start_ms"`
	InputStepMs   *int64            `json:"input_step_ms"`
	Expected      []confSeries      `json:"expected"`
	ExpectedStack []json.RawMessage `json:"expected_stack"`
	ExpectedError bool              `json:"expected_error"`
}

type confSeries struct {
	Tags   map[string]string `json:"tags"`
	Values []any             `json:"values"`
	Label  *string           `json:"label"`
}

func confValues(t *testing.T, vs []any) []float64 {
	t.Helper()
	out := make([]float64, len(vs))
	for i, v := range vs {
		switch x := v.(type) {
		case nil:
			out[i] = math.NaN()
		case float64:
			out[i] = x
		case string:
			switch x {
			case "Infinity":
				out[i] = math.Inf(1)
			case "-Infinity":
				out[i] = math.Inf(-1)
			case "NaN":
				out[i] = math.NaN()
			default:
				t.Fatalf("bad value %q", x)
			}
		default:
			t.Fatalf("bad value %v", v)
		}
	}
	return out
}

func sameValue(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a == b
	}
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
}

// TestConformance runs testdata/conformance/asl-cases.json through the
// parser, the evaluator and a real in-memory store.
func TestConformance(t *testing.T) {
	b, err := os.ReadFile(conformanceFile)
	if err != nil {
		t.Fatalf("read the conformance vectors: %v", err)
	}
	var file struct {
		Cases []confCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) < 100 {
		t.Fatalf("only %d cases", len(file.Cases))
	}
	for _, tc := range file.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			runConformance(t, tc)
		})
	}
}

func runConformance(t *testing.T, tc confCase) {
	if tc.ExpectedStack != nil {
		c, err := query.Exec(tc.Expr, query.ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.Expr, err)
		}
		got, _ := json.Marshal(stackJSON(c.Result()))
		want, _ := json.Marshal(tc.ExpectedStack)
		if string(got) != string(want) {
			t.Errorf("%s: stack %s, want %s", tc.Expr, got, want)
		}
		return
	}
	inStep := tc.StepMs
	if tc.InputStepMs != nil {
		inStep = *tc.InputStepMs
	}
	inStart := tc.StartMs
	if tc.InputStartMs != nil {
		inStart = *tc.InputStartMs
	}
	var inputs []querytest.Input
	now := tc.EndMs
	for _, s := range tc.Input {
		vs := confValues(t, s.Values)
		inputs = append(inputs, querytest.Input{Tags: tags.FromMap(s.Tags), Start: inStart, Values: vs})
		now = max(now, inStart+int64(len(vs))*inStep)
	}
	store := querytest.Open(t, inStep, now, inputs...)
	styles, err := query.Parse(tc.Expr, query.ParseOptions{})
	var got []eval.Series
	if err == nil {
		ev := eval.New(store, eval.Options{Now: func() int64 { return now }})
		for _, s := range styles {
			var lines []eval.Series
			lines, _, err = ev.Eval(context.Background(), s.Expr, eval.Range{Start: tc.StartMs, End: tc.EndMs, Step: tc.StepMs})
			if err != nil {
				break
			}
			got = append(got, lines...)
		}
	}
	if tc.ExpectedError {
		if err == nil {
			t.Errorf("%s: no error, want one; got %d lines", tc.Expr, len(got))
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", tc.Expr, err)
	}
	compareLines(t, tc, got)
}

func compareLines(t *testing.T, tc confCase, got []eval.Series) {
	t.Helper()
	desc := func(ls []eval.Series) string {
		var b strings.Builder
		for _, l := range ls {
			fmt.Fprintf(&b, "\n  %v %q %v", l.Tags, l.Label, l.Values)
		}
		return b.String()
	}
	if len(got) != len(tc.Expected) {
		t.Fatalf("%s: %d lines, want %d:%s", tc.Expr, len(got), len(tc.Expected), desc(got))
	}
	used := make([]bool, len(got))
	for _, want := range tc.Expected {
		wt := tags.FromMap(want.Tags)
		wv := confValues(t, want.Values)
		i := slices.IndexFunc(got, func(s eval.Series) bool { return s.Tags.Equal(wt) })
		for i >= 0 && used[i] {
			j := slices.IndexFunc(got[i+1:], func(s eval.Series) bool { return s.Tags.Equal(wt) })
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 {
			t.Errorf("%s: no line tagged %v in:%s", tc.Expr, wt, desc(got))
			continue
		}
		used[i] = true
		g := got[i]
		if len(g.Values) != len(wv) {
			t.Errorf("%s: line %v has %d values, want %d", tc.Expr, wt, len(g.Values), len(wv))
			continue
		}
		for j := range wv {
			if !sameValue(g.Values[j], wv[j]) {
				t.Errorf("%s: line %v values %v, want %v", tc.Expr, wt, g.Values, wv)
				break
			}
		}
		if want.Label != nil && g.Label != *want.Label {
			t.Errorf("%s: line %v label %q, want %q", tc.Expr, wt, g.Label, *want.Label)
		}
	}
}

// stackJSON renders a stack as the vectors do: strings and lists of them.
func stackJSON(items []any) []any {
	out := make([]any, len(items))
	for i, it := range items {
		switch v := it.(type) {
		case stack.List:
			out[i] = stackJSON([]any(v))
		case string:
			out[i] = v
		default:
			out[i] = stack.Format(v)
		}
	}
	return out
}
