package canary

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// near reports whether got is within tol of want (relative for large
// values).
func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*max(1, math.Abs(want))
}

// The reference values below are published results, not outputs of this
// code.
func TestMannWhitneyReference(t *testing.T) {
	t.Parallel()
	nanless := func(xs ...float64) []float64 { return xs }
	cases := []struct {
		name   string
		x, y   []float64
		u      float64
		p      float64
		tol    float64
		exact  bool
		source string
	}{
		{
			// Ages at diagnosis of type II diabetes, the example of the
			// scipy.stats.mannwhitneyu documentation (after Boston
			// University School of Public Health, "Mann Whitney U Test"):
			// U1 = 17, exact p = 0.1111111111111111.
			name: "scipy-diabetes-exact", x: nanless(19, 22, 16, 29, 24), y: nanless(20, 11, 17, 12),
			u: 17, p: 0.1111111111111111, tol: 1e-12, exact: true,
		},
		{
			// Hollander & Wolfe (1973), p. 69, permeability constants of the
			// human chorioamnion, the example of R's wilcox.test: W = 35,
			// one-sided p-value = 0.1272, so two-sided 0.2544 (4 digits).
			name: "hollander-wolfe-exact",
			x:    nanless(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46),
			y:    nanless(1.15, 0.88, 0.90, 0.74, 1.21),
			u:    35, p: 0.2544, tol: 1e-4, exact: true,
		},
		{
			// R's wilcox.test example on the airquality data set: Ozone in
			// May against August (missing values removed), with ties, so the
			// normal approximation with tie and continuity correction:
			// W = 127.5, p-value = 0.0001208.
			name: "r-airquality-ties",
			x: nanless(41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6, 30, 11, 1, 11, 4, 32,
				23, 45, 115, 37),
			y: nanless(39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23, 31, 44, 21, 9, 45,
				168, 73, 76, 118, 84, 85),
			u: 127.5, p: 0.0001208, tol: 1e-3,
		},
		{
			// Wikipedia, "Mann-Whitney U test", the tortoise and the hare:
			// finishing order T H H H H H T T T T T H; U of the tortoises
			// = 11 (and of the hares 25). Values are 13 - place, so that
			// finishing ahead is the larger value; the article gives no
			// p-value.
			name: "wikipedia-tortoise-hare",
			x:    nanless(12, 6, 5, 4, 3, 2), // tortoises' places, reversed so a win is a large value
			y:    nanless(11, 10, 9, 8, 7, 1),
			u:    11, p: -1, exact: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := MannWhitney(tc.x, tc.y)
			if r.U != tc.u {
				t.Errorf("U = %v, want %v", r.U, tc.u)
			}
			if r.Exact != tc.exact {
				t.Errorf("Exact = %v, want %v", r.Exact, tc.exact)
			}
			if tc.p >= 0 && !near(r.P, tc.p, tc.tol) {
				t.Errorf("P = %.10g, want %.10g (±%g)", r.P, tc.p, tc.tol)
			}
			// Swapping the samples gives U' = n1*n2 - U and the same p.
			s := MannWhitney(tc.y, tc.x)
			if s.U != float64(len(tc.x)*len(tc.y))-tc.u || !near(s.P, r.P, 1e-12) {
				t.Errorf("swapped: U = %v, P = %v; want %v, %v", s.U, s.P, float64(len(tc.x)*len(tc.y))-tc.u, r.P)
			}
		})
	}
}

func TestNormalPReference(t *testing.T) {
	t.Parallel()
	// scipy.stats.mannwhitneyu(males, females, method="asymptotic") on the
	// diabetes example above: p = 0.11134688653314041.
	if p := NormalP(17, 5, 4, 0); !near(p, 0.11134688653314041, 1e-12) {
		t.Errorf("NormalP(17, 5, 4) = %.17g, want 0.11134688653314041", p)
	}
	// All values equal: no evidence of a shift.
	if r := MannWhitney([]float64{3, 3, 3}, []float64{3, 3}); r.P != 1 || r.U != 3 {
		t.Errorf("all ties: %+v, want U=3 P=1", r)
	}
	if r := MannWhitney(nil, []float64{1}); r.P != 1 {
		t.Errorf("empty sample: P = %v, want 1", r.P)
	}
}

// TestExactVsNormal compares the exact distribution with the normal
// approximation where both apply: they agree to a few thousandths at
// n = 20 + 20, and the exact tails sum to one.
func TestExactVsNormal(t *testing.T) {
	t.Parallel()
	for _, sz := range [][2]int{{10, 10}, {20, 20}, {15, 25}, {8, 30}} {
		n1, n2 := sz[0], sz[1]
		c := uCounts(n1, n2)
		total := 0.0
		for _, v := range c {
			total += v
		}
		// The counts sum to C(n1+n2, n1).
		if want := binom(n1+n2, n1); !near(total, want, 1e-12) {
			t.Errorf("%dx%d: counts sum to %v, want %v", n1, n2, total, want)
		}
		mid := float64(n1*n2) / 2
		for _, off := range []float64{0.1, 0.2, 0.3, 0.4} {
			u := math.Round(mid - off*mid)
			pe, pn := ExactP(u, n1, n2), NormalP(u, n1, n2, 0)
			tol := 0.01
			if n1 < 15 || n2 < 15 {
				tol = 0.02
			}
			if math.Abs(pe-pn) > tol {
				t.Errorf("%dx%d U=%v: exact %v, normal %v", n1, n2, u, pe, pn)
			}
		}
	}
	// Known small table value: n1 = n2 = 3, U = 0 has probability 1/20,
	// two-sided 0.1.
	if p := ExactP(0, 3, 3); !near(p, 0.1, 1e-12) {
		t.Errorf("ExactP(0, 3, 3) = %v, want 0.1", p)
	}
}

func binom(n, k int) float64 {
	r := 1.0
	for i := 1; i <= k; i++ {
		r = r * float64(n-k+i) / float64(i)
	}
	return math.Round(r)
}

func TestHodgesLehmann(t *testing.T) {
	t.Parallel()
	f := func(x, y []float64, want float64) {
		t.Helper()
		got, _ := HodgesLehmann(x, y, nil)
		if !near(got, want, 1e-12) {
			t.Errorf("HodgesLehmann(%v, %v) = %v, want %v", x, y, got, want)
		}
	}
	f([]float64{1, 2, 3}, []float64{4, 5, 6}, 3)
	f([]float64{0}, []float64{1, 5, 10}, 5)
	f([]float64{0, 0}, []float64{1, 5, 10}, 5)
	f([]float64{10, 20}, []float64{10, 20}, 0)
	f([]float64{1, 2}, []float64{2, 4}, 1.5) // differences 1, 0, 3, 2
	// Hollander & Wolfe (1973) data as above: R's
	// wilcox.test(x, y, conf.int = TRUE) reports the "difference in
	// location" (the estimate of x - y) as 0.305.
	f([]float64{1.15, 0.88, 0.90, 0.74, 1.21},
		[]float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}, 0.305)
	if got, _ := HodgesLehmann(nil, []float64{1}, nil); !math.IsNaN(got) {
		t.Errorf("empty: %v, want NaN", got)
	}
}

// TestMedianSelect checks the median against a sort.
func TestMedianSelect(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n < 200; n++ {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = float64(rng.IntN(20)) // many ties
		}
		s := slices.Sorted(slices.Values(xs))
		want := s[n/2]
		if n%2 == 0 {
			want = (s[n/2-1] + s[n/2]) / 2
		}
		if got := Median(xs); got != want {
			t.Fatalf("Median(%v) = %v, want %v", xs, got, want)
		}
	}
	if m := Mean([]float64{1, 2, 6}); m != 3 {
		t.Errorf("Mean = %v", m)
	}
}

// TestHodgesLehmannBrute checks the matrix search against the median of
// every difference.
func TestHodgesLehmannBrute(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n1, n2 := 1+rng.IntN(30), 1+rng.IntN(30)
		x, y := make([]float64, n1), make([]float64, n2)
		for i := range x {
			x[i] = float64(rng.IntN(10)) - 3 + rng.Float64()*float64(trial%2) // ties on even trials
		}
		for i := range y {
			y[i] = float64(rng.IntN(10)) - 5 + rng.Float64()*float64(trial%2)
		}
		var d []float64
		for _, b := range y {
			for _, a := range x {
				d = append(d, b-a)
			}
		}
		want := Median(d)
		if got, _ := HodgesLehmann(x, y, nil); got != want {
			t.Fatalf("HodgesLehmann(%v, %v) = %v, want %v", x, y, got, want)
		}
	}
}
