package lib

import (
	"math"
	"sync/atomic"
	"time"
)

// Statistic values that Spectator attaches to the datapoints of a meter.
const (
	StatCount          = "count"
	StatTotalTime      = "totalTime"
	StatTotalAmount    = "totalAmount"
	StatTotalOfSquares = "totalOfSquares"
	StatMax            = "max"
	StatGauge          = "gauge"
	StatActiveTasks    = "activeTasks"
	StatDuration       = "duration"
	StatPercentile     = "percentile"
)

// atomicFloat is a float64 updated atomically.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }

func (f *atomicFloat) store(v float64) { f.bits.Store(math.Float64bits(v)) }

func (f *atomicFloat) add(d float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// max raises the value to v if v is larger (NaN is ignored).
func (f *atomicFloat) max(v float64) {
	for {
		old := f.bits.Load()
		cur := math.Float64frombits(old)
		if !(v > cur) && !math.IsNaN(cur) {
			return
		}
		if f.bits.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

// swap sets the value and returns the old one.
func (f *atomicFloat) swap(v float64) float64 {
	return math.Float64frombits(f.bits.Swap(math.Float64bits(v)))
}

// Counter counts events. It publishes the rate per second over each step
// with statistic=count. Safe for concurrent use; the zero value is usable.
type Counter struct {
	id    Id
	count atomicFloat
	step  stepState // owned by Registry.Measure
}

// Id returns the counter's id.
func (c *Counter) Id() Id { return c.id }

// Increment adds one.
func (c *Counter) Increment() { c.count.add(1) }

// Add adds delta; negative and NaN deltas are ignored, as counters only grow.
func (c *Counter) Add(delta float64) {
	if delta > 0 {
		c.count.add(delta)
	}
}

// Count returns the total since the counter was created.
func (c *Counter) Count() float64 { return c.count.load() }

// Gauge holds the last value set, or polls a function. It publishes
// statistic=gauge.
type Gauge struct {
	id    Id
	value atomicFloat
	fn    func() float64
}

// Id returns the gauge's id.
func (g *Gauge) Id() Id { return g.id }

// Set records v.
func (g *Gauge) Set(v float64) { g.value.store(v) }

// Value returns the current value (polling the function of a function gauge).
func (g *Gauge) Value() float64 {
	if g.fn != nil {
		return g.fn()
	}
	return g.value.load()
}

// MaxGauge publishes the largest value set during each step, then resets.
type MaxGauge struct {
	id    Id
	value atomicFloat // NaN when nothing was set this step
}

// Id returns the gauge's id.
func (g *MaxGauge) Id() Id { return g.id }

// Set records v if it is the largest of the step.
func (g *MaxGauge) Set(v float64) { g.value.max(v) }

// Value returns the current step's maximum (NaN if none).
func (g *MaxGauge) Value() float64 { return g.value.load() }

// Timer records durations: statistics count, totalTime, totalOfSquares (in
// seconds, squared) and max (seconds).
type Timer struct {
	id      Id
	count   atomic.Int64
	total   atomic.Int64 // nanoseconds
	squares atomicFloat  // nanoseconds²
	max     atomic.Int64 // nanoseconds, current step
	steps   [3]stepState // owned by Registry.Measure
}

// Id returns the timer's id.
func (t *Timer) Id() Id { return t.id }

// Record adds one duration; negative durations are ignored.
func (t *Timer) Record(d time.Duration) {
	if d < 0 {
		return
	}
	n := int64(d)
	t.count.Add(1)
	t.total.Add(n)
	t.squares.add(float64(n) * float64(n))
	for {
		m := t.max.Load()
		if n <= m || t.max.CompareAndSwap(m, n) {
			return
		}
	}
}

// Time runs fn and records how long it took.
func (t *Timer) Time(fn func()) {
	start := time.Now()
	fn()
	t.Record(time.Since(start))
}

// Count returns the number of recorded durations.
func (t *Timer) Count() int64 { return t.count.Load() }

// TotalTime returns the sum of recorded durations.
func (t *Timer) TotalTime() time.Duration { return time.Duration(t.total.Load()) }

// DistributionSummary records amounts (sizes, counts): statistics count,
// totalAmount, totalOfSquares and max.
type DistributionSummary struct {
	id      Id
	count   atomic.Int64
	total   atomicFloat
	squares atomicFloat
	max     atomicFloat
	steps   [3]stepState // owned by Registry.Measure
}

// Id returns the summary's id.
func (d *DistributionSummary) Id() Id { return d.id }

// Record adds one amount; negative amounts are ignored.
func (d *DistributionSummary) Record(amount float64) {
	if !(amount >= 0) {
		return
	}
	d.count.Add(1)
	d.total.add(amount)
	d.squares.add(amount * amount)
	d.max.max(amount)
}

// Count returns the number of recorded amounts.
func (d *DistributionSummary) Count() int64 { return d.count.Load() }

// TotalAmount returns the sum of recorded amounts.
func (d *DistributionSummary) TotalAmount() float64 { return d.total.load() }
