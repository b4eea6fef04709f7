package eval

import (
	"fmt"
	"math"
	"strconv"

	"github.com/sextant-dev/sextant/query/expr"
)

// stateful applies an online algorithm to each line; state starts empty at
// the range start.
//
// Atlas runs these operators online over a stream; we evaluate a fixed
// range, so the "stream" is the line's values from Start. Starting with
// empty state there (rather than fetching history before Start) is what
// the conformance vectors expect, and it keeps a query's cost
// proportional to the range it shows. The price is that a graph's first
// points of :trend or :des differ from the same points seen in a wider
// graph; :sdes avoids that by aligning its periods to the epoch.
func (x *run) stateful(s *expr.Stateful) ([]Series, error) {
	in, err := x.eval(s.Expr)
	if err != nil {
		return nil, err
	}
	op := s.Op.String()
	label := op + "(%s)"
	switch s.Op {
	case expr.OpDelay, expr.OpRollingCount, expr.OpRollingMin, expr.OpRollingMax, expr.OpRollingSum:
		label = op + "(%s, " + strconv.Itoa(s.N) + ")"
	case expr.OpRollingMean:
		label = op + "(%s, " + strconv.Itoa(s.N) + ", " + strconv.Itoa(s.Min) + ")"
	case expr.OpTrend:
		label = "trend(%s, " + expr.FormatDuration(s.Window) + ")"
	}
	out := make([]Series, len(in))
	for i, line := range in {
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		if err := x.applyOnline(s, line.Values, v); err != nil {
			return nil, err
		}
		out[i] = Series{Tags: line.Tags, Label: replaceOnce(label, line.Label), Values: v, Offset: line.Offset}
	}
	return out, nil
}

// replaceOnce substitutes s for the first %s of format. Labels embed the
// input's label, which may itself contain % signs (a tag value), so
// fmt.Sprintf would misread them; a plain replacement cannot.
func replaceOnce(format, s string) string {
	for i := 0; i+1 < len(format); i++ {
		if format[i] == '%' && format[i+1] == 's' {
			return format[:i] + s + format[i+2:]
		}
	}
	return format
}

// applyOnline runs one stateful operator over in, writing out.
func (x *run) applyOnline(s *expr.Stateful, in, out []float64) error {
	n := s.N
	switch s.Op {
	case expr.OpDelay:
		// The first n points have nothing to delay: NaN, not 0, so that
		// a delayed line does not look like a drop to zero.
		for i := range in {
			out[i] = math.NaN()
			if i >= n {
				out[i] = in[i-n]
			}
		}
	case expr.OpRollingCount:
		if n <= 1 {
			copy(out, in) // as Atlas: a window of one is the input itself
			return nil
		}
		window(in, out, n, func(w []float64) float64 {
			c := 0.0
			for _, v := range w {
				if expr.ToBool(v) {
					c++
				}
			}
			return c
		})
	case expr.OpRollingMin, expr.OpRollingMax:
		// NaN is skipped rather than compared: a gap in the window must
		// not hide the extreme of the values around it. The window is
		// rescanned at each step (O(n·window)); windows are a few dozen
		// steps, and a monotonic deque was not worth its code here.
		isMax := s.Op == expr.OpRollingMax
		window(in, out, n, func(w []float64) float64 {
			r := math.NaN()
			for _, v := range w {
				if v == v && (r != r || (isMax && v > r) || (!isMax && v < r)) {
					r = v
				}
			}
			return r
		})
	case expr.OpRollingSum:
		// AddNaN keeps an all-NaN window NaN while treating isolated gaps
		// as 0, Atlas's rule for sums of rates.
		window(in, out, n, func(w []float64) float64 {
			r := math.NaN()
			for _, v := range w {
				r = expr.AddNaN(r, v)
			}
			return r
		})
	case expr.OpRollingMean:
		// Min is the number of real values a window needs before its mean
		// means anything; fewer give NaN rather than a mean of one sample.
		window(in, out, n, func(w []float64) float64 {
			sum, c := 0.0, 0
			for _, v := range w {
				if v == v {
					sum += v
					c++
				}
			}
			if c < s.Min || c == 0 {
				return math.NaN()
			}
			return sum / float64(c)
		})
	case expr.OpTrend:
		// The window is a duration; at a coarser step it covers fewer
		// points, so a daily trend looks the same at any zoom.
		trend(in, out, int(s.Window/x.r.Step))
	case expr.OpDerivative:
		// The difference to the previous point; NaN after a gap, since
		// there is no honest previous value to subtract.
		prev := math.NaN()
		for i, v := range in {
			out[i] = v - prev
			prev = v
		}
	case expr.OpDES, expr.OpSDES, expr.OpIntegral, expr.OpCumulativeMax:
		// The words of unbounded state: one implementation, shared with
		// query/live, which carries it from one evaluation to the next.
		o := NewOnline(s, x.r.Start, x.r.Start, x.r.Step)
		for i, v := range in {
			out[i] = o.Next(x.r.Start+int64(i)*x.r.Step, v)
		}
	default:
		return fmt.Errorf("BUG: stateful operator %v", s.Op)
	}
	return nil
}

// window calls f with the last n values (fewer at the start) at each step.
func window(in, out []float64, n int, f func([]float64) float64) {
	for i := range in {
		lo := max(0, i-n+1)
		out[i] = f(in[lo : i+1])
	}
}

// trend is the moving average of the last n values, NaN counting as 0; NaN
// until n values were seen or when all n are NaN.
func trend(in, out []float64, n int) {
	if n <= 1 {
		copy(out, in)
		return
	}
	for i := range in {
		if i+1 < n {
			out[i] = math.NaN()
			continue
		}
		sum, any := 0.0, false
		for _, v := range in[i-n+1 : i+1] {
			if v == v {
				sum += v
				any = true
			}
		}
		if !any {
			out[i] = math.NaN()
			continue
		}
		out[i] = sum / float64(n)
	}
}
