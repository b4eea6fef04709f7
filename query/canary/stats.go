package canary

import (
	"math"
	"slices"
)

// MaxExact is the largest combined sample size for which MannWhitney
// uses the exact distribution of U (when there are no ties). Counts of
// the distribution stay exact integers in a float64 well past it:
// C(40, 20) ≈ 1.4e11 < 2^53.
const MaxExact = 40

// MWResult is the outcome of a two-sided Mann-Whitney U test.
type MWResult struct {
	// U is the statistic of the first sample: the number of pairs (x, y)
	// with x > y, ties counting one half.
	U float64
	// P is the two-sided p-value.
	P float64
	// Exact reports whether P comes from the exact distribution of U;
	// otherwise it is the normal approximation with tie and continuity
	// correction.
	Exact bool
}

// MannWhitney runs a two-sided Mann-Whitney U test of x against y. Ties
// get mid-ranks. Without ties and with len(x)+len(y) <= MaxExact the
// p-value is exact; otherwise it is the normal approximation with the
// variance corrected for ties and a continuity correction of 1/2 (as
// scipy.stats.mannwhitneyu and R's wilcox.test compute it). Empty samples
// give P = 1. x and y are not modified.
func MannWhitney(x, y []float64) MWResult {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return MWResult{P: 1}
	}
	u, tieSum := uStatistic(x, y)
	if tieSum == 0 && n1+n2 <= MaxExact {
		return MWResult{U: u, P: ExactP(u, n1, n2), Exact: true}
	}
	return MWResult{U: u, P: NormalP(u, n1, n2, tieSum)}
}

// ExactP is the exact two-sided p-value of U = u for samples of sizes n1
// and n2 without ties: twice the smaller tail of the null distribution,
// at most 1.
func ExactP(u float64, n1, n2 int) float64 {
	c := uCounts(n1, n2)
	total := 0.0
	for _, v := range c {
		total += v
	}
	// The distribution is symmetric about n1*n2/2; use the tail u lies in.
	k := int(math.Floor(u))
	if mid := float64(n1*n2) / 2; u > mid {
		k = int(math.Floor(float64(n1*n2) - u))
	}
	k = min(max(k, 0), len(c)-1)
	tail := 0.0
	for _, v := range c[:k+1] {
		tail += v
	}
	return min(1, 2*tail/total)
}

// NormalP is the two-sided p-value of U = u for samples of sizes n1 and
// n2 under the normal approximation: mean n1*n2/2, variance
// n1*n2/12 * ((n+1) - tieSum/(n(n-1))) where tieSum is Σ(t³-t) over the
// groups of tied values, and a continuity correction of 1/2.
func NormalP(u float64, n1, n2 int, tieSum float64) float64 {
	nn1, nn2 := float64(n1), float64(n2)
	n := nn1 + nn2
	mu := nn1 * nn2 / 2
	v := nn1 * nn2 / 12 * ((n + 1) - tieSum/(n*(n-1)))
	if v <= 0 {
		return 1 // every value is the same
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(v)
	if z <= 0 {
		return 1
	}
	return min(1, math.Erfc(z/math.Sqrt2))
}

// uStatistic returns U of x against y (mid-ranks for ties) and Σ(t³-t)
// over the groups of tied values.
func uStatistic(x, y []float64) (u, tieSum float64) {
	type obs struct {
		v     float64
		fromX bool
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	rankX := 0.0
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		// Positions i..j-1 share the mid-rank of ranks i+1..j.
		mid := float64(i+1+j) / 2
		for _, o := range all[i:j] {
			if o.fromX {
				rankX += mid
			}
		}
		if t := float64(j - i); t > 1 {
			tieSum += t*t*t - t
		}
		i = j
	}
	n1 := float64(len(x))
	return rankX - n1*(n1+1)/2, tieSum
}

// uCounts returns, for each u in 0..n1*n2, the number of arrangements of
// n1 x's and n2 y's without ties whose U is u. They are the coefficients
// of the Gaussian binomial coefficient [n1+n2 choose n1] in q, built as
// the product over i = 1..m of (1-q^(n+i))/(1-q^i) with m = min(n1, n2);
// after each factor the partial product is again a polynomial.
func uCounts(n1, n2 int) []float64 {
	m, n := min(n1, n2), max(n1, n2)
	c := make([]float64, m*n+m+1) // room for the numerator's degree before dividing
	c[0] = 1
	deg := 0
	for i := 1; i <= m; i++ {
		// Multiply by (1 - q^(n+i)).
		k := n + i
		deg += k
		for j := deg; j >= k; j-- {
			c[j] -= c[j-k]
		}
		// Divide by (1 - q^i): c'[j] = c[j] + c'[j-i].
		for j := i; j <= deg; j++ {
			c[j] += c[j-i]
		}
		deg -= i
	}
	return c[:m*n+1]
}

// HodgesLehmann is the Hodges-Lehmann estimate of the shift of y relative
// to x: the median of the pairwise differences y[j] - x[i]. It is NaN when
// either sample is empty. buf is scratch space, reused when large enough;
// the grown buffer is returned.
//
// The n1*n2 differences are never materialized: with both samples sorted
// they form a matrix sorted along its rows and columns, so the number of
// differences <= v is counted in O(n1+n2) with two pointers, and the k-th
// smallest difference is found by bisecting over the float64 values in
// their bit order (at most 64 counts). Two windows of 180 steps take
// microseconds instead of selecting among 32 400 values.
func HodgesLehmann(x, y, buf []float64) (float64, []float64) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return math.NaN(), buf
	}
	if cap(buf) < n1+n2 {
		buf = make([]float64, n1+n2)
	}
	xs, ys := buf[:n1], buf[n1:n1+n2]
	copy(xs, x)
	copy(ys, y)
	slices.Sort(xs)
	slices.Sort(ys)
	n := n1 * n2
	hi := kthDiff(xs, ys, n/2)
	if n%2 == 1 {
		return hi, buf
	}
	return (kthDiff(xs, ys, n/2-1) + hi) / 2, buf
}

// kthDiff returns the k-th smallest (0-based) of the differences
// ys[j] - xs[i] of two sorted samples.
func kthDiff(xs, ys []float64, k int) float64 {
	lo, hi := orderKey(ys[0]-xs[len(xs)-1]), orderKey(ys[len(ys)-1]-xs[0])
	// The smallest key whose value has more than k differences at or below it.
	for lo < hi {
		mid := lo + (hi-lo)/2
		if countLE(xs, ys, fromOrderKey(mid)) > k {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return fromOrderKey(lo)
}

// countLE counts the pairs with ys[j] - xs[i] <= v. For a fixed j the
// pairs that qualify are a suffix of xs, and the suffix only shrinks from
// the left as ys[j] grows (float subtraction is monotone), so one pointer
// walks xs once.
func countLE(xs, ys []float64, v float64) int {
	c, i := 0, 0
	for _, y := range ys {
		for i < len(xs) && y-xs[i] > v {
			i++
		}
		c += len(xs) - i
	}
	return c
}

// orderKey maps a float64 to a uint64 in the same order (for non-NaN
// values; -0 and +0 are adjacent).
func orderKey(f float64) uint64 {
	b := math.Float64bits(f)
	if b>>63 == 1 {
		return ^b
	}
	return b | 1<<63
}

// fromOrderKey inverts orderKey.
func fromOrderKey(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// Median is the median of xs (the mean of the two middle values for an
// even count), NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return medianInPlace(slices.Clone(xs))
}

// Mean is the arithmetic mean of xs, NaN for none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range xs {
		s += v
	}
	return s / float64(len(xs))
}

// medianInPlace returns the median of d, sorting d.
func medianInPlace(d []float64) float64 {
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}
