package alerting_test

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/alerting"
)

func TestParseFileSpecExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/playback.yaml")
	if err != nil {
		t.Fatal(err)
	}
	gs, err := alerting.ParseFile("playback.yaml", b, alerting.ParseOptions{Step: minute})
	if err != nil {
		t.Fatal(err)
	}
	r := gs[0].Rules[0]
	if gs[0].Name != "playback" || time.Duration(gs[0].Interval) != time.Minute || r.Alert != "HighErrorRate" ||
		time.Duration(r.For) != 2*time.Minute || time.Duration(r.KeepFiringFor) != 5*time.Minute || r.NoData != "ok" ||
		r.Labels["severity"] != "page" || gs[0].File != "playback.yaml" {
		t.Errorf("parsed %+v %+v", gs[0], r)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	f := func(in string, want alerting.RuleError) {
		t.Helper()
		_, err := alerting.ParseFile("r.yaml", []byte(in), alerting.ParseOptions{Step: minute})
		re, ok := errors.AsType[*alerting.RuleError](err)
		if !ok {
			t.Fatalf("ParseFile(%q) = %v, want a *RuleError", in, err)
		}
		want.Msg = re.Msg // compared below where it matters
		if diff := cmp.Diff(want, *re); diff != "" {
			t.Errorf("ParseFile(%q) (-want +got):\n%s", in, diff)
		}
	}
	b, _ := os.ReadFile("testdata/bad-word.yaml")
	f(string(b), alerting.RuleError{File: "r.yaml", Line: 6, Field: "expr", Word: ":foo", Pos: 27})
	f("groups:\n  - name: g\n    interval: 90s\n    rules: [{alert: A, expr: '1'}]\n", alerting.RuleError{File: "r.yaml", Line: 3, Field: "interval"})
	f("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '1'\n        bogus: 1\n", alerting.RuleError{File: "r.yaml", Line: 6, Field: "bogus"})
	f("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '1'\n        nodata: maybe\n", alerting.RuleError{File: "r.yaml", Line: 4, Field: "nodata"})
	f("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '1'\n        for: soon\n", alerting.RuleError{File: "r.yaml", Line: 6, Field: "for"})
	f("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '1'\n        annotations: {s: '{{ .Tags'}\n", alerting.RuleError{File: "r.yaml", Line: 4, Field: "annotations.s"})
	f("groups: [\n", alerting.RuleError{File: "r.yaml", Line: 1})
	f("groups:\n  - name: g\n    rules:\n      - {alert: A, expr: '1'}\n      - {alert: A, expr: '2'}\n", alerting.RuleError{File: "r.yaml", Line: 5, Field: "alert"})
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	gs := parseGroups(t, `
groups:
  - name: g
    rules:
      - alert: Hot
        expr: name,cpu,:eq,(,host,),:by
        labels: {team: 'team-{{ index .Tags "host" }}', severity: page}
        annotations: {summary: '{{ $labels.host }} at {{ printf "%.1f" $value }} ({{ .Rule }})'}
`)
	r := gs[0].Rules[0]
	res, err := alerting.BacktestLines(r, []alerting.Line{{Tags: map[string]string{"name": "cpu", "host": "a"}, Start: 0, Step: 60_000, Values: []float64{92.25}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Labels["team"] != "team-a" || res[0].Labels["severity"] != "page" || res[0].Annotations["summary"] != "a at 92.2 (Hot)" {
		t.Errorf("instance %+v", res[0])
	}
}

// TestForAndKeepFiring: for delays firing, keep_firing_for delays
// resolution, a pending alert that stops being active is dropped.
func TestForAndKeepFiring(t *testing.T) {
	t.Parallel()
	f := func(forD, keep time.Duration, vals []float64, want string) {
		t.Helper()
		r := &alerting.Rule{Alert: "A", Expr: "1", For: alerting.Duration(forD), KeepFiringFor: alerting.Duration(keep)}
		var states []string
		for i := range vals {
			ins, err := alerting.BacktestLines(r, []alerting.Line{{Tags: map[string]string{"k": "v"}, Start: 0, Step: minute, Values: vals[:i+1]}})
			if err != nil {
				t.Fatal(err)
			}
			s := "-"
			for _, in := range ins {
				s = string(in.State)[:1]
			}
			states = append(states, s)
		}
		if got := strings.Join(states, ""); got != want {
			t.Errorf("for %v keep %v over %v: %s, want %s", forD, keep, vals, got, want)
		}
	}
	// i: inactive (no instance), p: pending, f: firing, r: resolved.
	f(0, 0, []float64{0, 1, 1, 0, 0}, "-ffrr")
	f(2*time.Minute, 0, []float64{1, 1, 1, 1, 0}, "ppffr")
	f(2*time.Minute, 0, []float64{1, 1, 0, 1, 1, 1}, "pp-ppf")
	f(0, 2*time.Minute, []float64{1, 0, 0, 0, 1}, "fffrf")
	f(0, 0, []float64{1, math.NaN(), 1}, "frf")
}
