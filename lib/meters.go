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
	StatMin            = "min" // OTLP histograms only: Spectator has no min
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

// max raises the value to v if v is larger; a NaN value takes any v.
func (f *atomicFloat) max(v float64) {
	for {
		old := f.bits.Load()
		cur := math.Float64frombits(old)
		if !(v > cur) && cur == cur {
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

// Counter counts events and publishes the rate per second over each step
// (statistic=count). Safe for concurrent use.
type Counter struct {
	meterBase
	cells counterCells // whole increments, striped (stripe.go)
	frac  atomicFloat  // fractional amounts
	last  float64      // total at the previous step; owned by Measure
}

func newCounter(id Id) *Counter {
	return &Counter{meterBase: meterBase{id: id}, cells: make([]counterCell, numStripes)}
}

// Increment adds one.
func (c *Counter) Increment() {
	c.cells.add(1)
	c.touch(c)
}

// Add adds delta; negative and NaN deltas are ignored, as counters only
// grow.
func (c *Counter) Add(delta float64) {
	if !(delta > 0) || math.IsInf(delta, 1) {
		return
	}
	if w := int64(delta); float64(w) == delta && w < 1<<53 {
		c.cells.add(w)
	} else {
		c.frac.add(delta)
	}
	c.touch(c)
}

// Count returns the total since the counter was created.
func (c *Counter) Count() float64 {
	var n int64
	for i := range c.cells {
		n += c.cells[i].n.Load()
	}
	return float64(n) + c.frac.load()
}

func (c *Counter) measure(e *emitter) bool {
	cur := c.Count()
	d := cur - c.last
	c.last = cur
	e.rate(c.id, StatCount, d)
	return d > 0
}

// Gauge holds the last value set, or polls a function each step
// (statistic=gauge).
type Gauge struct {
	meterBase
	value atomicFloat
	set   atomic.Bool // Set since the last step
	fn    func() float64
}

func newGauge(id Id) *Gauge {
	g := &Gauge{meterBase: meterBase{id: id}}
	g.value.store(math.NaN())
	return g
}

// Set records v.
func (g *Gauge) Set(v float64) {
	g.value.store(v)
	if !g.set.Load() {
		g.set.Store(true)
	}
	g.touch(g)
}

// Value returns the current value (polling the function of a function
// gauge), NaN if never set.
func (g *Gauge) Value() float64 {
	if g.fn != nil {
		return safeCall(g.fn)
	}
	return g.value.load()
}

// safeCall polls a user function; a panicking function reads as NaN
// rather than crashing the publisher (and the application).
func safeCall(fn func() float64) (v float64) {
	defer func() {
		if recover() != nil {
			v = math.NaN()
		}
	}()
	return fn()
}

func (g *Gauge) measure(e *emitter) bool {
	e.gauge(g.id, StatGauge, g.Value())
	return g.fn != nil || g.set.Swap(false)
}

// MaxGauge publishes the largest value set during each step (statistic=
// max), then starts over.
type MaxGauge struct {
	meterBase
	value atomicFloat // NaN when nothing was set this step
}

func newMaxGauge(id Id) *MaxGauge {
	g := &MaxGauge{meterBase: meterBase{id: id}}
	g.value.store(math.NaN())
	return g
}

// Set records v if it is the largest of the step.
func (g *MaxGauge) Set(v float64) {
	g.value.max(v)
	g.touch(g)
}

// Value returns the current step's maximum (NaN if none).
func (g *MaxGauge) Value() float64 { return g.value.load() }

func (g *MaxGauge) measure(e *emitter) bool {
	v := g.value.swap(math.NaN())
	e.gauge(g.id, StatMax, v)
	return v == v
}

// Timer records durations: statistics count, totalTime and
// totalOfSquares as rates (in seconds and seconds squared), and max (the
// longest duration of the step, in seconds).
type Timer struct {
	meterBase
	cells timerCells // striped (stripe.go); nanoseconds
	last  [3]float64 // count, total, squares at the previous step; owned by Measure
}

func newTimer(id Id) *Timer {
	return &Timer{meterBase: meterBase{id: id}, cells: make(timerCells, numStripes)}
}

// Record adds one duration; negative durations are ignored.
func (t *Timer) Record(d time.Duration) {
	if d >= 0 {
		t.record(int64(d))
		t.touch(t)
	}
}

func (t *Timer) record(n int64) { t.cells.record(n) }

// Time runs fn and records how long it took.
func (t *Timer) Time(fn func()) {
	start := time.Now()
	defer func() { t.Record(time.Since(start)) }()
	fn()
}

// Count returns the number of recorded durations.
func (t *Timer) Count() int64 {
	c, _, _ := t.cells.sums()
	return c
}

// TotalTime returns the sum of recorded durations.
func (t *Timer) TotalTime() time.Duration {
	_, tot, _ := t.cells.sums()
	return time.Duration(tot)
}

func (t *Timer) measure(e *emitter) bool {
	ci, ti, sq := t.cells.sums()
	c, tot := float64(ci), float64(ti)
	dc := c - t.last[0]
	e.rate(t.id, StatCount, dc)
	e.rate(t.id, StatTotalTime, (tot-t.last[1])/1e9)
	e.rate(t.id, StatTotalOfSquares, (sq-t.last[2])/1e18)
	t.last = [3]float64{c, tot, sq}
	if mx := t.cells.takeMax(); dc > 0 {
		e.gauge(t.id, StatMax, float64(mx)/1e9)
	}
	return dc > 0
}

// DistributionSummary records amounts (sizes, counts): statistics count,
// totalAmount and totalOfSquares as rates, and max.
type DistributionSummary struct {
	meterBase
	count   atomic.Int64
	total   atomicFloat
	squares atomicFloat
	max     atomicFloat // NaN when nothing was recorded this step
	last    [3]float64  // owned by Measure
}

func newDistributionSummary(id Id) *DistributionSummary {
	d := &DistributionSummary{meterBase: meterBase{id: id}}
	d.max.store(math.NaN())
	return d
}

// Record adds one amount; negative and NaN amounts are ignored.
func (d *DistributionSummary) Record(amount float64) {
	if amount >= 0 && !math.IsInf(amount, 1) {
		d.record(amount)
		d.touch(d)
	}
}

func (d *DistributionSummary) record(amount float64) {
	d.count.Add(1)
	d.total.add(amount)
	d.squares.add(amount * amount)
	d.max.max(amount)
}

// Count returns the number of recorded amounts.
func (d *DistributionSummary) Count() int64 { return d.count.Load() }

// TotalAmount returns the sum of recorded amounts.
func (d *DistributionSummary) TotalAmount() float64 { return d.total.load() }

func (d *DistributionSummary) measure(e *emitter) bool {
	c, tot, sq := float64(d.count.Load()), d.total.load(), d.squares.load()
	dc := c - d.last[0]
	e.rate(d.id, StatCount, dc)
	e.rate(d.id, StatTotalAmount, tot-d.last[1])
	e.rate(d.id, StatTotalOfSquares, sq-d.last[2])
	d.last = [3]float64{c, tot, sq}
	e.gauge(d.id, StatMax, d.max.swap(math.NaN()))
	return dc > 0
}
