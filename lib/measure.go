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
	// Gauge reports whether the value is sampled (statistic gauge, max,
	// activeTasks, duration) rather than a rate; publishers set
	// atlas.dstype from it.
	Gauge bool
}

// emitter collects the measurements of one step.
type emitter struct {
	secs float64
	out  []Measurement
}

// rate reports an increase over the step as a rate per second. Decreases
// (a counter cannot fall) and NaN are dropped. An empty stat means the id
// already carries its statistic.
func (e *emitter) rate(id Id, stat string, delta float64) {
	if !(delta >= 0) || math.IsInf(delta, 0) {
		return
	}
	if stat != "" {
		id = id.WithTag("statistic", stat)
	}
	e.out = append(e.out, Measurement{Id: id, Value: delta / e.secs})
}

// gauge reports a sampled value; NaN (nothing sampled) is dropped.
func (e *emitter) gauge(id Id, stat string, v float64) {
	if v != v {
		return
	}
	e.out = append(e.out, Measurement{Id: id.WithTag("statistic", stat), Value: v, Gauge: true})
}

// Measure returns the measurements of every registered meter for the step
// that just ended, step long, and starts the next step: counters and
// totals report their increase as a rate per second, gauges their value,
// maxima the largest value of the step. Meters idle longer than the
// registry's ExpireAfter are dropped. Measure is meant to be called once
// per step by one publisher.
func (r *Registry) Measure(step time.Duration) []Measurement {
	if r == nil {
		return nil
	}
	e := &emitter{secs: step.Seconds()}
	if e.secs <= 0 {
		e.secs = 1
	}
	now := r.opts.Clock()
	for _, en := range r.entries() {
		n := len(e.out)
		if en.m.measure(e) {
			en.lastActive = now
			continue
		}
		if now.Sub(en.lastActive) >= r.opts.ExpireAfter {
			e.out = e.out[:n] // an expiring meter publishes nothing more
			r.expire(en)
		}
	}
	return e.out
}
