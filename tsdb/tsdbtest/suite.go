// Package tsdbtest is the conformance suite of the tsdb contract: every
// implementation runs it (in memory, on disk, across restarts) and must give
// the same answers. It also holds the project's standard workload
// (workload.go), which benchmarks and cmd/sextant-load generate. Only tests
// and that tool import it.
package tsdbtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Store is what the suite exercises.
type Store interface {
	tsdb.Appender
	tsdb.Querier
}

// Config is what the suite asks of a store it opens.
type Config struct {
	Now               func() int64 // the store's clock, Unix ms
	IngestMaxAge      int64        // ms
	MaxSeriesPerQuery int
}

// Harness opens stores for the suite. Stores use a 60 s step.
type Harness struct {
	// Open returns an empty store. The suite does not close it; Open should
	// register cleanup with t.
	Open func(t *testing.T, cfg Config) Store
	// Reopen, when set, closes s and opens it again from what it persisted,
	// returning the new store; the suite then reads after every write.
	Reopen func(t *testing.T, s Store, cfg Config) Store
}

// Times used by the suite: T0 is a block boundary for steps up to 1 h.
const (
	Minute = int64(60_000)
	Hour   = 60 * Minute
	T0     = int64(1_700_006_400_000) // 2023-11-15T00:00:00Z
)

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Normalization", testNormalization},
		{"Consolidation", testConsolidation},
		{"Aggregation", testAggregation},
		{"GroupBy", testGroupBy},
		{"QueryWords", testQueryWords},
		{"Tags", testTags},
		{"LateWrites", testLateWrites},
		{"Limits", testLimits},
		{"Rejections", testRejections},
		{"Partitions", testPartitions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, h)
		})
	}
}

// env is one store under test with a settable clock.
type env struct {
	t   *testing.T
	h   Harness
	cfg Config
	now int64
	s   Store
}

func newEnv(t *testing.T, h Harness, now int64) *env {
	e := &env{t: t, h: h, now: now}
	e.cfg = Config{Now: func() int64 { return e.now }, IngestMaxAge: 24 * Hour, MaxSeriesPerQuery: 1000}
	e.s = h.Open(t, e.cfg)
	return e
}

// write appends points and fails on errors and rejections; then, if the
// harness can, it restarts the store so that reads see persisted data.
func (e *env) write(pts ...tsdb.Datapoint) {
	e.t.Helper()
	b := &tsdb.Batch{Points: pts}
	if err := e.s.Append(context.Background(), b); err != nil {
		e.t.Fatalf("Append: %v", err)
	}
	if len(b.Rejected) > 0 {
		e.t.Fatalf("Append rejected %v", b.Rejected)
	}
	if e.h.Reopen != nil {
		e.s = e.h.Reopen(e.t, e.s, e.cfg)
	}
}

func (e *env) fetch(req tsdb.FetchRequest) []tsdb.Series {
	e.t.Helper()
	set, err := e.s.Fetch(context.Background(), req)
	if err != nil {
		e.t.Fatalf("Fetch(%s): %v", req.Query, err)
	}
	return set.Series
}

// P builds a datapoint.
func P(t int64, v float64, kv ...string) tsdb.Datapoint {
	return tsdb.Datapoint{Tags: tags.New(kv...), T: t, V: v}
}

var nan = math.NaN()

// equal compares series with NaN equal to NaN and a relative tolerance.
var equal = cmp.Options{
	cmpopts.EquateNaNs(),
	cmpopts.EquateApprox(1e-12, 1e-12),
	cmpopts.EquateEmpty(),
}

func (e *env) check(req tsdb.FetchRequest, want []tsdb.Series) {
	e.t.Helper()
	got := e.fetch(req)
	if diff := cmp.Diff(want, got, equal); diff != "" {
		e.t.Errorf("Fetch(%s, %s step %d) mismatch (-want +got):\n%s", req.Query, req.Aggregation, req.Step, diff)
	}
}

func rng(start, end, step int64) (int64, int64, int64) { return start, end, step }

func testNormalization(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	e.write(
		P(T0+10_000, 3, "name", "g", "atlas.dstype", "gauge"),
		P(T0+50_000, 7, "name", "g", "atlas.dstype", "gauge"),
		P(T0+60_001, 1, "name", "g", "atlas.dstype", "gauge"),
		P(T0+10_000, 3, "name", "mg", "atlas.dstype", "min-gauge"),
		P(T0+50_000, 7, "name", "mg", "atlas.dstype", "min-gauge"),
		P(T0+60_001, 1, "name", "mg", "atlas.dstype", "min-gauge"),
		P(T0+10_000, 3, "name", "s", "atlas.dstype", "sum"),
		P(T0+50_000, 7, "name", "s", "atlas.dstype", "sum"),
		P(T0+73_000, 1, "name", "r"),
		P(T0+133_000, 1, "name", "r"),
		P(T0+Minute, 100, "name", "c", "atlas.dstype", "counter"),
		P(T0+2*Minute, 160, "name", "c", "atlas.dstype", "counter"),
		P(T0+3*Minute, 100, "name", "c", "atlas.dstype", "counter"),
	)
	start, end, step := rng(T0+Minute, T0+4*Minute, Minute)
	f := func(name string, dst tsdb.DSType, vals ...float64) {
		t.Helper()
		ts := tags.New("name", name)
		if dst != tsdb.Rate {
			ts = tags.New("name", name, "atlas.dstype", dst.String())
		}
		e.check(tsdb.FetchRequest{Query: tags.Eq("name", name), Start: start, End: end, Step: step},
			[]tsdb.Series{{Tags: ts, DSType: dst, Values: vals}})
	}
	f("g", tsdb.Gauge, 7, 1, nan)
	f("mg", tsdb.MinGauge, 3, 1, nan)
	f("s", tsdb.Sum, 10, nan, nan)
	f("r", tsdb.Rate, 47.0/60, 1, nan)
	f("c", tsdb.Counter, nan, 1, 100.0/60) // across a reset: the value after it
}

func testConsolidation(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	// Primaries at 1-minute steps; queried at 3 minutes: point T covers the
	// primaries T-2m, T-1m and T.
	var pts []tsdb.Datapoint
	vals := []float64{1, 2, nan, 4, nan, nan, 7, 8, 9}
	for i, v := range vals {
		if v == v {
			ts := T0 + int64(i+1)*Minute
			pts = append(pts, P(ts, v, "name", "g", "atlas.dstype", "gauge"), P(ts, v, "name", "r"))
		}
	}
	e.write(pts...)
	start, end, step := rng(T0+3*Minute, T0+12*Minute, 3*Minute)
	for _, tc := range []struct {
		cf          tsdb.Consolidation
		gauge, rate []float64
	}{
		{tsdb.CFAvg, []float64{1.5, 4, 8}, []float64{1, 4.0 / 3, 8}},
		{tsdb.CFSum, []float64{3, 4, 24}, []float64{3, 4, 24}},
		{tsdb.CFMin, []float64{1, 4, 7}, []float64{1, 4, 7}},
		{tsdb.CFMax, []float64{2, 4, 9}, []float64{2, 4, 9}},
	} {
		req := tsdb.FetchRequest{Start: start, End: end, Step: step, CF: tc.cf}
		req.Query = tags.Eq("name", "g")
		e.check(req, []tsdb.Series{{Tags: tags.New("name", "g", "atlas.dstype", "gauge"), DSType: tsdb.Gauge, Values: tc.gauge}})
		req.Query = tags.Eq("name", "r")
		e.check(req, []tsdb.Series{{Tags: tags.New("name", "r"), DSType: tsdb.Rate, Values: tc.rate}})
	}
	// A series without data in the window is not part of the answer.
	e.check(tsdb.FetchRequest{Query: tags.Eq("name", "r"), Start: T0 + 15*Minute, End: T0 + 18*Minute, Step: 3 * Minute}, nil)
}

func testAggregation(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	// a: 1 2 _ ; b: 4 _ _ ; c (other name): 100 100 100
	e.write(
		P(T0+Minute, 1, "name", "m", "node", "a", "atlas.dstype", "gauge"),
		P(T0+2*Minute, 2, "name", "m", "node", "a", "atlas.dstype", "gauge"),
		P(T0+Minute, 4, "name", "m", "node", "b", "atlas.dstype", "gauge"),
		P(T0+Minute, 100, "name", "x", "atlas.dstype", "gauge"),
		P(T0+2*Minute, 100, "name", "x", "atlas.dstype", "gauge"),
		P(T0+3*Minute, 100, "name", "x", "atlas.dstype", "gauge"),
	)
	start, end, step := rng(T0+Minute, T0+4*Minute, Minute)
	for _, tc := range []struct {
		agg  tsdb.Aggregation
		want []float64
	}{
		{tsdb.AggSum, []float64{5, 2, nan}},
		{tsdb.AggCount, []float64{2, 1, nan}},
		{tsdb.AggMin, []float64{1, 2, nan}},
		{tsdb.AggMax, []float64{4, 2, nan}},
	} {
		e.check(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step, Aggregation: tc.agg},
			[]tsdb.Series{{Tags: nil, Values: tc.want}})
	}
	// Nothing matched: no series, aggregated or not.
	e.check(tsdb.FetchRequest{Query: tags.Eq("name", "none"), Start: start, End: end, Step: step, Aggregation: tsdb.AggSum}, nil)
	e.check(tsdb.FetchRequest{Query: tags.Eq("name", "none"), Start: start, End: end, Step: step}, nil)
	// Raw series come back sorted by tags.
	got := e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step})
	if len(got) != 2 || got[0].Tags.String() > got[1].Tags.String() {
		t.Errorf("raw series not sorted: %v", got)
	}
	// Consolidated before aggregating: a 2-minute sum of per-series averages.
	e.check(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: T0 + 2*Minute, End: T0 + 6*Minute, Step: 2 * Minute,
		Aggregation: tsdb.AggSum}, []tsdb.Series{{Values: []float64{1.5 + 4, nan}}})
}

func testGroupBy(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	var pts []tsdb.Datapoint
	for i, s := range []struct{ app, zone string }{{"a", "1"}, {"a", "2"}, {"b", "1"}, {"b", ""}, {"c", "1"}} {
		kv := []string{"name", "m", "app", s.app, "atlas.dstype", "gauge", "i", fmt.Sprint(i)}
		if s.zone != "" {
			kv = append(kv, "zone", s.zone)
		}
		pts = append(pts, P(T0+Minute, float64(i+1), kv...))
	}
	e.write(pts...)
	req := tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: T0 + Minute, End: T0 + 2*Minute, Step: Minute,
		Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}
	e.check(req, []tsdb.Series{
		{Tags: tags.New("app", "a"), Values: []float64{3}},
		{Tags: tags.New("app", "b"), Values: []float64{7}},
		{Tags: tags.New("app", "c"), Values: []float64{5}},
	})
	// Series lacking a group-by key are left out.
	req.GroupBy = []string{"zone", "app"}
	req.Aggregation = tsdb.AggCount
	e.check(req, []tsdb.Series{
		{Tags: tags.New("app", "a", "zone", "1"), Values: []float64{1}},
		{Tags: tags.New("app", "b", "zone", "1"), Values: []float64{1}},
		{Tags: tags.New("app", "c", "zone", "1"), Values: []float64{1}},
		{Tags: tags.New("app", "a", "zone", "2"), Values: []float64{1}},
	})
	req.GroupBy = []string{"nokey"}
	e.check(req, nil)
}

func testQueryWords(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	apps := []string{"api01", "api02", "www01", "API03", "db1000", "db2"}
	var pts []tsdb.Datapoint
	for _, a := range apps {
		pts = append(pts, P(T0+Minute, 1, "name", "m", "app", a, "atlas.dstype", "gauge"))
	}
	pts = append(pts, P(T0+Minute, 1, "name", "m", "atlas.dstype", "gauge"))
	e.write(pts...)
	count := func(q *tags.Query) float64 {
		set := e.fetch(tsdb.FetchRequest{Query: q, Start: T0 + Minute, End: T0 + 2*Minute, Step: Minute, Aggregation: tsdb.AggCount})
		if len(set) == 0 {
			return 0
		}
		return set[0].Values[0]
	}
	must := func(q *tags.Query, err error) *tags.Query {
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	f := func(q *tags.Query, want float64) {
		t.Helper()
		if got := count(q); got != want {
			t.Errorf("%s matched %v series, want %v", q, got, want)
		}
	}
	f(tags.True(), 7)
	f(tags.False(), 0)
	f(tags.Eq("app", "api01"), 1)
	f(tags.Has("app"), 6)
	f(tags.Not(tags.Has("app")), 1)
	f(tags.Not(tags.Eq("app", "api01")), 6) // includes the series without app
	f(must(tags.Re("app", "api")), 2)
	f(must(tags.ReIC("app", "api")), 3)
	f(tags.Contains("app", "0"), 5)
	f(tags.Starts("app", "db"), 2)
	f(tags.Ends("app", "01"), 2)
	f(tags.In("app", []string{"www01", "db2", "zz"}), 2)
	f(tags.Lt("app", "db2"), 4) // API03, api01, api02, db1000: lexical order
	f(tags.Le("app", "db2"), 5)
	f(tags.Gt("app", "db2"), 1)
	f(tags.Ge("app", "db2"), 2)
	f(tags.And(tags.Eq("name", "m"), must(tags.Re("app", "a"))), 2)
	f(tags.Or(tags.Eq("app", "db2"), tags.Eq("app", "www01")), 2)
}

func testTags(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	e.write(
		P(T0+Minute, 1, "name", "cpu", "app", "a"),
		P(T0+Minute, 1, "name", "cpu", "app", "b", "zone", "z"),
		P(T0+Minute, 1, "name", "mem", "app", "c"),
	)
	keys, err := e.s.Tags(context.Background(), tsdb.TagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []tsdb.TagCount{{Name: "app", Count: 3}, {Name: "name", Count: 3}, {Name: "zone", Count: 1}}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("Tags() mismatch (-want +got):\n%s", diff)
	}
	vals, err := e.s.Tags(context.Background(), tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), After: "a", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tsdb.TagCount{{Name: "b", Count: 1}}, vals); diff != "" {
		t.Errorf("Tags(app, cpu, after a) mismatch (-want +got):\n%s", diff)
	}
	// A window: the series with data in it.
	for _, w := range []struct {
		start, end int64
		want       []tsdb.TagCount
	}{
		{T0, T0 + Hour, []tsdb.TagCount{{Name: "a", Count: 1}, {Name: "b", Count: 1}}},
		{T0 + 2*Minute, T0 + Hour, nil}, // the newest data is before the window
		{T0 - 24*Hour, T0 - Hour, nil},
	} {
		vals, err := e.s.Tags(context.Background(), tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), Start: w.start, End: w.end})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w.want, vals); diff != "" {
			t.Errorf("Tags(app, cpu, [%d, %d)) mismatch (-want +got):\n%s", w.start, w.end, diff)
		}
	}
}

func testLateWrites(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+6*Hour)
	g := []string{"name", "g", "atlas.dstype", "gauge"}
	var pts []tsdb.Datapoint
	for i := int64(1); i <= 5*60; i++ {
		pts = append(pts, P(T0+i*Minute, float64(i), g...))
	}
	e.write(pts...)
	// Late: into the first (sealed) block, the middle, and the open block.
	e.write(P(T0+Minute, 1000, g...), P(T0+3*Hour, -1, g...), P(T0+5*Hour-30_000, 5000, g...))
	set := e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "g"), Start: T0 + Minute, End: T0 + 5*Hour + Minute, Step: Minute})
	if len(set) != 1 || len(set[0].Values) != 300 {
		t.Fatalf("fetched %v", set)
	}
	v := set[0].Values
	for i, want := range map[int]float64{0: 1000, 1: 2, 179: 180, 299: 5000} {
		if v[i] != want {
			t.Errorf("step %d = %v, want %v", i+1, v[i], want)
		}
	}
}

func testLimits(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	e.cfg.MaxSeriesPerQuery = 3
	e.s = h.Open(t, e.cfg)
	var pts []tsdb.Datapoint
	for i := range 5 {
		pts = append(pts, P(T0+Minute, 1, "name", "m", "i", fmt.Sprint(i)))
	}
	e.write(pts...)
	_, err := e.s.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: T0, End: T0 + Hour, Step: Minute, Aggregation: tsdb.AggSum})
	var le *tsdb.LimitError
	if !errors.As(err, &le) || le.Limit != "max-series-per-query" || le.Got != 5 {
		t.Errorf("Fetch over the series limit: %v, want a LimitError naming max-series-per-query", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.s.Fetch(ctx, tsdb.FetchRequest{Query: tags.Eq("i", "1"), Start: T0, End: T0 + Hour, Step: Minute}); err == nil {
		// A fetch may finish before it looks at the context; only a tags
		// call checks up front. Either way it must not hang or panic.
		t.Log("cancelled fetch completed")
	}
	if _, err := e.s.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.True(), Start: T0, End: T0 + Hour, Step: 7_000}); err == nil {
		t.Error("Fetch at a step that is not a multiple of the storage step succeeded")
	}
}

func testRejections(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	b := &tsdb.Batch{Points: []tsdb.Datapoint{
		P(T0+Hour, 1, "name", "ok"),
		P(T0+Hour-e.cfg.IngestMaxAge-Minute, 1, "name", "old"),
		P(T0+2*Hour, 1, "name", "future"),
		P(T0+Hour, 1, "app", "noname"),
	}}
	if err := e.s.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	want := []tsdb.Rejection{{Index: 1, Reason: tsdb.TooOld}, {Index: 2, Reason: tsdb.FromFuture}, {Index: 3, Reason: tsdb.MissingName}}
	if diff := cmp.Diff(want, b.Rejected); diff != "" {
		t.Errorf("Rejected mismatch (-want +got):\n%s", diff)
	}
	// Rejected datapoints leave nothing behind.
	keys, _ := e.s.Tags(context.Background(), tsdb.TagsRequest{Key: "name"})
	if len(keys) != 1 || keys[0].Name != "ok" {
		t.Errorf("names after rejections = %v, want only ok", keys)
	}
}

// testPartitions checks FetchRequest.Partitions and TagsRequest.Partitions:
// the partitions of a cluster split the series without overlap, so the
// answers for every partition asked one at a time add up to the whole.
func testPartitions(t *testing.T, h Harness) {
	e := newEnv(t, h, T0+Hour)
	var pts []tsdb.Datapoint
	for i := range 40 {
		pts = append(pts, P(T0+Minute, float64(i), "name", "m", "app", fmt.Sprint(i%3), "i", fmt.Sprint(i), "atlas.dstype", "gauge"))
	}
	e.write(pts...)
	const n = 4
	start, end, step := rng(T0+Minute, T0+2*Minute, Minute)
	all := e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step})
	var union []tsdb.Series
	sums := map[string]float64{}
	counts := map[string]int{}
	for p := range n {
		parts := &tsdb.Partitions{N: n, Want: []int{p}}
		got := e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step, Partitions: parts})
		for _, s := range got {
			if q := tags.PartitionOf(s.Tags, n); q != p {
				t.Errorf("partition %d answered series %v of partition %d", p, s.Tags, q)
			}
		}
		union = append(union, got...)
		for _, s := range e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step,
			Aggregation: tsdb.AggSum, GroupBy: []string{"app"}, Partitions: parts}) {
			sums[s.Tags.String()] += s.Values[0]
		}
		vals, err := e.s.Tags(context.Background(), tsdb.TagsRequest{Key: "app", Partitions: parts})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			counts[v.Name] += v.Count
		}
	}
	if len(union) != len(all) || len(all) != 40 {
		t.Errorf("partitions answered %d series, all %d, want 40", len(union), len(all))
	}
	want := map[string]float64{}
	for _, s := range e.fetch(tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step,
		Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}) {
		want[s.Tags.String()] = s.Values[0]
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("grouped sums over partitions mismatch (-whole +partitions):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"0": 14, "1": 13, "2": 13}, counts); diff != "" {
		t.Errorf("tag counts over partitions mismatch (-want +got):\n%s", diff)
	}
	// A partition number out of range is the caller's error.
	if _, err := e.s.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: end, Step: step,
		Partitions: &tsdb.Partitions{N: n, Want: []int{n}}}); err == nil {
		t.Error("Fetch with partition n: no error")
	}
}
