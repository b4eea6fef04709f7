package lib

import (
	"math"
	"time"
)

// Measurement is one datapoint of a meter for one step: the meter's id
// with its statistic tag, and the value. Rates are per second.
type Measurement struct {
	Id    Id
	Value float64
	// Gauge reports whether the value is a sampled gauge (statistic gauge
	// or max) rather than a rate; publishers set atlas.dstype from it.
	Gauge bool
}

// Measure returns the measurements of every registered meter for the step
// that just ended, step long, and starts the next step: counters and
// totals report their increase as a rate per second, gauges their value,
// and maxima the largest value seen during the step. Measure is meant to
// be called once per step by one publisher.
func (r *Registry) Measure(step time.Duration) []Measurement {
	secs := step.Seconds()
	var out []Measurement
	stat := func(id Id, s string, v float64, gauge bool) {
		if math.IsNaN(v) {
			return
		}
		out = append(out, Measurement{Id: id.WithTag("statistic", s), Value: v, Gauge: gauge})
	}
	r.Meters(func(m any) {
		switch m := m.(type) {
		case *Counter:
			stat(m.id, StatCount, m.step.delta(m.Count())/secs, false)
		case *Gauge:
			stat(m.id, StatGauge, m.Value(), true)
		case *MaxGauge:
			stat(m.id, StatMax, m.value.swap(nan), true)
		case *Timer:
			stat(m.id, StatCount, m.steps[0].delta(float64(m.count.Load()))/secs, false)
			stat(m.id, StatTotalTime, m.steps[1].delta(float64(m.total.Load()))/1e9/secs, false)
			stat(m.id, StatTotalOfSquares, m.steps[2].delta(m.squares.load())/1e18/secs, false)
			if mx := m.max.Swap(0); m.steps[0].last > 0 || mx > 0 {
				stat(m.id, StatMax, float64(mx)/1e9, true)
			}
		case *DistributionSummary:
			stat(m.id, StatCount, m.steps[0].delta(float64(m.count.Load()))/secs, false)
			stat(m.id, StatTotalAmount, m.steps[1].delta(m.total.load())/secs, false)
			stat(m.id, StatTotalOfSquares, m.steps[2].delta(m.squares.load())/secs, false)
			stat(m.id, StatMax, m.max.swap(nan), true)
		}
	})
	return out
}

// stepState remembers a cumulative value at the last Measure.
type stepState struct{ last float64 }

// delta returns the increase since the last call and remembers cur.
func (s *stepState) delta(cur float64) float64 {
	d := cur - s.last
	s.last = cur
	return d
}
