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
	case expr.OpIntegral:
		// A running sum of the values (not of value × step): Atlas's
		// :integral of a rate per second is in units of "per step".
		acc := math.NaN()
		for i, v := range in {
			acc = expr.AddNaN(acc, v)
			out[i] = acc
		}
	case expr.OpCumulativeMax:
		acc := math.NaN()
		for i, v := range in {
			if v == v && (acc != acc || v > acc) {
				acc = v
			}
			out[i] = acc
		}
	case expr.OpDerivative:
		// The difference to the previous point; NaN after a gap, since
		// there is no honest previous value to subtract.
		prev := math.NaN()
		for i, v := range in {
			out[i] = v - prev
			prev = v
		}
	case expr.OpDES:
		d := des{training: n, alpha: s.Alpha, beta: s.Beta}
		for i, v := range in {
			out[i] = d.next(v)
		}
	case expr.OpSDES:
		x.slidingDES(s, in, out)
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

// des is online double exponential smoothing: the output at each step is
// the prediction made before seeing that step's value. sp is the smoothed
// level and bp the smoothed trend; alpha weighs the newest value against
// the level, beta the newest level change against the trend. Nothing is
// predicted until training values were seen, because the first
// predictions only echo the seed value and would raise false alerts when
// used as a baseline.
type des struct {
	training    int
	alpha, beta float64
	samples     int
	sp, bp      float64
}

// next returns the prediction for this step, then learns from v. A NaN v
// teaches nothing: the level and trend carry over the gap unchanged.
func (d *des) next(v float64) float64 {
	out := math.NaN()
	if d.samples >= d.training {
		out = d.sp
	}
	if v == v {
		if d.samples == 0 {
			d.sp, d.bp = v, 0
		} else {
			sn := d.alpha*v + (1-d.alpha)*(d.sp+d.bp)
			d.bp = d.beta*(sn-d.sp) + (1-d.beta)*d.bp
			d.sp = sn
		}
		d.samples++
	}
	return out
}

// reset forgets everything, to start a new training period.
func (d *des) reset() { d.samples, d.sp, d.bp = 0, math.NaN(), math.NaN() }

// slidingDES alternates two DES instances every training period. Values
// before the first epoch-aligned multiple of training steps are ignored,
// so the prediction at a time does not depend on where the graph starts.
//
// Plain DES adapts to anything given time, including a slow failure. Two
// instances that restart in turn bound how old the learned state can be:
// at any step one of them has trained for at least one full period and
// predicts, while the other relearns from scratch.
func (x *run) slidingDES(s *expr.Stateful, in, out []float64) {
	d1 := des{training: s.N, alpha: s.Alpha, beta: s.Beta}
	d2 := d1
	period := int64(s.N) * x.r.Step
	first := x.r.Start
	if r := ((first % period) + period) % period; r != 0 {
		first += period - r
	}
	useOne, count := true, 0
	for i, v := range in {
		if x.r.Start+int64(i)*x.r.Step < first {
			v = math.NaN()
		}
		count++
		v1, v2 := d1.next(v), d2.next(v)
		out[i] = v2
		if useOne {
			out[i] = v1
		}
		if count%s.N == 0 {
			if useOne {
				d1.reset()
			} else {
				d2.reset()
			}
			useOne = !useOne
		}
	}
}
