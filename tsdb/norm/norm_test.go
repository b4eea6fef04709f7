package norm

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// point is one normalized step.
type point struct {
	T int64
	V float64
}

func expand(e Emission, step int64) []point {
	var ps []point
	for i := 0; i < e.N; i++ {
		v := e.Fill
		if i == 0 {
			v = e.First0
		}
		ps = append(ps, point{e.First + int64(i)*step, v})
	}
	return ps
}

type sample struct {
	t    int64
	v    float64
	want []point
}

func TestRate(t *testing.T) {
	t.Parallel()
	const min = 60000
	// Worked examples of asl.md §1.2 (Atlas NormalizeValueFunctionSuite).
	for _, tc := range []struct {
		name            string
		step, heartbeat int64
		samples         []sample
	}{
		{"unaligned 1:13 then 2:13", min, min, []sample{
			{73000, 1, []point{{60000, 47.0 / 60}}},
			{133000, 1, []point{{120000, 1}}},
		}},
		{"step 10 heartbeat 20", 10, 20, []sample{
			{5, 1, []point{{0, 0.5}}},
			{15, 2, []point{{10, 1.5}}},
			{25, 2, []point{{20, 2}}},
		}},
		{"aligned passes through", 10, 20, []sample{
			{10, 1, []point{{10, 1}}},
			{20, 2, []point{{20, 2}}},
			{30, 3, []point{{30, 3}}},
		}},
		{"one missed interval is filled", 10, 20, []sample{
			{10, 1, []point{{10, 1}}},
			{30, 2, []point{{20, 2}, {30, 2}}},
		}},
		{"gap beyond heartbeat starts over", 10, 20, []sample{
			{10, 1, []point{{10, 1}}},
			{35, 4, []point{{30, 2}}}, // first sample again: (25,35] -> 30 gets half
			{45, 4, []point{{40, 4}}},
		}},
		{"updates within a step accumulate", 10, 20, []sample{
			{10, 1, []point{{10, 1}}},
			{13, 2, nil}, // (10,13] weight 0.3
			{17, 4, nil}, // (13,17] weight 0.4
			{20, 1, []point{{20, 0.6 + 1.6 + 0.3}}},
		}},
		{"duplicate and late are ignored", 10, 20, []sample{
			{10, 1, []point{{10, 1}}},
			{10, 5, nil},
			{5, 5, nil},
			{20, 2, []point{{20, 2}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, smp := range tc.samples {
				e, _ := s.Rate(tc.step, tc.heartbeat, smp.t, smp.v)
				got := expand(e, tc.step)
				if diff := cmp.Diff(smp.want, got, cmp.Comparer(approx)); diff != "" {
					t.Errorf("Rate(%d, %v) mismatch (-want +got):\n%s", smp.t, smp.v, diff)
				}
			}
		})
	}
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(a)) }

func TestRateResults(t *testing.T) {
	t.Parallel()
	var s State
	f := func(ts int64, want Result) {
		t.Helper()
		if _, got := s.Rate(10, 20, ts, 1); got != want {
			t.Errorf("Rate(%d) = %v, want %v", ts, got, want)
		}
	}
	f(10, Applied)
	f(10, Duplicate)
	f(9, Late)
	f(11, Applied)
}

func TestCounter(t *testing.T) {
	t.Parallel()
	const step = 60000
	hb := CounterHeartbeat(step)
	for _, tc := range []struct {
		name    string
		samples []sample
	}{
		{"first sample emits nothing, then per-second rates", []sample{
			{60000, 100, nil},
			{120000, 160, []point{{120000, 1}}},
			{180000, 280, []point{{180000, 2}}},
		}},
		{"reset gives zero", []sample{
			{60000, 100, nil},
			{120000, 10, []point{{120000, 0}}},
			{180000, 70, []point{{180000, 1}}},
		}},
		{"missed sample within the two-step heartbeat is filled", []sample{
			{60000, 0, nil},
			{120000, 60, []point{{120000, 1}}},
			{240000, 300, []point{{180000, 2}, {240000, 2}}},
		}},
		{"a gap after the first sample is not filled (as in Atlas)", []sample{
			{60000, 0, nil},
			{180000, 240, []point{{180000, 2}}},
		}},
		{"integer deltas over 60 s are exact", []sample{
			{60000, 1e6, nil},
			{120000, 1e6 + 37, []point{{120000, 37.0 / 60}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, smp := range tc.samples {
				e, _ := s.Counter(step, hb, smp.t, smp.v)
				got := expand(e, step)
				if diff := cmp.Diff(smp.want, got); diff != "" {
					t.Errorf("Counter(%d, %v) mismatch (-want +got):\n%s", smp.t, smp.v, diff)
				}
			}
		})
	}
	var s State
	s.Counter(step, hb, 60000, 1)
	if _, r := s.Counter(step, hb, 30000, 2); r != Late {
		t.Errorf("late counter sample: %v, want Late", r)
	}
	if _, r := s.Counter(step, hb, 60000, 2); r != Duplicate {
		t.Errorf("repeated counter sample: %v, want Duplicate", r)
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	if got := CounterHeartbeat(10000); got != 120000 {
		t.Errorf("CounterHeartbeat(10s) = %d, want 120000", got)
	}
	if got := CounterHeartbeat(300000); got != 600000 {
		t.Errorf("CounterHeartbeat(5m) = %d, want 600000", got)
	}
	if got := RateHeartbeat(60000); got != 60000 {
		t.Errorf("RateHeartbeat(1m) = %d", got)
	}
}

func TestBoundary(t *testing.T) {
	t.Parallel()
	f := func(ts, want int64) {
		t.Helper()
		if got := Boundary(ts, 60); got != want {
			t.Errorf("Boundary(%d) = %d, want %d", ts, got, want)
		}
	}
	f(0, 0)
	f(1, 60)
	f(60, 60)
	f(61, 120)
	f(-1, 0)
	f(-60, -60)
}

func BenchmarkRate(b *testing.B) {
	var s State
	t := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		t += 60000
		s.Rate(60000, 60000, t, 1.5)
	}
}
