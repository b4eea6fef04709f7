// Package norm normalizes datapoints of rate and counter series to step
// boundaries, as Atlas does on publish (asl.md §1.2).
//
// A step boundary B stands for the interval (B-step, B]. A rate sample at t
// with value v covers the interval since the previous sample (or one step,
// for the first); its value is spread over the boundaries it crosses by time
// weighting, and a step is emitted when a sample crosses its boundary. A gap
// longer than the heartbeat starts over and drops the unfinished step.
// Counter samples are not normalized that way: the increase between two
// consecutive samples (the value after a reset, across a drop) is added to
// the steps the interval between them overlaps, in proportion, so nothing
// is spread over time before the series existed and nothing waits for a
// later sample.
//
// Gauges (max per step), min gauges (min per step) and sums (added per
// step) need no state: the store applies them to the step their timestamp
// rounds up to.
//
// All times are Unix milliseconds and the state is a small value owned by
// the series, so normalizing allocates nothing.
package norm

import "math"

// State is one series' normalization state. The zero value is a series that
// has seen no sample.
type State struct {
	// T is the last sample time: the rate normalizer's last update (when
	// HasT) and, for counters, also the previous sample's time (when HasPrev).
	T int64
	// V is, for rates, the weighted value from the start of the unfinished
	// step up to T (when HasT) and, for counters, the previous sample (when
	// HasPrev). A series is normalized one way only, so the two share a
	// field: the head keeps a State for every series, and 24 bytes rather
	// than 32 count at a million series.
	V       float64
	HasT    bool
	HasPrev bool
}

// Emission is what one sample completes: N consecutive steps starting at
// boundary First, the first with value First0 and the others with Fill.
type Emission struct {
	N      int
	First  int64
	First0 float64
	Fill   float64
}

// Result says what a sample did.
type Result uint8

// Sample outcomes.
const (
	Applied   Result = iota // the sample updated the state (and maybe emitted)
	Duplicate               // same time as the last sample: ignored
	Late                    // older than the last sample: not normalized
)

// RateHeartbeat returns the heartbeat of rate series: one step.
func RateHeartbeat(step int64) int64 { return step }

// Rate normalizes a rate sample.
func (s *State) Rate(step, heartbeat, t int64, v float64) (Emission, Result) {
	var e Emission
	if s.HasT && t <= s.T {
		if t == s.T {
			return e, Duplicate
		}
		return e, Late
	}
	if s.HasT && t-s.T > heartbeat {
		s.HasT, s.V = false, 0
	}
	offset := mod(t, step)
	boundary := t - offset
	if s.HasT && s.T >= boundary {
		// Same step as the last sample: accumulate.
		s.V += weighted(t-s.T, step, v)
		s.T = t
		return e, Applied
	}
	switch {
	case s.HasT:
		// Crossed one or more boundaries: finish the step of the last
		// sample, then fill whole steps up to the current boundary.
		last := mod(s.T, step)
		next := s.T - last + step
		e = Emission{N: 1 + int((boundary-next)/step), First: next,
			First0: s.V + weighted(step-last, step, v), Fill: v}
	case offset == 0:
		e = Emission{N: 1, First: t, First0: v}
	default:
		e = Emission{N: 1, First: boundary, First0: weighted(step-offset, step, v)}
	}
	s.T, s.HasT = t, true
	s.V = weighted(offset, step, v)
	return e, Applied
}

// MaxCounterGap is the longest interval, in steps, over which a counter's
// increase is spread. Two samples further apart start the series over: the
// increase between them is not attributed to any step (it could be anywhere
// in days), as after a long outage.
const MaxCounterGap = 1440

// Increase is the growth of a counter between two samples: Rate per second
// over the interval (From, To]. It is added, piece by piece, to the steps
// the interval overlaps; see Steps and At.
type Increase struct {
	From, To int64
	Rate     float64
}

// Steps returns the first step boundary the increase touches and how many
// consecutive steps it touches (0 for none).
func (in Increase) Steps(step int64) (first int64, n int) {
	if in.To <= in.From {
		return 0, 0
	}
	first = Boundary(in.From+1, step)
	last := Boundary(in.To, step)
	return first, int((last-first)/step) + 1
}

// At returns the part of the increase that falls in the step ending at
// boundary b, as a per-second rate over the whole step: Rate × overlap /
// step. The parts of all steps add up to Rate × (To-From), so the sum of
// stored rate × step over a counter's life is its total increase, whatever
// the export interval and its alignment to steps.
func (in Increase) At(step, b int64) float64 {
	lo, hi := max(in.From, b-step), min(in.To, b)
	if hi <= lo {
		return 0
	}
	return in.Rate * (float64(hi-lo) / float64(step))
}

// Counter normalizes a sample of a monotonic counter: it returns the
// increase since the previous sample, which the caller adds to the steps it
// overlaps (so each step is written as soon as a sample covers part of it,
// and a series' last partial step is complete when the step closes). The
// increase across a reset (a drop) is the value after it, as Prometheus
// counts it. The first sample, and one more than MaxCounterGap steps after
// the previous, gives no increase: the interval it stands for is unknown.
func (s *State) Counter(step, t int64, v float64) (Increase, Result) {
	if s.HasPrev && t < s.T {
		return Increase{}, Late
	}
	if s.HasPrev && t == s.T {
		// Two samples in one millisecond: the store's resolution cannot
		// tell them apart, but the second's increase (a reset's value
		// after it) is real; it goes to the millisecond before t.
		delta := v - s.V
		if delta < 0 {
			delta = v
		}
		if v == s.V || !(delta > 0) || math.IsInf(delta, 0) {
			return Increase{}, Duplicate
		}
		s.V = v
		return Increase{From: t - 1, To: t, Rate: delta * 1000}, Applied
	}
	var in Increase
	if s.HasPrev && t-s.T <= MaxCounterGap*step {
		delta := v - s.V
		if delta < 0 {
			delta = v // a reset: the counter started over from zero
		}
		if !(delta >= 0) || math.IsInf(delta, 0) {
			delta = 0 // NaN or infinite samples add nothing
		}
		// A counter that did not grow still covers its interval: its
		// steps read 0, not missing.
		in = Increase{From: s.T, To: t, Rate: delta / (float64(t-s.T) / 1000)}
	}
	s.T, s.V, s.HasPrev = t, v, true
	return in, Applied
}

// Boundary returns the step boundary a gauge or sum sample at t belongs to:
// t rounded up to a multiple of step.
func Boundary(t, step int64) int64 {
	if o := mod(t, step); o != 0 {
		return t - o + step
	}
	return t
}

// weighted is v times the fraction d/step of a step, computed as Atlas does
// (the weight first), so that aligned samples pass through bit-exactly.
func weighted(d, step int64, v float64) float64 {
	return v * (float64(d) / float64(step))
}

// mod is t modulo step, non-negative for negative t too.
func mod(t, step int64) int64 {
	m := t % step
	if m < 0 {
		m += step
	}
	return m
}
