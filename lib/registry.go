package lib

import (
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Registry creates and holds meters. Asking twice for the same id returns
// the same meter. A nil *Registry is valid and hands out meters that work
// but are not registered, so components can be used without one. Safe for
// concurrent use.
type Registry struct {
	mu struct {
		sync.RWMutex
		meters map[string]any // by Id.key()
	}
	maxMeters int
	logger    *slog.Logger
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// MaxMeters caps the number of meters; beyond it, new ids get meters
	// that are not registered (and a warning is logged once). Default 10000.
	MaxMeters int
	Logger    *slog.Logger
}

// NewRegistry returns an empty registry.
func NewRegistry(opts RegistryOptions) *Registry {
	if opts.MaxMeters <= 0 {
		opts.MaxMeters = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{maxMeters: opts.MaxMeters, logger: opts.Logger}
	r.mu.meters = make(map[string]any)
	return r
}

// Counter returns the counter for name and alternating tag keys and values.
func (r *Registry) Counter(name string, kv ...string) *Counter {
	return register(r, NewId(name, kv...), func(id Id) *Counter { return &Counter{id: id} })
}

// Gauge returns the gauge for name and tags.
func (r *Registry) Gauge(name string, kv ...string) *Gauge {
	return register(r, NewId(name, kv...), func(id Id) *Gauge { return &Gauge{id: id} })
}

// FuncGauge registers a gauge whose value fn returns when polled. fn must be
// cheap and safe for concurrent use. A later call for the same id returns
// the first gauge.
func (r *Registry) FuncGauge(fn func() float64, name string, kv ...string) *Gauge {
	return register(r, NewId(name, kv...), func(id Id) *Gauge { return &Gauge{id: id, fn: fn} })
}

// MaxGauge returns the max gauge for name and tags.
func (r *Registry) MaxGauge(name string, kv ...string) *MaxGauge {
	return register(r, NewId(name, kv...), func(id Id) *MaxGauge {
		g := &MaxGauge{id: id}
		g.value.store(nan)
		return g
	})
}

// Timer returns the timer for name and tags.
func (r *Registry) Timer(name string, kv ...string) *Timer {
	return register(r, NewId(name, kv...), func(id Id) *Timer { return &Timer{id: id} })
}

// DistributionSummary returns the distribution summary for name and tags.
func (r *Registry) DistributionSummary(name string, kv ...string) *DistributionSummary {
	return register(r, NewId(name, kv...), func(id Id) *DistributionSummary {
		d := &DistributionSummary{id: id}
		d.max.store(nan)
		return d
	})
}

// register returns the meter of type M for id, creating it with mk. An id
// already registered with another meter type gets an unregistered meter.
func register[M any](r *Registry, id Id, mk func(Id) *M) *M {
	if r == nil {
		return mk(id)
	}
	key := id.key()
	r.mu.RLock()
	m, ok := r.mu.meters[key]
	r.mu.RUnlock()
	if !ok {
		r.mu.Lock()
		if m, ok = r.mu.meters[key]; !ok {
			if len(r.mu.meters) >= r.maxMeters {
				r.mu.Unlock()
				r.logger.Warn("meter limit reached, meter not registered", "meter", id.String(), "limit", r.maxMeters)
				return mk(id)
			}
			m = mk(id)
			r.mu.meters[key] = m
		}
		r.mu.Unlock()
	}
	if typed, ok := m.(*M); ok {
		return typed
	}
	return mk(id)
}

// Meters calls fn with every registered meter, sorted by id. The meter is one
// of *Counter, *Gauge, *MaxGauge, *Timer or *DistributionSummary.
func (r *Registry) Meters(fn func(m any)) {
	if r == nil {
		return
	}
	r.mu.RLock()
	keys := make([]string, 0, len(r.mu.meters))
	for k := range r.mu.meters {
		keys = append(keys, k)
	}
	meters := make(map[string]any, len(keys))
	for _, k := range keys {
		meters[k] = r.mu.meters[k]
	}
	r.mu.RUnlock()
	slices.SortFunc(keys, strings.Compare)
	for _, k := range keys {
		fn(meters[k])
	}
}
