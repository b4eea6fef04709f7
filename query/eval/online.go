package eval

import (
	"math"

	"github.com/sextant-dev/sextant/query/expr"
)

// Online is the state of a stateful word whose output at a step depends on
// every value since the start of its stream, not on a bounded window:
// :des, :sdes, :integral and :cumulative-max (asl.md, "Stateful"). Fed one
// value a step, in time order, it returns that step's output.
//
// It is the one implementation of those words: the evaluator runs one per
// line over a range, from the range's start; query/live keeps one per line
// across its evaluations, from the subscription's origin, and feeds it
// only the new steps. Both therefore agree step for step with a graph over
// [origin, T]. An Online is not safe for concurrent use.
type Online struct {
	op     *expr.Stateful
	d1, d2 des     // :des uses d1; :sdes alternates d1 and d2
	acc    float64 // :integral's running sum, :cumulative-max's running max; NaN before the first value
	first  int64   // :sdes: the first epoch-aligned period start at or after the origin
	count  int     // :sdes: steps fed since the origin
	useOne bool    // :sdes: whether d1 (true) or d2 predicts at this step
}

// IsOnline reports whether op is a word NewOnline can carry.
func IsOnline(op expr.StatefulOp) bool {
	switch op {
	case expr.OpDES, expr.OpSDES, expr.OpIntegral, expr.OpCumulativeMax:
		return true
	}
	return false
}

// NewOnline returns the empty state of s for a stream that starts at origin
// (Unix milliseconds) with one value every step milliseconds, to be fed
// from t0 on (origin, or a later step for a line that appeared since: it
// had no values before, which leaves every state empty but the :sdes step
// count). s.Op must be one IsOnline accepts.
func NewOnline(s *expr.Stateful, origin, t0, step int64) *Online {
	o := &Online{
		op:     s,
		d1:     des{training: s.N, alpha: s.Alpha, beta: s.Beta},
		acc:    math.NaN(),
		useOne: true,
	}
	o.d1.reset()
	o.d2 = o.d1
	if s.Op == expr.OpSDES && s.N > 0 {
		// The periods are aligned to the epoch, not to the origin, so the
		// prediction for a time does not depend on where the graph starts.
		period := int64(s.N) * step
		o.first = origin
		if r := ((origin % period) + period) % period; r != 0 {
			o.first += period - r
		}
		o.count = int(max(t0-origin, 0) / step)
		o.useOne = (o.count/s.N)%2 == 0
	}
	return o
}

// Next feeds v, the value at t (Unix milliseconds; NaN for no data), and
// returns the output at t.
func (o *Online) Next(t int64, v float64) float64 {
	switch o.op.Op {
	case expr.OpDES:
		return o.d1.next(v)
	case expr.OpSDES:
		return o.nextSliding(t, v)
	case expr.OpIntegral:
		// A running sum of the values (not of value × step): Atlas's
		// :integral of a rate per second is in units of "per step".
		o.acc = expr.AddNaN(o.acc, v)
	case expr.OpCumulativeMax:
		if v == v && (o.acc != o.acc || v > o.acc) {
			o.acc = v
		}
	}
	return o.acc
}

// nextSliding is :sdes: two DES instances that restart in turn every
// training period, counted from the first epoch-aligned period start.
// Values before that start are ignored.
//
// Plain DES adapts to anything given time, including a slow failure. Two
// instances that restart in turn bound how old the learned state can be:
// at any step one of them has trained for at least one full period and
// predicts, while the other relearns from scratch.
func (o *Online) nextSliding(t int64, v float64) float64 {
	if t < o.first {
		v = math.NaN()
	}
	o.count++
	v1, v2 := o.d1.next(v), o.d2.next(v)
	out := v2
	if o.useOne {
		out = v1
	}
	if o.count%o.op.N == 0 {
		if o.useOne {
			o.d1.reset()
		} else {
			o.d2.reset()
		}
		o.useOne = !o.useOne
	}
	return out
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
