package promql_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
)

// TestHandComputed checks the functions without a stack-language twin
// against results worked out by hand from testData (gauges api/a = i+1,
// api/b = 2(i+1), web/a = 10-i, web/c = i/2 with every third step
// missing; requests stored as the rates k-0.5).
func TestHandComputed(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	f := func(q string, want ...string) {
		t.Helper()
		got := evalLines(t, en, q)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", q, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// Counters: rate = average stored rate over the window; increase =
	// rate × range; irate = the last stored rate.
	f(`increase(requests[2m])`, "{atlas.dstype=counter, nf.app=api}: _ 60 120 240 360 480 600 720 840 960 1080 1200")
	f(`irate(requests[5m])`, "{atlas.dstype=counter, nf.app=api}: _ 0.5 1.5 2.5 3.5 4.5 5.5 6.5 7.5 8.5 9.5 10.5")
	f(`delta(requests[2m])`, "{atlas.dstype=counter, nf.app=api}: _ 60 120 240 360 480 600 720 840 960 1080 1200")
	// Gauges: delta = last - first present; rate and irate treat the gauge
	// as a cumulative count (a drop is a reset).
	f(`delta(cpu{node="b"}[3m])`, "{atlas.dstype=gauge, nf.app=api, node=b}: _ 2 4 4 4 4 4 4 4 4 4 4")
	f(`rate(cpu{node="b"}[3m])`, "{atlas.dstype=gauge, nf.app=api, node=b}: _ 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333")
	f(`irate(cpu{"nf.app"="web", node="a"}[3m])`, "{atlas.dstype=gauge, nf.app=web, node=a}: _ 0.15 0.13333333333333333 0.11666666666666667 0.1 0.08333333333333333 0.06666666666666667 0.05 0.03333333333333333 0.016666666666666666 0 -0.016666666666666666")
	f(`deriv(cpu{node="b"}[5m])`, "{atlas.dstype=gauge, nf.app=api, node=b}: _ 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333 0.03333333333333333")
	f(`count_over_time(cpu{node="c"}[3m])`, "{atlas.dstype=gauge, nf.app=web, node=c}: _ 1 2 2 2 2 2 2 2 2 2 2")
	f(`last_over_time(cpu{node="c"}[2m])`, "{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=c}: _ 0.5 1 1 2 2.5 2.5 3.5 4 4 5 5.5")
	f(`quantile_over_time(0.5, cpu{node="a", "nf.app"="api"}[4m])`, "{atlas.dstype=gauge, nf.app=api, node=a}: 1 1.5 2 2.5 3.5 4.5 5.5 6.5 7.5 8.5 9.5 10.5")
	// histogram_quantile over a window clamps to the min and max over the
	// window (issue #10): the api histogram's values lie in [10.1, 10.4]
	// ms, inside one bucket (9.79, 11.18] ms.
	f(`histogram_quantile(0.99, sum by (percentile) (rate(rpc{"nf.app"="api"}[3m])))`, "{}: 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104 0.0104")
	f(`histogram_quantile(0.01, sum by (percentile) (increase(rpc{"nf.app"="api"}[3m])))`, "{}: 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101 0.0101")
	// Two selectors: the range cannot be told, nothing is clamped.
	f(`histogram_quantile(0.99, sum by (percentile) (rpc{"nf.app"="api"}) + 0 * sum by (percentile) (rpc{"nf.app"="api"}))`, "{}: 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002 0.011170827990000002")
	// Aggregations without a twin.
	f(`stddev(cpu{"nf.app"="api"})`, "{}: 0.5 1 1.5 2 2.5 3 3.5 4 4.5 5 5.5 6")
	f(`quantile(0.5, cpu{"nf.app"!=""})`, "{}: 2 3 4.5 7 5.5 5.5 7 5.75 6.5 10 8 8.75")
	f(`topk(1, cpu{"nf.app"="web"})`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=a}: 10 9 8 7 6 5 4 _ _ 1 _ _",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=c}: _ _ _ _ _ _ _ 3.5 4 _ 5 5.5")
	f(`bottomk by ("nf.app") (1, cpu{"nf.app"!=""})`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 1 2 3 4 5 6 7 8 9 10 11 12",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=a}: 10 _ _ 7 _ _ 4 3 2 1 0 -1",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=c}: _ 0.5 1 _ 2 2.5 _ _ _ _ _ _")
	f(`topk(1e300, cpu{"nf.app"="api"})`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 1 2 3 4 5 6 7 8 9 10 11 12",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 2 4 6 8 10 12 14 16 18 20 22 24")
	f(`sum without (node) (cpu)`,
		"{atlas.dstype=gauge}: 100 100 100 100 100 100 100 100 100 100 100 100",
		"{atlas.dstype=gauge, nf.app=api}: 3 6 9 12 15 18 21 24 27 30 33 36",
		"{atlas.dstype=gauge, nf.app=web}: 10 9.5 9 7 8 7.5 4 6.5 6 1 5 4.5")
	// Prometheus groups series lacking a by() tag under the empty value.
	f(`sum by ("nf.app") (cpu)`,
		"{}: 100 100 100 100 100 100 100 100 100 100 100 100",
		"{nf.app=api}: 3 6 9 12 15 18 21 24 27 30 33 36",
		"{nf.app=web}: 10 9.5 9 7 8 7.5 4 6.5 6 1 5 4.5")
	// topk and bottomk choose per point. Filters keep the vector's value; group_left copies tags of the one
	// side.
	f(`cpu{"nf.app"="web"} > 4`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=a}: 10 9 8 7 6 5 _ _ _ _ _ _",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=c}: _ _ _ _ _ _ _ _ _ _ 5 5.5")
	f(`2 < cpu{node="a"}`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: _ _ 3 4 5 6 7 8 9 10 11 12",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=web, node=a}: 10 9 8 7 6 5 4 3 _ _ _ _")
	f(`cpu{node="a"} * on ("nf.app") group_left (team) info`,
		"{atlas.dstype=gauge, nf.app=api, node=a, team=core}: 1 2 3 4 5 6 7 8 9 10 11 12",
		"{atlas.dstype=gauge, nf.app=web, node=a, team=edge}: 10 9 8 7 6 5 4 3 2 1 0 -1")
	f(`info * on ("nf.app") group_right (team) cpu{node="a"}`,
		"{atlas.dstype=gauge, nf.app=api, node=a, team=core}: 1 2 3 4 5 6 7 8 9 10 11 12",
		"{atlas.dstype=gauge, nf.app=web, node=a, team=edge}: 10 9 8 7 6 5 4 3 2 1 0 -1")
	f(`cpu{node="a"} - ignoring (node) cpu{node="b"}`, "{atlas.dstype=gauge, nf.app=api}: -1 -2 -3 -4 -5 -6 -7 -8 -9 -10 -11 -12")
	// Functions of values, scalars and tags. log2(2(i+1)) + log10(10(i+1))
	// - 2(i+1) is 1+1-2 = 0 at i=0.
	f(`round(cpu{node="c"})`, "{atlas.dstype=gauge, nf.app=web, node=c}: _ 1 1 _ 2 3 _ 4 4 _ 5 6")
	f(`round(cpu{node="c"}, 2)`, "{atlas.dstype=gauge, nf.app=web, node=c}: _ 0 2 _ 2 2 _ 4 4 _ 6 6")
	f(`ceil(cpu{node="c"})`, "{atlas.dstype=gauge, nf.app=web, node=c}: _ 1 1 _ 2 3 _ 4 4 _ 5 6")
	f(`floor(cpu{node="c"})`, "{atlas.dstype=gauge, nf.app=web, node=c}: _ 0 1 _ 2 2 _ 3 4 _ 5 5")
	f(`clamp(cpu{node="b"}, 5, 10)`, "{atlas.dstype=gauge, nf.app=api, node=b}: 5 5 6 8 10 10 10 10 10 10 10 10")
	f(`log2(cpu{node="b"}) + log10(cpu{node="b"} * 5) - ln(exp(cpu{node="b"}))`, "{atlas.dstype=gauge, nf.app=api, node=b}: 0 -0.6989700043360187 -1.9379162445591813 -3.3979400086720375 -4.9791019007766195 -6.6368862488952 -8.34754703792814 -10.096910013008056 -11.875832489118363 -13.678071905112638 -15.499175696204478 -17.33585625323122")
	f(`time()`, "scalar: 1.69999998e+09 1.70000004e+09 1.7000001e+09 1.70000016e+09 1.70000022e+09 1.70000028e+09 1.70000034e+09 1.7000004e+09 1.70000046e+09 1.70000052e+09 1.70000058e+09 1.70000064e+09")
	f(`vector(3)`, "{}: 3 3 3 3 3 3 3 3 3 3 3 3")
	f(`scalar(cpu{node="c"}) + 1`, "scalar: NaN 1.5 2 NaN 3 3.5 NaN 4.5 5 NaN 6 6.5")
	f(`absent(cpu{node="c", "nf.app"="web"})`, "{nf.app=web, node=c}: 1 _ _ 1 _ _ 1 _ _ 1 _ _")
	f(`absent(nothing{job="x"})`, "{job=x}: 1 1 1 1 1 1 1 1 1 1 1 1")
	f(`label_replace(node_load, "port", "$2", "instance", "(.*):(.*)")`, "{__name__=node_load, atlas.dstype=gauge, instance=host:9100, port=9100}: 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5")
	f(`label_join(info{"nf.app"="api"}, "id", "/", "nf.app", "team", "__name__")`, "{__name__=info, atlas.dstype=gauge, id=api/core/info, nf.app=api, team=core}: 1 1 1 1 1 1 1 1 1 1 1 1")
	// Prometheus le buckets: rank 36 of 40 falls in (0.5, 1] holding 8.
	f(`histogram_quantile(0.9, latency_bucket)`, "{atlas.dstype=gauge}: 0.875 0.875 0.875 0.875 0.875 0.875 0.875 0.875 0.875 0.875 0.875 0.875")
	f(`histogram_quantile(0.99, latency_bucket)`, "{atlas.dstype=gauge}: 1 1 1 1 1 1 1 1 1 1 1 1")
	f(`-cpu{node="b"} ^ 2 % 7`, "{atlas.dstype=gauge, nf.app=api, node=b}: -4 -2 -1 -1 -2 -4 -0 -4 -2 -1 -1 -2")
	// ",:" inside a PromQL string is not the stack language.
	f(`label_replace(vector(1), "x", "a,:b", "", "")`, "{x=a,:b}: 1 1 1 1 1 1 1 1 1 1 1 1")
	f(`sort_desc(cpu{"nf.app"="api"})`,
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 1 2 3 4 5 6 7 8 9 10 11 12",
		"{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 2 4 6 8 10 12 14 16 18 20 22 24")
}

// TestInstant checks that an instant query at T answers the storage step
// ending at or before T, and the result types.
func TestInstant(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	ctx := context.Background()
	for _, tc := range []struct {
		t    int64
		q    string
		want string
	}{
		{t0 + 3*step, `cpu{node="b"}`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8"},
		{t0 + 3*step + 59_999, `cpu{node="b"}`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8"},
		{t0 + 4*step, `cpu{node="b"} offset 1m`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8"},
		{t0 + 3*step, `sum(cpu{"nf.app"="api"})`, "{}: 12"},
		{t0 + 3*step, `1+1`, "scalar: 2"},
		{t0 + 3*step, `sort_desc(cpu{"nf.app"="api"})`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8\n{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 4"},
		{t0 + 3*step, `sort(cpu{"nf.app"="api"})`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 4\n{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8"},
		{t0 + 3*step, `sort_by_label_desc(cpu{"nf.app"="api"}, "node")`, "{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=b}: 8\n{__name__=cpu, atlas.dstype=gauge, nf.app=api, node=a}: 4"},
		{t0 + 3*step, `name,cpu,:eq,nf.app,api,:eq,:and,:sum`, "{__name__=cpu, nf.app=api}: 12"},
	} {
		res, err := en.Instant(ctx, tc.q, tc.t)
		if err != nil {
			t.Fatalf("Instant(%q): %v", tc.q, err)
		}
		if got := strings.Join(lines(res), "\n"); got != tc.want {
			t.Errorf("Instant(%q, %d) =\n%s\nwant\n%s", tc.q, tc.t, got, tc.want)
		}
	}
	res, err := en.Instant(ctx, `cpu{node="c"}[3m]`, t0+5*step)
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != promql.TypeMatrix || len(res.Series) != 1 || !slices.Equal(res.Times[0], []int64{t0 + 4*step, t0 + 5*step}) || !slices.Equal(res.Series[0].Values, []float64{2, 2.5}) {
		t.Errorf("range selector: %+v", res)
	}
	if res, err := en.Instant(ctx, `"text"`, t0); err != nil || res.Type != promql.TypeString || res.String != "text" {
		t.Errorf("string literal: %+v, %v", res, err)
	}
}

// TestErrors checks that everything outside the subset is bad_data naming
// the construct, and the limits.
func TestErrors(t *testing.T) {
	t.Parallel()
	en := newEngine(t)
	ctx := context.Background()
	f := func(q string, typ promql.ErrorType, mention string) {
		t.Helper()
		_, err := en.Range(ctx, q, t0, t0+11*step, step)
		var pe *promql.Error
		if !errors.As(err, &pe) || pe.Type != typ || !strings.Contains(pe.Msg, mention) {
			t.Errorf("Range(%q) = %v, want a %s error mentioning %q", q, err, typ, mention)
		}
	}
	f(`predict_linear(cpu[5m], 60)`, promql.BadData, `"predict_linear"`)
	f(`holt_winters(cpu[5m], 0.1, 0.1)`, promql.BadData, `holt_winters`)
	f(`count_values("v", cpu)`, promql.BadData, `"count_values"`)
	f(`stdvar(cpu)`, promql.BadData, `"stdvar"`)
	f(`cpu and cpu`, promql.BadData, `"and"`)
	f(`cpu or cpu`, promql.BadData, `"or"`)
	f(`atan2(cpu, cpu)`, promql.BadData, `atan2`)
	f(`max_over_time(cpu[5m:1m])`, promql.BadData, `subqueries`)
	f(`cpu @ 1700000000`, promql.BadData, `@ modifier`)
	f(`cpu[5m]`, promql.BadData, `range vector`)
	f(`sum(`, promql.BadData, `parse error`)
	f(`name,cpu,:eq,:foo`, promql.BadData, `:foo`)
	f(`rate(cpu[5y])`, promql.Execution, `storage steps`)
	f(`cpu{node="a"} + on () cpu`, promql.Execution, `many-to-many`)
	f(`cpu + ignoring (node) cpu`, promql.Execution, `many-to-many`)
	if _, err := en.Range(ctx, `cpu`, t0, t0+11_000*step, step); err == nil || !strings.Contains(err.Error(), "11,000 points") {
		t.Errorf("11 001 points: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := en.Range(cctx, `cpu`, t0, t0+11*step, step); promql.Classify(err).Type != promql.Canceled {
		t.Errorf("canceled: %v", err)
	}
}

// FuzzQuery evaluates arbitrary queries: no input may panic, and no error
// may be internal (user input is bad_data at worst).
func FuzzQuery(f *testing.F) {
	for _, q := range []string{`cpu`, `sum by ("nf.app") (rate(requests[3m]))`, `histogram_quantile(0.9, latency_bucket)`,
		`cpu{node="a"} * on ("nf.app") group_left (team) info`, `label_replace(node_load, "p", "$2", "instance", "(.*):(.*)")`,
		`name,cpu,:eq,:sum`, `topk(2, cpu) > bool 3`, `absent(x{a="b"})`, `-time() % 3 ^ 2`, `sort_desc(cpu)`, `quantile(0.5, cpu)`,
		`histogram_quantile(0.5, sum by (percentile) (call))`, `clamp(cpu, 1, 0)`, `round(cpu, 0)`} {
		f.Add(q)
	}
	store := querytest.Open(f, step, t0+100*step, testData()...)
	en, err := promql.New(store, promql.Options{StorageStep: step})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if len(q) > 512 {
			return
		}
		_, err := en.Range(context.Background(), q, t0, t0+5*step, step)
		if err != nil && promql.Classify(err).Type == promql.Internal {
			t.Fatalf("Range(%q): internal error %v", q, err)
		}
	})
}

// failingStore is a store whose reads fail as a broken disk would.
type failingStore struct{ tsdb.Querier }

var errDisk = errors.New("read block 42: input/output error")

func (failingStore) Fetch(context.Context, tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	return nil, errDisk
}

// TestErrorBlame checks whose fault an error is said to be, for PromQL and
// for the stack language through the same door: a store that fails is
// internal (a 500, never the user's bad_data), a mistake in the program is
// bad_data.
func TestErrorBlame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	en, err := promql.New(failingStore{}, promql.Options{StorageStep: step})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`cpu`, `sum by (node) (cpu)`, `name,cpu,:eq,:sum`, `name,cpu,:eq,(,node,),:by`} {
		_, err := en.Range(ctx, q, t0, t0+10*step, step)
		if e := promql.Classify(err); e.Type != promql.Internal || !errors.Is(err, errDisk) {
			t.Errorf("%s over a failing store: %v (type %s), want internal wrapping the disk error", q, err, e.Type)
		}
	}
	good := newEngine(t)
	for _, q := range []string{`name,cpu,:eq,:sum,:stat-max,:add`, `name,cpu,:eq,:foo`} {
		_, err := good.Range(ctx, q, t0, t0+10*step, step)
		if e := promql.Classify(err); err == nil || e.Type != promql.BadData {
			t.Errorf("%s: %v, want bad_data", q, err)
		}
	}
}
