package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelmetric "go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Tests of issue #10 item 2 through the server's real HTTP paths: the
// percentiles of an OTLP histogram never lie outside its [min, max], in
// the stack language and in PromQL, while Spectator's percentile timers
// (a max, no min) keep Atlas's estimates exactly.

// sdkBounds are the OTel SDK's default explicit bucket boundaries.
var sdkBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// histCase is one histogram datapoint built from the values it records.
type histCase struct {
	name        string
	unit        string
	exponential bool
	cumulative  bool
	bounds      []float64 // explicit histograms
	scale       int32     // exponential histograms
	values      []float64
}

// minMax returns the smallest and largest values.
func (h histCase) minMax() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range h.values {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// appendTo adds the histogram as a metric with one datapoint over
// (start, t] to ms.
func (h histCase) appendTo(ms pmetric.MetricSlice, start, t time.Time) {
	m := ms.AppendEmpty()
	m.SetName(h.name)
	m.SetUnit(h.unit)
	temp := pmetric.AggregationTemporalityDelta
	if h.cumulative {
		temp = pmetric.AggregationTemporalityCumulative
	}
	lo, hi := h.minMax()
	sum := 0.0
	for _, v := range h.values {
		sum += v
	}
	if !h.exponential {
		hd := m.SetEmptyHistogram()
		hd.SetAggregationTemporality(temp)
		dp := hd.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
		counts := make([]uint64, len(h.bounds)+1)
		for _, v := range h.values {
			i := 0
			for i < len(h.bounds) && v > h.bounds[i] {
				i++
			}
			counts[i]++
		}
		dp.ExplicitBounds().FromRaw(h.bounds)
		dp.BucketCounts().FromRaw(counts)
		dp.SetCount(uint64(len(h.values)))
		dp.SetSum(sum)
		dp.SetMin(lo)
		dp.SetMax(hi)
		return
	}
	hd := m.SetEmptyExponentialHistogram()
	hd.SetAggregationTemporality(temp)
	dp := hd.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t))
	dp.SetScale(h.scale)
	// Bucket i is (base^i, base^(i+1)], base = 2^(2^-scale).
	idx := func(v float64) int32 {
		return int32(math.Ceil(math.Log2(v)*math.Exp2(float64(h.scale)))) - 1
	}
	first, last := idx(lo), idx(hi)
	counts := make([]uint64, last-first+1)
	for _, v := range h.values {
		counts[min(max(idx(v)-first, 0), last-first)]++
	}
	dp.Positive().SetOffset(first)
	dp.Positive().BucketCounts().FromRaw(counts)
	dp.SetCount(uint64(len(h.values)))
	dp.SetSum(sum)
	dp.SetMin(lo)
	dp.SetMax(hi)
}

// inRange reports whether x lies within [lo, hi], up to the rounding of
// scaling a value to seconds.
func inRange(x, lo, hi float64) bool {
	eps := 1e-12 * max(math.Abs(lo), math.Abs(hi))
	return x >= lo-eps && x <= hi+eps
}

// seconds is a histogram's value in the unit the percentiles come in:
// seconds for time units.
func seconds(unit string, v float64) float64 {
	if unit == "ms" {
		return v / 1000
	}
	return v
}

// uniform returns n values evenly spread over [lo, hi].
func uniform(n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*float64(i)/float64(max(n-1, 1))
	}
	return out
}

// TestOTLPPercentilesInsideMinMaxHTTP: the case (the SDK's default
// buckets, unit s, values of 10–99 ms: all in the bucket (0, 5] s), and
// ranges that fall into one Spectator bucket or two neighbouring ones,
// where interpolating inside the bucket alone gives a p99 above the max:
// every percentile of the graph API and of PromQL's histogram_quantile
// lies within [min, max], and the extremes meet min and max.
func TestOTLPPercentilesInsideMinMaxHTTP(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	cases := []histCase{
		{name: "pct.issue", unit: "s", bounds: sdkBounds, values: uniform(90, 0.010, 0.099)},
		// 10.1–10.4 ms: one Spectator bucket, (9.79, 11.18] ms.
		{name: "pct.onebucket", unit: "ms", bounds: sdkBounds, values: uniform(50, 10.1, 10.4)},
		// 10.5–11.5 ms: two neighbouring buckets.
		{name: "pct.twobuckets", unit: "ms", bounds: []float64{10, 11, 12}, values: uniform(40, 10.5, 11.5)},
		{name: "pct.exponential", unit: "s", exponential: true, scale: 3, values: uniform(30, 0.0101, 0.0104)},
		{name: "pct.cumulative", unit: "s", cumulative: true, bounds: sdkBounds, values: uniform(20, 0.0102, 0.0103)},
	}
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for _, h := range cases {
		h.appendTo(ms, t0.Add(-time.Second), t0)
	}
	if code, body := postOTLP(t, addr, md); code != 200 || strings.Contains(body, "rejected") {
		t.Fatalf("OTLP export: %d %s", code, body)
	}
	for _, h := range cases {
		lo, hi := h.minMax()
		lo, hi = seconds(h.unit, lo), seconds(h.unit, hi)
		lines := graph(t, addr, "name,"+h.name+",:eq,(,0,1,50,99,100,),:percentiles", t0.Add(-5*time.Second), t0.Add(5*time.Second))
		if len(lines) != 5 {
			t.Fatalf("%s: %d percentile lines, want 5: %v", h.name, len(lines), lines)
		}
		got := map[string]float64{}
		for legend, xs := range lines {
			n := 0
			for _, x := range xs {
				if math.IsNaN(x) {
					continue
				}
				n++
				got[legend] = x
				if !inRange(x, lo, hi) {
					t.Errorf("%s: %s = %v s, outside [%v, %v]", h.name, legend, x, lo, hi)
				}
			}
			if n != 1 {
				t.Errorf("%s: %s has %d values, want 1: %v", h.name, legend, n, xs)
			}
		}
		p0 := got["percentile(name="+h.name+",   0.0)"]
		p100 := got["percentile(name="+h.name+", 100.0)"]
		if !inRange(p0, lo, lo) || !inRange(p100, hi, hi) {
			t.Errorf("%s: p0 %v and p100 %v, want min %v and max %v", h.name, p0, p100, lo, hi)
		}
		// PromQL over the same buckets clamps the same way.
		for _, q := range []float64{0.5, 0.99} {
			ql := fmt.Sprintf(`histogram_quantile(%v, sum by (percentile) ({__name__=%q}))`, q, h.name)
			x := promInstant(t, addr, ql, t0)
			if !inRange(x, lo, hi) {
				t.Errorf("%s: %s = %v, outside [%v, %v]", h.name, ql, x, lo, hi)
			}
			want := got[fmt.Sprintf("percentile(name=%s, %5.1f)", h.name, q*100)]
			if math.Abs(x-want) > 1e-12 {
				t.Errorf("%s: %s = %v, :percentiles %v", h.name, ql, x, want)
			}
		}
	}
}

// TestOTLPPercentilesWithSDKHTTP is the case with the real client:
// the OTel Go SDK, its default (cumulative) temporality and default bucket
// boundaries, a histogram in unit s recording 90 values of 10–99 ms,
// exported over OTLP/HTTP to the server. p50 and p99 read from the graph
// API (and PromQL) lie inside [10 ms, 99 ms], near the true values, where
// the bucket (0, 5] s alone read as 2.5 s and 5.6 s.
func TestOTLPPercentilesWithSDKHTTP(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	ctx := context.Background()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL("http://"+addr+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	defer mp.Shutdown(ctx)
	h, err := mp.Meter("checkout").Float64Histogram("sdk.latency", otelmetric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	var values []float64
	for i := range 90 {
		v := 0.010 + 0.001*float64(i)
		h.Record(ctx, v)
		values = append(values, v)
	}
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	exported := time.Now()
	lines := graph(t, addr, "name,sdk.latency,:eq,(,50,99,),:percentiles", exported.Add(-10*time.Second), exported.Add(2*time.Second))
	slices.Sort(values)
	for _, p := range []float64{50, 99} {
		legend := fmt.Sprintf("percentile(name=sdk.latency, %5.1f)", p)
		xs := lines[legend]
		n := 0
		for _, x := range xs {
			if math.IsNaN(x) {
				continue
			}
			n++
			if x < 0.010 || x > 0.099 {
				t.Errorf("%s = %v s, outside [0.010, 0.099]", legend, x)
			}
			// Values evenly spread over [min, max] in the bucket: the
			// estimate is near the true percentile.
			if want := values[int(p/100*float64(len(values)-1))]; math.Abs(x-want) > 0.1*want {
				t.Errorf("%s = %v s, want about %v s", legend, x, want)
			}
		}
		if n == 0 {
			t.Errorf("%s has no value: %v", legend, lines)
		}
	}
	x := promInstant(t, addr, `histogram_quantile(0.99, sum by (percentile) (rate({__name__="sdk.latency"}[10s])))`, exported.Add(time.Second))
	if !(x >= 0.010 && x <= 0.099) {
		t.Errorf("histogram_quantile(0.99) = %v s, outside [0.010, 0.099]", x)
	}
}

// promInstant evaluates an instant PromQL query at t and returns its only
// sample.
func promInstant(t *testing.T, addr, q string, at time.Time) float64 {
	t.Helper()
	env := promDo(t, http.MethodGet, "http://"+addr, "/api/v1/query", url.Values{"query": {q}, "time": {fmt.Sprint(at.Unix())}})
	var vec struct {
		Result []struct {
			Value [2]any
		}
	}
	if err := json.Unmarshal(env.Data, &vec); err != nil || len(vec.Result) != 1 {
		t.Fatalf("%s: %v %s", q, err, env.Data)
	}
	s, _ := vec.Result[0].Value[1].(string)
	var x float64
	if _, err := fmt.Sscan(s, &x); err != nil {
		t.Fatalf("%s: value %q: %v", q, s, err)
	}
	return x
}

// TestOTLPPercentilesPropertyHTTP: random histograms (explicit with random
// or default bounds, exponential with random scales; time units and not;
// narrow and wide ranges; delta and cumulative) over intervals of 0.3 to
// 2.5 steps ending anywhere in a step, so that their counts straddle the
// 1 s steps: at every step, every percentile lies within the histogram's
// [min, max].
func TestOTLPPercentilesPropertyHTTP(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(10, seed))
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	var cases []histCase
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for i := range 40 {
		h := histCase{name: fmt.Sprintf("prop.h%d", i), unit: []string{"s", "ms", "By", "1"}[rng.IntN(4)],
			exponential: rng.IntN(3) == 0, cumulative: rng.IntN(4) == 0, scale: int32(rng.IntN(9))}
		// Values around a centre from 1e-4 to 1e4, spread from 0.1% to 10×.
		centre := math.Pow(10, -4+8*rng.Float64())
		spread := math.Pow(10, -3+4*rng.Float64())
		for range 1 + rng.IntN(200) {
			h.values = append(h.values, centre*math.Exp(spread*rng.NormFloat64()/4))
		}
		if rng.IntN(2) == 0 {
			h.bounds = sdkBounds
		} else {
			b := centre / 4
			for range 2 + rng.IntN(12) {
				h.bounds = append(h.bounds, b)
				b *= 1 + 3*rng.Float64()
			}
		}
		// An interval of 0.3 to 2.5 steps ending anywhere in a step.
		end := t0.Add(-time.Duration(rng.IntN(1000)) * time.Millisecond)
		h.appendTo(ms, end.Add(-time.Duration(300+rng.IntN(2200))*time.Millisecond), end)
		cases = append(cases, h)
	}
	if code, body := postOTLP(t, addr, md); code != 200 || strings.Contains(body, "rejected") {
		t.Fatalf("OTLP export: %d %s", code, body)
	}
	for _, h := range cases {
		lo, hi := h.minMax()
		lo, hi = seconds(h.unit, lo), seconds(h.unit, hi)
		lines := graph(t, addr, "name,"+h.name+",:eq,(,0,1,10,50,90,99,100,),:percentiles", t0.Add(-5*time.Second), t0.Add(5*time.Second))
		n := 0
		for legend, xs := range lines {
			for _, x := range xs {
				if math.IsNaN(x) {
					continue
				}
				n++
				if !inRange(x, lo, hi) {
					t.Errorf("seed %d: %s (unit %s, exponential %v, cumulative %v, %d values): %s = %v, outside [%v, %v]",
						seed, h.name, h.unit, h.exponential, h.cumulative, len(h.values), legend, x, lo, hi)
				}
			}
		}
		if n == 0 {
			t.Errorf("seed %d: %s has no percentile: %v", seed, h.name, lines)
		}
	}
}

// TestSpectatorPercentilesUnchangedHTTP: a Spectator percentile timer
// publishes a max but no min, so its percentiles are Atlas's estimates,
// unclamped, even where they lie above the max: 5 values in the bucket
// (9.79, 11.18] ms with a max of 10.4 ms read p99 = 11.17 ms, as in Atlas.
func TestSpectatorPercentilesUnchangedHTTP(t *testing.T) {
	t.Parallel()
	addr := startServe(t, testConfig(t))
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	ts := t0.UnixMilli()
	body := fmt.Sprintf(`{"tags":{"name":"spec.timer","nf.app":"api"},"metrics":[`+
		`{"tags":{"statistic":"percentile","percentile":"T0064","atlas.dstype":"sum"},"timestamp":%d,"value":5},`+
		`{"tags":{"statistic":"count","atlas.dstype":"sum"},"timestamp":%d,"value":5},`+
		`{"tags":{"statistic":"max","atlas.dstype":"gauge"},"timestamp":%d,"value":0.0104}]}`, ts, ts, ts)
	resp, err := http.Post("http://"+addr+"/api/v1/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d", resp.StatusCode)
	}
	lines := graph(t, addr, "name,spec.timer,:eq,(,50,99,),:percentiles", t0.Add(-5*time.Second), t0.Add(5*time.Second))
	// Atlas: linear inside the bucket (9 786 708, 11 184 809] ns.
	lo, hi := 9786708e-9, 11184809e-9
	for p, want := range map[string]float64{" 50.0": lo + 0.5*(hi-lo), " 99.0": lo + 0.99*(hi-lo)} {
		xs := lines["percentile(name=spec.timer, "+p+")"]
		var got []float64
		for _, x := range xs {
			if !math.IsNaN(x) {
				got = append(got, x)
			}
		}
		if len(got) != 1 || math.Abs(got[0]-want) > 1e-15 {
			t.Errorf("p%s = %v, want Atlas's %v (unclamped)", p, got, want)
		}
	}
	x := promInstant(t, addr, `histogram_quantile(0.99, sum by (percentile) (spec.timer))`, t0)
	if math.Abs(x-(lo+0.99*(hi-lo))) > 1e-15 {
		t.Errorf("histogram_quantile(0.99) = %v, want Atlas's %v", x, lo+0.99*(hi-lo))
	}
}

// TestOTLPPercentilesLiveAndRulesHTTP: the live stream (WebSocket, with
// backfill) and the alert rules evaluate :percentiles as the graph API
// does, clamped: 50 values of 10.1–10.4 ms per step, all in the bucket
// (9.79, 11.18] ms, whose unclamped p99 is 11.17 ms. A rule on p99 > 10.5
// ms never fires in a backtest; one on p99 > 10.3 ms fires.
func TestOTLPPercentilesLiveAndRulesHTTP(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.LiveDelay = 100 * time.Millisecond
	cfg.Alerting = alertingConfig{RulesDir: rulesDir(t, e2eRules), ExternalURL: "http://sextant.example"}
	addr := startServe(t, cfg)
	t0 := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	for i := range 5 {
		end := t0.Add(-time.Duration(i) * time.Second)
		md := pmetric.NewMetrics()
		h := histCase{name: "pct.live", unit: "ms", bounds: sdkBounds, values: uniform(50, 10.1, 10.4-0.05*float64(i))}
		h.appendTo(md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics(), end.Add(-time.Second), end)
		if code, body := postOTLP(t, addr, md); code != 200 || strings.Contains(body, "rejected") {
			t.Fatalf("OTLP export: %d %s", code, body)
		}
	}
	q := "name,pct.live,:eq,(,1,50,99,),:percentiles"
	_, ws := dialLive(t, addr, map[string]any{"id": "pct", "q": q, "step": "1s", "backfill": "20s"})
	// Backfill, then two live steps: every line of the backfill is in.
	ws.waitEnd(t, time.Now().Truncate(time.Second).Add(2*time.Second).UnixMilli(), "pct")
	ws.checkGraph(t, addr, "pct", q)
	_, _, lines := ws.joined(t, "pct")
	n := 0
	for label, xs := range lines {
		for _, x := range xs {
			if math.IsNaN(x) {
				continue
			}
			n++
			if x < 0.0101-1e-12 || x > 0.0104+1e-12 {
				t.Errorf("live %s = %v, outside [0.0101, 0.0104]", label, x)
			}
		}
	}
	if n != 15 {
		t.Errorf("live: %d values, want 3 percentiles × 5 steps: %v", n, lines)
	}

	backtest := func(threshold string) int {
		t.Helper()
		code, body := doJSON(t, "POST", "http://"+addr+"/api/v1/alerting/backtest",
			`{"rule":{"alert":"SlowP99","expr":"name,pct.live,:eq,(,99,),:percentiles,`+threshold+`,:gt"},"s":"now-20s","e":"now"}`)
		var bt struct{ Firing []struct{ Start, End int64 } }
		if err := json.Unmarshal(body, &bt); err != nil || code != 200 {
			t.Fatalf("backtest = %d %s", code, body)
		}
		return len(bt.Firing)
	}
	if n := backtest("0.0105"); n != 0 {
		t.Errorf("p99 > 10.5 ms fired %d times; the clamped p99 is at most 10.4 ms", n)
	}
	if n := backtest("0.0103"); n == 0 {
		t.Errorf("p99 > 10.3 ms never fired; the clamped p99 reaches 10.4 ms")
	}
}
