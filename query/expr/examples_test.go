package expr_test

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
)

// TestExamples runs every example of every word: examples marked ERROR:
// must fail, the others must succeed, and what they leave must render
// back to a program that parses to the same thing.
func TestExamples(t *testing.T) {
	t.Parallel()
	in := expr.NewInterpreter()
	n := 0
	for _, v := range expr.Vocabularies {
		for _, w := range v.Words {
			if w.Name != "named-rewrite" && (w.Summary == "" || len(w.Examples) == 0) {
				t.Errorf("%s/:%s has no summary or examples", v.Name, w.Name)
			}
			for _, ex := range w.Examples {
				n++
				prog, wantErr := strings.CutPrefix(ex, "ERROR:")
				if prog != "" {
					prog += ","
				}
				prog += ":" + w.Name
				c, err := in.Execute(prog, stack.Options{Vars: map[string]any{"tz": "UTC"}})
				if wantErr {
					if err == nil {
						t.Errorf("%s/:%s: %q succeeded with %s, want an error", v.Name, w.Name, prog, stack.Describe(c.Result()))
					} else if _, ok := stack.AsError(err); !ok {
						t.Errorf("%s/:%s: %q: error %v is not a *stack.Error", v.Name, w.Name, prog, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s/:%s: %q: %v", v.Name, w.Name, prog, err)
					continue
				}
				roundTrip(t, in, prog, c.Result())
			}
		}
	}
	t.Logf("%d examples", n)
	if n < 300 {
		t.Errorf("only %d examples", n)
	}
}

// roundTrip checks that rendering the stack and parsing it again gives
// the same rendering.
func roundTrip(t *testing.T, in *stack.Interpreter, prog string, items []any) {
	t.Helper()
	var parts []string
	for _, it := range items {
		switch it.(type) {
		case string, stack.List:
			return // plain data: nothing to normalize
		}
		parts = append(parts, stack.Format(it))
	}
	rendered := strings.Join(parts, ",")
	c, err := in.Execute(rendered, stack.Options{Vars: map[string]any{"tz": "UTC"}})
	if err != nil {
		t.Errorf("%q renders as %q, which does not parse: %v", prog, rendered, err)
		return
	}
	var again []string
	for _, it := range c.Result() {
		again = append(again, stack.Format(it))
	}
	if got := strings.Join(again, ","); got != rendered {
		t.Errorf("%q renders as %q, which renders as %q", prog, rendered, got)
	}
}
