package canary

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

const (
	step = int64(60_000)
	// now is the clock of the tests: 2026-01-01T03:00:00Z.
	now = int64(1_767_236_400_000)
)

// noisy returns n values around mean with a relative noise of rel,
// from a fixed seed.
func noisy(seed uint64, n int, mean, rel float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean * (1 + rel*rng.NormFloat64())
	}
	return out
}

// fleet is a baseline and a canary of one service over the 3 h before
// now: latency with the canary's factor, and an error rate that is the
// same distribution on both sides.
func fleet(latencyFactor float64) []querytest.Input {
	const n = 180
	start := now - (n-1)*step // the points of the window e-3h..now end at now
	in := func(name, cluster string, vals []float64) querytest.Input {
		return querytest.Input{Tags: tags.New("name", name, "nf.app", "api", "nf.cluster", cluster), Start: start, Values: vals}
	}
	return []querytest.Input{
		in("latency", "api-baseline", noisy(1, n, 100, 0.05)),
		in("latency", "api-canary", noisy(2, n, 100*latencyFactor, 0.05)),
		in("errors", "api-baseline", noisy(3, n, 2, 0.3)),
		in("errors", "api-canary", noisy(4, n, 2, 0.3)),
	}
}

func newJudge(t testing.TB, q tsdb.Querier) *Judge {
	t.Helper()
	j, err := New(Options{Querier: q, StorageStep: step, Now: func() time.Time { return time.UnixMilli(now) }})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func request() *Request {
	return &Request{
		Baseline: "nf.cluster,api-baseline,:eq", Canary: "nf.cluster,api-canary,:eq",
		S: "e-3h", E: "now", Step: "60s",
		Metrics: []Metric{
			{Name: "latency", Q: "name,latency,:eq,:avg", Direction: Increase, Critical: true},
			{Name: "errors", Q: "name,errors,:eq,:sum", Direction: Increase},
		},
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		factor  float64
		edit    func(*Request)
		classes []string
		result  string
	}{
		{name: "regression", factor: 1.3, classes: []string{High, Pass}, result: Fail},
		{name: "no-regression", factor: 1, classes: []string{Pass, Pass}, result: Pass},
		{name: "within-allowed", factor: 1.1, classes: []string{Pass, Pass}, result: Pass},
		{name: "strict-allowed", factor: 1.1, edit: func(r *Request) { z := 0.0; r.Metrics[0].AllowedIncrease = &z },
			classes: []string{High, Pass}, result: Fail},
		{name: "harmless-direction", factor: 0.7, classes: []string{Low, Pass}, result: Pass},
		{name: "either-direction", factor: 0.7, edit: func(r *Request) { r.Metrics[0].Direction = Either },
			classes: []string{Low, Pass}, result: Fail},
		{name: "not-critical-scores", factor: 1.3, edit: func(r *Request) { r.Metrics[0].Critical = false },
			classes: []string{High, Pass}, result: Marginal},
		{name: "critical-nodata", factor: 1, edit: func(r *Request) {
			r.Metrics = append(r.Metrics, Metric{Name: "saturation", Q: "name,saturation,:eq,:max", Critical: true})
		}, classes: []string{Pass, Pass, NoData}, result: Fail},
		{name: "nodata-not-critical", factor: 1, edit: func(r *Request) {
			r.Metrics = append(r.Metrics, Metric{Name: "saturation", Q: "name,saturation,:eq,:max"})
		}, classes: []string{Pass, Pass, NoData}, result: Marginal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j := newJudge(t, querytest.Open(t, step, now, fleet(tc.factor)...))
			req := request()
			if tc.edit != nil {
				tc.edit(req)
			}
			a, err := j.Judge(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range a.Metrics {
				got = append(got, m.Classification)
			}
			if strings.Join(got, ",") != strings.Join(tc.classes, ",") || a.Result != tc.result {
				t.Errorf("classes %v result %s (%s), want %v %s", got, a.Result, a.Reason, tc.classes, tc.result)
				for _, m := range a.Metrics {
					t.Logf("%s: %s", m.Name, m.Reason)
				}
			}
			if n := a.Metrics[0].Baseline.Count; n != 180 {
				t.Errorf("baseline count = %d, want 180", n)
			}
		})
	}
}

// TestJudgeEffect checks the numbers of a known 30% regression.
func TestJudgeEffect(t *testing.T) {
	t.Parallel()
	j := newJudge(t, querytest.Open(t, step, now, fleet(1.3)...))
	a, err := j.Judge(context.Background(), request())
	if err != nil {
		t.Fatal(err)
	}
	lat := a.Metrics[0]
	if r := float64(lat.Effect.Ratio); math.Abs(r-1.3) > 0.03 {
		t.Errorf("ratio = %v, want about 1.3", r)
	}
	if hl := float64(lat.Effect.HodgesLehmann); math.Abs(hl-30) > 3 {
		t.Errorf("Hodges-Lehmann = %v, want about 30", hl)
	}
	if p := float64(lat.PValue); !(p < 1e-10) {
		t.Errorf("p-value = %v, want tiny", p)
	}
	if lat.Canary.Count != 180 || math.Abs(float64(lat.Canary.Mean)-130) > 2 {
		t.Errorf("canary sample = %+v", lat.Canary)
	}
	if a.Score != 50 || !strings.Contains(a.Reason, `critical metric "latency" is high`) {
		t.Errorf("score %v reason %q", a.Score, a.Reason)
	}
	if a.End-a.Start != 180*step || a.Step != step {
		t.Errorf("range [%d, %d) step %d", a.Start, a.End, a.Step)
	}
}

// TestJudgeScopesOnTree checks that the scopes are ANDed into every data
// expression of the tree, not pasted into the program: a ratio of two
// aggregates is scoped on both sides.
func TestJudgeScopesOnTree(t *testing.T) {
	t.Parallel()
	j := newJudge(t, querytest.Open(t, step, now, fleet(1.3)...))
	req := request()
	req.Metrics = []Metric{{Name: "per-error", Q: "name,latency,:eq,:sum,name,errors,:eq,:sum,:div", Direction: Increase}}
	a, err := j.Judge(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	m := a.Metrics[0]
	// Unscoped, both sides would see the sum of both clusters and be equal.
	if m.Classification != High || m.Baseline.Count != 180 {
		t.Errorf("per-error: %s, %+v; %s", m.Classification, m.Baseline, m.Reason)
	}
	if r := float64(m.Effect.Ratio); math.Abs(r-1.3) > 0.2 {
		t.Errorf("ratio = %v, want about 1.3", r)
	}
}

func TestJudgeErrors(t *testing.T) {
	t.Parallel()
	j := newJudge(t, querytest.Open(t, step, now))
	cases := []struct {
		field string
		edit  func(*Request)
	}{
		{"baseline", func(r *Request) { r.Baseline = "" }},
		{"canary", func(r *Request) { r.Canary = "a,:eq" }},
		{"s", func(r *Request) { r.S = "yesterday-ish" }},
		{"e", func(r *Request) { r.S = "now-1h"; r.E = "bogus" }},
		{"s", func(r *Request) { r.S = "now"; r.E = "now-1h" }},
		{"tz", func(r *Request) { r.TZ = "Mars/Olympus" }},
		{"step", func(r *Request) { r.Step = "-5m" }},
		{"step", func(r *Request) { r.Step = "90s" }},
		{"step", func(r *Request) { r.S = "e-30d" }},
		{"minCount", func(r *Request) { r.MinCount = -1 }},
		{"metrics", func(r *Request) { r.Metrics = nil }},
		{"metrics[0].name", func(r *Request) { r.Metrics[0].Name = " " }},
		{"metrics[1].name", func(r *Request) { r.Metrics[1].Name = "latency" }},
		{"metrics[1].q", func(r *Request) { r.Metrics[1].Q = "name,errors,:eq,:sum,:frob" }},
		{"metrics[1].q", func(r *Request) { r.Metrics[1].Q = "a,1,:eq,b,2,:eq" }},
		{"metrics[1].q", func(r *Request) { r.Metrics[1].Q = "42" }},
		{"metrics[0].direction", func(r *Request) { r.Metrics[0].Direction = "up" }},
		{"metrics[0].weight", func(r *Request) { w := -1.0; r.Metrics[0].Weight = &w }},
		{"metrics", func(r *Request) { w := 0.0; r.Metrics[0].Weight = &w; r.Metrics[1].Weight = &w }},
		{"metrics[0].significance", func(r *Request) { r.Metrics[0].Significance = 2 }},
		{"metrics[0].allowedDecrease", func(r *Request) { v := math.NaN(); r.Metrics[0].AllowedDecrease = &v }},
		{"thresholds.pass", func(r *Request) { v := 101.0; r.Thresholds.Pass = &v }},
		{"thresholds.marginal", func(r *Request) { v := 90.0; r.Thresholds.Marginal = &v }},
	}
	for _, tc := range cases {
		req := request()
		tc.edit(req)
		_, err := j.Judge(context.Background(), req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldError naming %s", tc.field, err, tc.field)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	cases := []struct{ body, field string }{
		{`{"baseline":"a,b,:eq","bogus":1}`, "bogus"},
		{`{"baseline":5}`, "baseline"},
		{`{"metrics":[{"name":"x","weight":"heavy"}]}`, "metrics.weight"},
		{`{"metrics":{}}`, "metrics"},
		{`{"baseline":`, "body"},
		{`{} {}`, "body"},
		{``, "body"},
		{`[1]`, "body"},
	}
	for _, tc := range cases {
		_, err := DecodeRequest([]byte(tc.body))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("DecodeRequest(%s) = %v, want a FieldError naming %s", tc.body, err, tc.field)
		}
	}
	r, err := DecodeRunRequest([]byte(`{"baseline":"a,b,:eq","interval":"5m","lifetime":"1h","metrics":[{"name":"x","q":"y,z,:eq","weight":2}]}`))
	if err != nil || r.Interval != "5m" || r.Baseline != "a,b,:eq" || *r.Metrics[0].Weight != 2 {
		t.Errorf("DecodeRunRequest = %+v, %v", r, err)
	}
}
