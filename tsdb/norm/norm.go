// Package norm normalizes datapoints of rate and counter series to step
// boundaries, as Atlas does on publish (asl.md §1.2).
//
// A step boundary B stands for the interval (B-step, B]. A rate sample at t
// with value v covers the interval since the previous sample (or one step,
// for the first); its value is spread over the boundaries it crosses by time
// weighting, and a step is emitted when a sample crosses its boundary. A gap
// longer than the heartbeat starts over and drops the unfinished step.
// Counter samples are first turned into per-second rates between
// consecutive samples (a drop, i.e. a reset, gives 0).
//
// Gauges (max per step) and sums (added per step) need no state: the store
// applies them to the step their timestamp rounds up to.
//
// All times are Unix milliseconds and the state is a small value owned by
// the series, so normalizing allocates nothing.
package norm

// State is one series' normalization state. The zero value is a series that
// has seen no sample.
type State struct {
	// T is the last sample time: the rate normalizer's last update (when
	// HasT) and, for counters, also the previous sample's time (when HasPrev).
	T int64
	// Pending is the weighted value from the start of the unfinished step
	// up to T.
	Pending float64
	// PrevV is the previous counter sample.
	PrevV   float64
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

// CounterHeartbeat returns the heartbeat of counter series: two steps, or a
// fixed two minutes for steps under a minute, where reporting is irregular.
func CounterHeartbeat(step int64) int64 {
	if step < 60000 {
		return 120000
	}
	return 2 * step
}

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
		s.HasT, s.Pending = false, 0
	}
	offset := mod(t, step)
	boundary := t - offset
	if s.HasT && s.T >= boundary {
		// Same step as the last sample: accumulate.
		s.Pending += weighted(t-s.T, step, v)
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
			First0: s.Pending + weighted(step-last, step, v), Fill: v}
	case offset == 0:
		e = Emission{N: 1, First: t, First0: v}
	default:
		e = Emission{N: 1, First: boundary, First0: weighted(step-offset, step, v)}
	}
	s.T, s.HasT = t, true
	s.Pending = weighted(offset, step, v)
	return e, Applied
}

// Counter normalizes a sample of a monotonic counter: the rate since the
// previous sample (0 when the counter did not grow, as after a reset) is
// normalized with the counter heartbeat. The first sample emits nothing.
func (s *State) Counter(step, heartbeat, t int64, v float64) (Emission, Result) {
	if s.HasPrev && t <= s.T {
		if t == s.T {
			return Emission{}, Duplicate
		}
		return Emission{}, Late
	}
	var e Emission
	if s.HasPrev {
		seconds := float64(t-s.T) / 1000
		delta := v - s.PrevV
		rate := 0.0
		if !(seconds <= 0 || delta <= 0) {
			rate = delta / seconds
		}
		e, _ = s.Rate(step, heartbeat, t, rate)
	} else {
		s.T = t
	}
	s.PrevV, s.HasPrev = v, true
	return e, Applied
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
