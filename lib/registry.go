package lib

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Registry creates and holds meters. Asking twice for the same id returns
// the same meter. A nil *Registry is valid and hands out meters that work
// but are not registered, so components can be used without one. Safe for
// concurrent use.
type Registry struct {
	mu struct {
		sync.RWMutex
		byHash map[uint64][]*entry // by Id.hash
		n      int
	}
	opts        RegistryOptions
	warnedLimit atomic.Bool
	warnedType  atomic.Bool
}

// entry is a registered meter. lastActive is owned by Measure.
type entry struct {
	m          meter
	lastActive time.Time
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxMeters caps the number of meters; beyond it, new ids get meters
	// that work but are not registered (and a warning is logged once).
	// Default 100 000.
	MaxMeters int
	// ExpireAfter is how long a meter may go without updates before it
	// stops being published and leaves the registry. Default 15 minutes.
	ExpireAfter time.Duration
	// Clock tells the time (expiry, long task timers); default time.Now.
	Clock  Clock
	Logger *slog.Logger
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.MaxMeters <= 0 {
		opts.MaxMeters = 100_000
	}
	if opts.ExpireAfter <= 0 {
		opts.ExpireAfter = 15 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{opts: opts}
	r.mu.byHash = make(map[uint64][]*entry)
	return r
}

// meter is what every meter type implements for the registry.
type meter interface {
	base() *meterBase
	// measure reports the step's datapoints and whether the meter was
	// updated during the step. Only Registry.Measure calls it.
	measure(e *emitter) (active bool)
}

// meterBase is embedded in every meter.
type meterBase struct {
	id      Id
	reg     *Registry
	expired atomic.Bool
}

func (b *meterBase) base() *meterBase { return b }

// Id returns the meter's id.
func (b *meterBase) Id() Id { return b.id }

// touch re-registers a meter that expired and is in use again: the slow
// path of every update, taken only after 15 idle minutes.
func (b *meterBase) touch(m meter) {
	if b.expired.Load() {
		b.reg.revive(m)
	}
}

// lookup returns the meter of type M for name and tags, creating it with
// mk. The path for a registered id allocates nothing.
func lookup[M meter](r *Registry, name string, kv []string, mk func(Id) M) M {
	if r == nil {
		return mk(NewId(name, kv...))
	}
	h := kvHash(name, kv)
	r.mu.RLock()
	for _, e := range r.mu.byHash[h] {
		if e.m.base().id.matchesKV(name, kv) {
			m := e.m
			r.mu.RUnlock()
			if t, ok := m.(M); ok {
				return t
			}
			r.typeConflict(m.base().id)
			return mk(m.base().id)
		}
	}
	r.mu.RUnlock()
	return register(r, NewId(name, kv...), mk)
}

// register returns the meter of type M for id, creating it if needed.
func register[M meter](r *Registry, id Id, mk func(Id) M) M {
	if r == nil {
		return mk(id)
	}
	r.mu.Lock()
	for _, e := range r.mu.byHash[id.hash] {
		if e.m.base().id.equal(id) {
			m := e.m
			r.mu.Unlock()
			if t, ok := m.(M); ok {
				return t
			}
			r.typeConflict(id)
			return mk(id)
		}
	}
	if r.mu.n >= r.opts.MaxMeters {
		r.mu.Unlock()
		if !r.warnedLimit.Swap(true) {
			r.opts.Logger.Warn("meter limit reached, new meters are not published", "meter", id.String(), "limit", r.opts.MaxMeters)
		}
		return mk(id)
	}
	m := mk(id)
	m.base().reg = r
	r.mu.byHash[id.hash] = append(r.mu.byHash[id.hash], &entry{m: m, lastActive: r.opts.Clock()})
	r.mu.n++
	r.mu.Unlock()
	return m
}

// typeConflict warns, once, that an id is taken by a meter of another
// type: the caller gets an unregistered meter.
func (r *Registry) typeConflict(id Id) {
	if !r.warnedType.Swap(true) {
		r.opts.Logger.Warn("id already used by another meter type, new meter is not published", "meter", id.String())
	}
}

// revive registers an expired meter again, unless its id was registered
// anew meanwhile (then updates to the old meter are lost, as in Spectator).
func (r *Registry) revive(m meter) {
	b := m.base()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !b.expired.Load() {
		return
	}
	b.expired.Store(false)
	for _, e := range r.mu.byHash[b.id.hash] {
		if e.m.base().id.equal(b.id) {
			return
		}
	}
	if r.mu.n < r.opts.MaxMeters {
		r.mu.byHash[b.id.hash] = append(r.mu.byHash[b.id.hash], &entry{m: m, lastActive: r.opts.Clock()})
		r.mu.n++
	}
}

// entries returns the registered entries sorted by id.
func (r *Registry) entries() []*entry {
	r.mu.RLock()
	out := make([]*entry, 0, r.mu.n)
	for _, es := range r.mu.byHash {
		out = append(out, es...)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b *entry) int { return a.m.base().id.compare(b.m.base().id) })
	return out
}

// expire removes an idle entry.
func (r *Registry) expire(e *entry) {
	id := e.m.base().id
	r.mu.Lock()
	defer r.mu.Unlock()
	es := r.mu.byHash[id.hash]
	for i, x := range es {
		if x == e {
			es = slices.Delete(es, i, i+1)
			if len(es) == 0 {
				delete(r.mu.byHash, id.hash)
			} else {
				r.mu.byHash[id.hash] = es
			}
			r.mu.n--
			e.m.base().expired.Store(true)
			return
		}
	}
}

// Len returns the number of registered meters.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mu.n
}

// Meters calls fn with every registered meter, sorted by id: one of
// *Counter, *Gauge, *MaxGauge, *Timer, *DistributionSummary,
// *PercentileTimer, *PercentileDistributionSummary or *LongTaskTimer.
func (r *Registry) Meters(fn func(m any)) {
	if r == nil {
		return
	}
	for _, e := range r.entries() {
		fn(e.m)
	}
}

// Counter returns the counter for name and alternating tag keys and values.
func (r *Registry) Counter(name string, kv ...string) *Counter {
	return lookup(r, name, kv, newCounter)
}

// CounterFor returns the counter for an id.
func (r *Registry) CounterFor(id Id) *Counter { return register(r, id, newCounter) }

// Gauge returns the gauge for name and tags.
func (r *Registry) Gauge(name string, kv ...string) *Gauge {
	return lookup(r, name, kv, newGauge)
}

// FuncGauge registers a gauge whose value fn returns when polled each
// step. fn must be cheap and safe for concurrent use. Function gauges do
// not expire. A later call for the same id returns the first gauge.
func (r *Registry) FuncGauge(fn func() float64, name string, kv ...string) *Gauge {
	return lookup(r, name, kv, func(id Id) *Gauge { g := newGauge(id); g.fn = fn; return g })
}

// MaxGauge returns the max gauge for name and tags.
func (r *Registry) MaxGauge(name string, kv ...string) *MaxGauge {
	return lookup(r, name, kv, newMaxGauge)
}

// Timer returns the timer for name and tags.
func (r *Registry) Timer(name string, kv ...string) *Timer {
	return lookup(r, name, kv, newTimer)
}

// TimerFor returns the timer for an id.
func (r *Registry) TimerFor(id Id) *Timer { return register(r, id, newTimer) }

// DistributionSummary returns the distribution summary for name and tags.
func (r *Registry) DistributionSummary(name string, kv ...string) *DistributionSummary {
	return lookup(r, name, kv, newDistributionSummary)
}

// PercentileTimer returns the percentile timer for name and tags, with
// the default range of 10 ms to 1 minute. See PercentileTimerFor.
func (r *Registry) PercentileTimer(name string, kv ...string) *PercentileTimer {
	return lookup(r, name, kv, func(id Id) *PercentileTimer { return newPercentileTimer(id, 10*time.Millisecond, time.Minute) })
}

// PercentileTimerFor returns the percentile timer for an id, counting
// durations in buckets between min and max: values outside the range
// count in its first or last bucket, and the range bounds how many bucket
// series a timer publishes (up to 276 at full range; 58 for the default).
// An existing timer keeps its range.
func (r *Registry) PercentileTimerFor(id Id, min, max time.Duration) *PercentileTimer {
	return register(r, id, func(id Id) *PercentileTimer { return newPercentileTimer(id, min, max) })
}

// PercentileDistributionSummary returns the percentile distribution
// summary for name and tags, with the full range.
func (r *Registry) PercentileDistributionSummary(name string, kv ...string) *PercentileDistributionSummary {
	return lookup(r, name, kv, func(id Id) *PercentileDistributionSummary {
		return newPercentileDistributionSummary(id, 0, 1<<62)
	})
}

// PercentileDistributionSummaryFor returns the percentile distribution
// summary for an id, counting amounts between min and max.
func (r *Registry) PercentileDistributionSummaryFor(id Id, min, max int64) *PercentileDistributionSummary {
	return register(r, id, func(id Id) *PercentileDistributionSummary {
		return newPercentileDistributionSummary(id, min, max)
	})
}

// LongTaskTimer returns the long task timer for name and tags.
func (r *Registry) LongTaskTimer(name string, kv ...string) *LongTaskTimer {
	clock := time.Now
	if r != nil {
		clock = r.opts.Clock
	}
	return lookup(r, name, kv, func(id Id) *LongTaskTimer { return newLongTaskTimer(id, clock) })
}
