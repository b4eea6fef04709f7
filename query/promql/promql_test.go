package promql_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

const (
	step = int64(60_000)
	t0   = 28_333_333 * step // 2023-11-14T22:13:00Z, a step boundary
)

// testData is the store every test here reads: gauges with a gap, a
// counter (cumulative 30·k² at step k, which the store keeps as the
// per-second rates k-0.5), Prometheus-style le buckets, Sextant
// percentile timer buckets, and tags spelled the way other protocols
// spell them (dots in keys, colons in values).
func testData() []querytest.Input {
	n := 12
	gen := func(f func(i int) float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	in := []querytest.Input{
		{Tags: tags.New("name", "cpu", "nf.app", "api", "node", "a", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return float64(i + 1) })},
		{Tags: tags.New("name", "cpu", "nf.app", "api", "node", "b", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return float64(2 * (i + 1)) })},
		{Tags: tags.New("name", "cpu", "nf.app", "web", "node", "a", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return float64(10 - i) })},
		{Tags: tags.New("name", "cpu", "nf.app", "web", "node", "c", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 {
			if i%3 == 0 {
				return math.NaN()
			}
			return float64(i) / 2
		})},
		// A series without nf.app: Prometheus groups it under {}.
		{Tags: tags.New("name", "cpu", "node", "z", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return 100 })},
		{Tags: tags.New("name", "requests", "nf.app", "api", "atlas.dstype", "counter"), Values: gen(func(i int) float64 { return 30 * float64(i*i) })},
		{Tags: tags.New("name", "node_load", "instance", "host:9100", "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return 0.5 })},
		{Tags: tags.New("name", "info", "nf.app", "api", "team", "core", "atlas.dstype", "gauge"), Values: gen(func(int) float64 { return 1 })},
		{Tags: tags.New("name", "info", "nf.app", "web", "team", "edge", "atlas.dstype", "gauge"), Values: gen(func(int) float64 { return 1 })},
	}
	// Cumulative le buckets (gauges here, so the values are the counts).
	for _, b := range []struct {
		le string
		c  float64
	}{{"0.1", 10}, {"0.5", 30}, {"1", 38}, {"+Inf", 40}} {
		in = append(in, querytest.Input{Tags: tags.New("name", "latency_bucket", "le", b.le, "atlas.dstype", "gauge"), Values: gen(func(int) float64 { return b.c })})
	}
	// Percentile timer buckets: counts per bucket (rates), as a
	// PercentileTimer publishes them.
	for _, b := range []struct {
		idx int
		c   float64
	}{{20, 5}, {40, 3}, {60, 1}, {61, 1}} {
		in = append(in, querytest.Input{Tags: tags.New("name", "call", "statistic", "percentile", "percentile", lib.PercentileTag('T', b.idx), "nf.app", "api"), Values: gen(func(i int) float64 { return b.c * float64(1+i%2) })})
	}
	// An OTLP histogram (issue #10): buckets with statistic=min and
	// statistic=max, narrower than the bucket the values fall in, so the
	// estimates are clamped; web's min is missing at every fourth point.
	for _, h := range []struct {
		app            string
		buckets        map[int]float64
		lo, hi         float64
		missingMinEach int
	}{
		{"api", map[int]float64{100: 5}, 0.0101, 0.0104, 0},
		{"web", map[int]float64{100: 3, 101: 1}, 0.0100, 0.0120, 4},
	} {
		for idx, c := range h.buckets {
			in = append(in, querytest.Input{Tags: tags.New("name", "rpc", "statistic", "percentile", "percentile", lib.PercentileTag('T', idx), "nf.app", h.app, "atlas.dstype", "sum"),
				Values: gen(func(i int) float64 { return c * float64(1+i%3) })})
		}
		in = append(in,
			querytest.Input{Tags: tags.New("name", "rpc", "statistic", "min", "nf.app", h.app, "atlas.dstype", "min-gauge"), Values: gen(func(i int) float64 {
				if h.missingMinEach > 0 && i%h.missingMinEach == h.missingMinEach-1 {
					return math.NaN()
				}
				return h.lo + 0.0001*float64(i%2)
			})},
			querytest.Input{Tags: tags.New("name", "rpc", "statistic", "max", "nf.app", h.app, "atlas.dstype", "gauge"), Values: gen(func(i int) float64 { return h.hi - 0.0001*float64(i%3) })})
	}
	for i := range in {
		in[i].Start = t0
	}
	return in
}

func newEngine(t testing.TB) *promql.Engine {
	t.Helper()
	store := querytest.Open(t, step, t0+100*step, testData()...)
	en, err := promql.New(store, promql.Options{StorageStep: step})
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// lines renders a result as "tags: v1 v2 ..." lines, sorted, values with
// %g and _ for missing.
func lines(res *promql.Result) []string {
	var out []string
	for _, s := range res.Series {
		var b strings.Builder
		b.WriteString(s.Tags.String())
		b.WriteString(":")
		for _, v := range s.Values {
			if math.IsNaN(v) {
				b.WriteString(" _")
			} else {
				fmt.Fprintf(&b, " %g", v)
			}
		}
		out = append(out, b.String())
	}
	if res.Type == promql.TypeScalar {
		var b strings.Builder
		b.WriteString("scalar:")
		for _, v := range res.Scalar {
			fmt.Fprintf(&b, " %g", v)
		}
		out = append(out, b.String())
	}
	return out
}

// evalLines evaluates q over the 12 test points and renders the answer.
func evalLines(t *testing.T, en *promql.Engine, q string) []string {
	t.Helper()
	res, err := en.Range(context.Background(), q, t0, t0+11*step, step)
	if err != nil {
		t.Fatalf("Range(%q): %v", q, err)
	}
	return lines(res)
}

// byKeys indexes a result's series by the values of keys.
func byKeys(t *testing.T, res *promql.Result, keys []string) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for _, s := range res.Series {
		var k []string
		for _, key := range keys {
			v, _ := s.Tags.Get(key)
			k = append(k, v)
		}
		ks := strings.Join(k, ",")
		if _, dup := out[ks]; dup {
			t.Fatalf("two series for %s=%s", keys, ks)
		}
		out[ks] = s.Values
	}
	return out
}

// TestPromQLMatchesASL evaluates PromQL and its stack-language twin on the
// same store and requires the same series and values (to 1e-9) at every
// point from skip on (rolling operators start empty at the range start).
func TestPromQLMatchesASL(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	cases := []struct {
		name, promql, asl string
		keys              []string
		skip              int
	}{
		{"selector", `cpu`, `name,cpu,:eq,:all`, []string{"nf.app", "node"}, 0},
		{"dotted tag", `cpu{"nf.app"="api"}`, `name,cpu,:eq,nf.app,api,:eq,:and,:all`, []string{"node"}, 0},
		{"name matcher", `{__name__="cpu", node!="a"}`, `name,cpu,:eq,node,a,:eq,:not,:and,:all`, []string{"nf.app", "node"}, 0},
		{"regex", `cpu{node=~"a|b"}`, `name,cpu,:eq,node,(,a,b,),:in,:and,:all`, []string{"nf.app", "node"}, 0},
		{"not regex", `cpu{node!~"[ab]"}`, `name,cpu,:eq,node,[ab],:re,:not,:and,:all`, []string{"node"}, 0},
		{"colon value", `{instance="host:9100"}`, `instance,host:9100,:eq,:all`, []string{"instance"}, 0},
		{"counter is its rate", `requests`, `name,requests,:eq,:all`, []string{"nf.app"}, 0},
		{"sum", `sum(cpu)`, `name,cpu,:eq,:sum`, nil, 0},
		{"min", `min(cpu)`, `name,cpu,:eq,:min`, nil, 0},
		{"max", `max(cpu)`, `name,cpu,:eq,:max`, nil, 0},
		{"count", `count(cpu)`, `name,cpu,:eq,:count`, nil, 0},
		{"avg", `avg(cpu)`, `name,cpu,:eq,:avg`, nil, 0},
		{"sum by", `sum by (node) (cpu)`, `name,cpu,:eq,(,node,),:by`, []string{"node"}, 0},
		{"max by dotted", `max by ("nf.app") (cpu{"nf.app"=~".+"})`, `name,cpu,:eq,nf.app,:has,:and,:max,(,nf.app,),:by`, []string{"nf.app"}, 0},
		{"avg by", `avg by ("nf.app") (cpu{"nf.app"!=""})`, `name,cpu,:eq,nf.app,:has,:and,:avg,(,nf.app,),:by`, []string{"nf.app"}, 0},
		{"unquoted dotted names", `sum by (nf.app) (cpu{nf.app!=""})`, `name,cpu,:eq,nf.app,:has,:and,(,nf.app,),:by`, []string{"nf.app"}, 0},
		{"count by", `count by (node) (cpu)`, `name,cpu,:eq,:count,(,node,),:by`, []string{"node"}, 0},
		{"sum of rates", `sum(rate(requests[1m]))`, `name,requests,:eq,:sum`, nil, 0},
		{"scalar arithmetic", `cpu{"nf.app"="api"} * 2 + 1`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,2,:mul,1,:add`, []string{"node"}, 0},
		{"comparison bool", `cpu{"nf.app"="api"} > bool 4`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,4,:gt`, []string{"node"}, 0},
		{"vector division on", `sum by ("nf.app") (cpu{"nf.app"!=""}) / on ("nf.app") count by ("nf.app") (cpu{"nf.app"!=""})`,
			`name,cpu,:eq,nf.app,:has,:and,(,nf.app,),:by,name,cpu,:eq,nf.app,:has,:and,:count,(,nf.app,),:by,:div`, []string{"nf.app"}, 0},
		{"abs", `abs(cpu{"nf.app"="web"})`, `name,cpu,:eq,nf.app,web,:eq,:and,:all,:abs`, []string{"node"}, 0},
		{"sqrt", `sqrt(cpu{"nf.app"="api"})`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,:sqrt`, []string{"node"}, 0},
		{"clamp_min", `clamp_min(cpu{"nf.app"="api"}, 5)`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,5,:clamp-min`, []string{"node"}, 0},
		{"clamp_max", `clamp_max(cpu{"nf.app"="api"}, 5)`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,5,:clamp-max`, []string{"node"}, 0},
		{"offset", `sum(cpu{"nf.app"="api"} offset 2m)`, `name,cpu,:eq,nf.app,api,:eq,:and,:sum,2m,:offset`, nil, 0},
		{"rate", `rate(requests[3m])`, `name,requests,:eq,:all,3,1,:rolling-mean`, []string{"nf.app"}, 2},
		{"avg_over_time", `avg_over_time(cpu{node="c"}[3m])`, `name,cpu,:eq,node,c,:eq,:and,:all,3,1,:rolling-mean`, []string{"node"}, 2},
		{"sum_over_time", `sum_over_time(cpu{"nf.app"="api"}[4m])`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,4,:rolling-sum`, []string{"node"}, 3},
		{"max_over_time", `max_over_time(cpu{"nf.app"="web"}[3m])`, `name,cpu,:eq,nf.app,web,:eq,:and,:all,3,:rolling-max`, []string{"node"}, 2},
		{"min_over_time", `min_over_time(cpu{"nf.app"="api"}[3m])`, `name,cpu,:eq,nf.app,api,:eq,:and,:all,3,:rolling-min`, []string{"node"}, 2},
		{"histogram_quantile over percentile timers", `histogram_quantile(0.99, sum by (percentile) (call))`, `name,call,:eq,(,99,),:percentiles`, nil, 0},
		{"histogram_quantile by", `histogram_quantile(0.9, sum by (percentile, nf.app) (call))`, `name,call,:eq,(,nf.app,),:by,(,90,),:percentiles`, []string{"nf.app"}, 0},
		{"increase", `increase(requests[3m])`, `name,requests,:eq,:all,3,1,:rolling-mean,180,:mul`, []string{"nf.app"}, 2},
		{"grouped offset", `sum by (nf.app) (cpu{nf.app=~"api|web"} offset 1m)`, `name,cpu,:eq,(,nf.app,),:by,1m,:offset`, []string{"nf.app"}, 0},
		{"histogram_quantile median", `histogram_quantile(0.5, sum by (percentile) (call))`, `name,call,:eq,(,50,),:percentiles`, nil, 0},
		{"histogram_quantile clamped", `histogram_quantile(0.99, sum by (percentile) (rpc))`, `name,rpc,:eq,(,99,),:percentiles`, nil, 0},
		{"histogram_quantile clamped low", `histogram_quantile(0.01, sum by (percentile) (rpc))`, `name,rpc,:eq,(,1,),:percentiles`, nil, 0},
		{"histogram_quantile clamped by", `histogram_quantile(0.99, sum by (percentile, nf.app) (rpc{statistic="percentile"}))`,
			`name,rpc,:eq,statistic,percentile,:eq,:and,(,nf.app,),:by,(,99,),:percentiles`, []string{"nf.app"}, 0},
		{"histogram_quantile clamped raw", `histogram_quantile(0.01, rpc{nf.app="api"})`, `name,rpc,:eq,nf.app,api,:eq,:and,(,1,),:percentiles`, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := en.Range(context.Background(), tc.promql, t0, t0+11*step, step)
			if err != nil {
				t.Fatalf("PromQL %s: %v", tc.promql, err)
			}
			a, err := en.Range(context.Background(), tc.asl, t0, t0+11*step, step)
			if err != nil {
				t.Fatalf("ASL %s: %v", tc.asl, err)
			}
			if p.Start != a.Start || p.Points != a.Points {
				t.Fatalf("points: PromQL %d from %d, ASL %d from %d", p.Points, p.Start, a.Points, a.Start)
			}
			pm, am := byKeys(t, p, tc.keys), byKeys(t, a, tc.keys)
			if len(pm) == 0 || len(pm) != len(am) {
				t.Fatalf("%d PromQL series %v, %d ASL series %v", len(pm), lines(p), len(am), lines(a))
			}
			for k, pv := range pm {
				av, ok := am[k]
				if !ok {
					t.Fatalf("series %s only in PromQL; ASL has %v", k, lines(a))
				}
				for i := tc.skip; i < len(pv); i++ {
					if !same(pv[i], av[i]) {
						t.Errorf("%s at point %d: PromQL %v, ASL %v\nPromQL %v\nASL %v", k, i, pv[i], av[i], lines(p), lines(a))
						break
					}
				}
			}
		})
	}
}

func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
