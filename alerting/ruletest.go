package alerting

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestStore is a store rule tests load series into and evaluate against.
type TestStore interface {
	tsdb.Appender
	tsdb.Querier
}

// RuleTestOptions configure RunRuleTests.
type RuleTestOptions struct {
	// OpenStore opens an empty store with the given storage step (ms)
	// accepting data from Start on; close releases it. Required.
	OpenStore func(step int64) (store TestStore, close func() error, err error)
	// Out receives the report.
	Out io.Writer
}

// RuleTestStart is where the series of a rule test start: time 0 of its
// eval_time values (2000-01-01T00:00:00Z).
const RuleTestStart = int64(946684800000)

// ruleTestFile is a test file in the spirit of promtool test rules.
type ruleTestFile struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval Duration   `yaml:"evaluation_interval"`
	Tests              []ruleTest `yaml:"tests"`
}

type ruleTest struct {
	Name        string          `yaml:"name"`
	Interval    Duration        `yaml:"interval"`
	InputSeries []inputSeries   `yaml:"input_series"`
	AlertTests  []alertRuleTest `yaml:"alert_rule_test"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertRuleTest struct {
	EvalTime  Duration      `yaml:"eval_time"`
	AlertName string        `yaml:"alertname"`
	ExpAlerts []expectAlert `yaml:"exp_alerts"`
}

type expectAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// RunRuleTests runs the rule unit test files and reports to opts.Out. It
// returns false when an expectation failed; err is for files that cannot
// be read or parsed.
func RunRuleTests(ctx context.Context, files []string, opts RuleTestOptions) (bool, error) {
	ok := true
	for _, f := range files {
		fok, err := runRuleTestFile(ctx, f, opts)
		if err != nil {
			return false, err
		}
		ok = ok && fok
	}
	return ok, nil
}

func runRuleTestFile(ctx context.Context, file string, opts RuleTestOptions) (bool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	var tf ruleTestFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return false, &RuleError{File: file, Line: yamlLine(err.Error()), Msg: err.Error()}
	}
	interval := time.Duration(tf.EvaluationInterval).Milliseconds()
	if interval == 0 {
		interval = 60_000
	}
	var rules []*Rule
	for _, rf := range tf.RuleFiles {
		p := rf
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), rf)
		}
		rb, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		gs, err := ParseFile(rf, rb, ParseOptions{})
		if err != nil {
			return false, err
		}
		for _, g := range gs {
			rules = append(rules, g.Rules...)
		}
	}
	ok := true
	for i, tc := range tf.Tests {
		name := tc.Name
		if name == "" {
			name = fmt.Sprintf("test %d", i+1)
		}
		tok, err := runRuleTest(ctx, file, name, tc, rules, interval, opts)
		if err != nil {
			return false, err
		}
		ok = ok && tok
	}
	if ok {
		fmt.Fprintf(opts.Out, "PASS %s (%d tests)\n", file, len(tf.Tests))
	}
	return ok, nil
}

func runRuleTest(ctx context.Context, file, name string, tc ruleTest, rules []*Rule, interval int64, opts RuleTestOptions) (bool, error) {
	step := time.Duration(tc.Interval).Milliseconds()
	if step == 0 {
		step = interval
	}
	store, closeStore, err := opts.OpenStore(step)
	if err != nil {
		return false, err
	}
	defer closeStore()
	var batch tsdb.Batch
	for _, in := range tc.InputSeries {
		ts, err := parseSeriesTags(in.Series)
		if err != nil {
			return false, &RuleError{File: file, Field: "input_series", Msg: err.Error()}
		}
		vals, err := ExpandValues(in.Values)
		if err != nil {
			return false, &RuleError{File: file, Field: "input_series", Msg: fmt.Sprintf("series %s: %v", in.Series, err)}
		}
		for j, v := range vals {
			if !math.IsNaN(v) {
				batch.Points = append(batch.Points, tsdb.Datapoint{Tags: ts, T: RuleTestStart + int64(j)*step, V: v})
			}
		}
	}
	slices.SortStableFunc(batch.Points, func(a, b tsdb.Datapoint) int { return int(a.T - b.T) })
	if err := store.Append(ctx, &batch); err != nil {
		return false, err
	}
	if len(batch.Rejected) > 0 {
		return false, fmt.Errorf("%s: %s: %d datapoints rejected by the store", file, name, len(batch.Rejected))
	}
	engine := query.NewEngine(store, eval.Options{})
	ok := true
	for _, at := range tc.AlertTests {
		evalAt := RuleTestStart + time.Duration(at.EvalTime).Milliseconds()
		var got []expectAlert
		found := false
		for _, r := range rules {
			if r.Alert != at.AlertName {
				continue
			}
			found = true
			res, err := Backtest(ctx, engine, r, RuleTestStart, evalAt+interval, BacktestOptions{Step: interval})
			if err != nil {
				return false, fmt.Errorf("%s: %s: evaluate %s: %w", file, name, r.Alert, err)
			}
			for _, in := range res.Active {
				if in.State == Firing {
					got = append(got, expectAlert{ExpLabels: in.Labels, ExpAnnotations: in.Annotations})
				}
			}
		}
		if !found {
			return false, &RuleError{File: file, Field: "alert_rule_test", Msg: fmt.Sprintf("%s: no rule named %q", name, at.AlertName)}
		}
		var want []expectAlert
		for _, e := range at.ExpAlerts {
			l := maps.Clone(e.ExpLabels)
			if l == nil {
				l = map[string]string{}
			}
			l[AlertNameLabel] = at.AlertName
			want = append(want, expectAlert{ExpLabels: l, ExpAnnotations: e.ExpAnnotations})
		}
		if diff := diffAlerts(want, got); diff != "" {
			ok = false
			fmt.Fprintf(opts.Out, "FAIL %s: %s: alert %s at %s:\n%s", file, name, at.AlertName, at.EvalTime, diff)
		}
	}
	return ok, nil
}

// diffAlerts lists expected alerts not found (-) and alerts found but not
// expected (+), one per line.
func diffAlerts(want, got []expectAlert) string {
	render := func(e expectAlert) string {
		s := LabelString(e.ExpLabels)
		if len(e.ExpAnnotations) > 0 {
			s += " annotations " + LabelString(e.ExpAnnotations)
		}
		return s
	}
	ws := make([]string, len(want))
	for i, w := range want {
		ws[i] = render(w)
	}
	gs := make([]string, len(got))
	for i, g := range got {
		gs[i] = render(g)
	}
	slices.Sort(ws)
	slices.Sort(gs)
	if slices.Equal(ws, gs) {
		return ""
	}
	var b strings.Builder
	for _, w := range ws {
		if !slices.Contains(gs, w) {
			fmt.Fprintf(&b, "  - want %s\n", w)
		}
	}
	for _, g := range gs {
		if !slices.Contains(ws, g) {
			fmt.Fprintf(&b, "  + got  %s\n", g)
		}
	}
	return b.String()
}

// parseSeriesTags reads "name=cpu,host=a" (gauge unless atlas.dstype is
// given).
func parseSeriesTags(s string) (tags.Set, error) {
	var kv []string
	for _, p := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("series %q: want key=value pairs separated by commas", s)
		}
		kv = append(kv, k, v)
	}
	ts := tags.New(kv...)
	if !ts.Has(tags.NameKey) {
		return nil, fmt.Errorf("series %q has no name", s)
	}
	if !ts.Has(tsdb.DSTypeKey) {
		ts = tags.New(append(kv, tsdb.DSTypeKey, "gauge")...)
	}
	return ts, nil
}

// ExpandValues reads promtool's expanding notation: space-separated
// values, "_" for a missing one, "a+bxN" for a, a+b, …, a+N·b (N+1
// values), "a-bxN" likewise down, "axN" for N+1 copies of a, "_xN" for
// N+1 missing values.
func ExpandValues(s string) ([]float64, error) {
	var out []float64
	for _, tok := range strings.Fields(s) {
		base, count, hasX := strings.Cut(tok, "x")
		n := 0
		if hasX {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 0 || n > 1_000_000 {
				return nil, fmt.Errorf("bad repeat in %q", tok)
			}
		}
		if base == "_" {
			for range n + 1 {
				out = append(out, math.NaN())
			}
			continue
		}
		start, delta := base, "0"
		if i := strings.LastIndexAny(base, "+-"); i > 0 && hasX && base[i-1] != 'e' && base[i-1] != 'E' {
			start, delta = base[:i], base[i:]
		}
		a, err := strconv.ParseFloat(start, 64)
		if err != nil {
			return nil, fmt.Errorf("bad value %q", tok)
		}
		d, err := strconv.ParseFloat(delta, 64)
		if err != nil {
			return nil, fmt.Errorf("bad increment in %q", tok)
		}
		if len(out)+n+1 > 1_000_000 {
			return nil, fmt.Errorf("more than 1000000 values")
		}
		for i := range n + 1 {
			out = append(out, a+float64(i)*d)
		}
	}
	return out, nil
}
