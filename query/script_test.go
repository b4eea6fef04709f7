package query_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestScripts runs the script tests under testdata/script, one file per
// vocabulary. Commands:
//
//	load [step=1m] [start=0]      series, one per line: k=v k=v: v1 v2 ... (NaN or _ for no data)
//	eval [start=0] [end=5m] [step=1m]
//	                              evaluate the program in the input; one line per series:
//	                              label {tags} values, or "error: ..." with the position
//	parse                         the stack a program leaves, one item per line
//
// Regenerate the expectations with go test ./query -run TestScripts -rewrite
// and review the diff.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "script", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			var store tsdb.Querier
			var now int64
			datadriven.RunTest(t, f, func(t *testing.T, d *datadriven.TestData) string {
				switch d.Cmd {
				case "load":
					step := durArg(t, d, "step", 60_000)
					start := durArg(t, d, "start", 0)
					inputs, end := parseInputs(t, d.Input, start, step)
					now = end
					store = querytest.Open(t, step, now, inputs...)
					return ""
				case "eval":
					step := durArg(t, d, "step", 60_000)
					r := eval.Range{Start: durArg(t, d, "start", 0), End: durArg(t, d, "end", 5*60_000), Step: step}
					if store == nil {
						store = querytest.Open(t, step, r.End)
					}
					return runEval(store, now, strings.TrimSpace(d.Input), r)
				case "parse":
					c, err := query.Exec(strings.TrimSpace(d.Input), query.ParseOptions{})
					if err != nil {
						return errText(err)
					}
					var b strings.Builder
					for _, it := range c.Result() {
						b.WriteString(stack.Format(it))
						b.WriteByte('\n')
					}
					return b.String()
				}
				t.Fatalf("unknown command %q", d.Cmd)
				return ""
			})
		})
	}
}

func durArg(t *testing.T, d *datadriven.TestData, key string, def int64) int64 {
	t.Helper()
	for _, a := range d.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			if a.Vals[0] == "0" {
				return 0
			}
			ms, err := expr.ParseDuration(a.Vals[0])
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return ms
		}
	}
	return def
}

// parseInputs reads "k=v k=v: 1 2 NaN" lines.
func parseInputs(t *testing.T, in string, start, step int64) ([]querytest.Input, int64) {
	t.Helper()
	var out []querytest.Input
	end := start
	for _, line := range strings.Split(strings.TrimSpace(in), "\n") {
		tagPart, valPart, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("bad series line %q", line)
		}
		var kv []string
		for _, f := range strings.Fields(tagPart) {
			k, v, _ := strings.Cut(f, "=")
			kv = append(kv, k, v)
		}
		var vs []float64
		for _, f := range strings.Fields(valPart) {
			if f == "_" || f == "NaN" {
				vs = append(vs, math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("bad value %q", f)
			}
			vs = append(vs, v)
		}
		out = append(out, querytest.Input{Tags: tags.New(kv...), Start: start, Values: vs})
		end = max(end, start+int64(len(vs))*step)
	}
	return out, end
}

func runEval(store tsdb.Querier, now int64, prog string, r eval.Range) string {
	styles, err := query.Parse(prog, query.ParseOptions{})
	if err != nil {
		return errText(err)
	}
	e := query.NewEngine(store, eval.Options{Now: func() int64 { return now }})
	res, err := e.Eval(context.Background(), styles, r)
	if err != nil {
		return errText(err)
	}
	var b strings.Builder
	for _, l := range res.Lines {
		fmt.Fprintf(&b, "%s %s", l.Label, l.Tags)
		for _, v := range l.Values {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatFloat(v, 'g', 10, 64))
		}
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(no lines)\n"
	}
	return b.String()
}

func errText(err error) string {
	if e, ok := stack.AsError(err); ok {
		return fmt.Sprintf("error at %d (%s): %s\n", e.Pos, e.Word, e.Msg)
	}
	return "error: " + err.Error() + "\n"
}
