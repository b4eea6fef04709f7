package norm

import (
	"math"
	"math/rand/v2"
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
	for _, tc := range []struct {
		name    string
		samples []sample
	}{
		{"first sample gives nothing, then per-second rates", []sample{
			{60000, 100, nil},
			{120000, 160, []point{{120000, 1}}},
			{180000, 280, []point{{180000, 2}}},
		}},
		{"a reset counts the value after it", []sample{
			{60000, 100, nil},
			{120000, 30, []point{{120000, 0.5}}},
			{180000, 90, []point{{180000, 1}}},
		}},
		{"a gap is spread over the steps it covers", []sample{
			{60000, 0, nil},
			{240000, 360, []point{{120000, 2}, {180000, 2}, {240000, 2}}},
		}},
		{"an unaligned interval goes to the steps it overlaps, no more", []sample{
			{90000, 0, nil},
			{150000, 60, []point{{120000, 0.5}, {180000, 0.5}}},
			{160000, 70, []point{{180000, 1.0 / 6}}},
		}},
		{"a second sample in the same millisecond still counts", []sample{
			{60000, 5, nil},
			{90000, 8, []point{{120000, 0.05}}},
			{90000, 2, []point{{120000, 1.0 / 30}}}, // a reset: 2 more
			{90000, 2, nil},                         // a true duplicate
		}},
		{"no growth reads 0", []sample{
			{60000, 5, nil},
			{120000, 5, []point{{120000, 0}}},
		}},
		{"integer deltas over 60 s are exact", []sample{
			{60000, 1e6, nil},
			{120000, 1e6 + 37, []point{{120000, 37.0 / 60}}},
		}},
		{"longer than MaxCounterGap starts over", []sample{
			{60000, 0, nil},
			{60000 + (MaxCounterGap+1)*step, 10, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			for _, smp := range tc.samples {
				in, _ := s.Counter(step, smp.t, smp.v)
				var got []point
				first, n := in.Steps(step)
				for i := range n {
					b := first + int64(i)*step
					got = append(got, point{b, in.At(step, b)})
				}
				if diff := cmp.Diff(smp.want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
					t.Errorf("Counter(%d, %v) mismatch (-want +got):\n%s", smp.t, smp.v, diff)
				}
			}
		})
	}
	var s State
	s.Counter(step, 60000, 1)
	if _, r := s.Counter(step, 30000, 2); r != Late {
		t.Errorf("late counter sample: %v, want Late", r)
	}
	if _, r := s.Counter(step, 60000, 1); r != Duplicate {
		t.Errorf("repeated counter sample: %v, want Duplicate", r)
	}
}

// TestCounterConservesIncrease is the property of issue #10: a cumulative
// counter sampled at random intervals (0.1× to 3× the step, and now and
// then twice in one millisecond) with resets stores rates whose sum × step
// is the counter's total increase.
func TestCounterConservesIncrease(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(10, 10))
	for iter := range 500 {
		step := []int64{1000, 10000, 60000}[iter%3]
		var s State
		steps := map[int64]float64{}
		tm := rng.Int64N(10 * step)
		v, total := float64(rng.IntN(1000)), 0.0
		s.Counter(step, tm, v)
		for range 1 + rng.IntN(200) {
			if rng.IntN(20) != 0 { // else a second sample in the same millisecond
				tm += step/10 + rng.Int64N(step*3-step/10+1)
			}
			if r := float64(rng.IntN(10)); rng.IntN(20) == 0 && r < v {
				v = r // a reset (a drop): the increase is the new value
				total += v
			} else {
				d := float64(rng.IntN(100))
				v += d
				total += d
			}
			in, _ := s.Counter(step, tm, v)
			first, n := in.Steps(step)
			for i := range n {
				b := first + int64(i)*step
				steps[b] += in.At(step, b)
			}
		}
		got := 0.0
		for b, r := range steps {
			if b%step != 0 {
				t.Fatalf("step boundary %d not a multiple of %d", b, step)
			}
			got += r * float64(step) / 1000
		}
		if math.Abs(got-total) > 1e-9*max(1, total) {
			t.Fatalf("iteration %d (step %d): stored increase %v, want %v", iter, step, got, total)
		}
	}
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
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
