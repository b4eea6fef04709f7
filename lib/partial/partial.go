package partial

import (
	"context"
	"sync/atomic"
)

// Tracker records that an answer misses data. It is set at most once per
// request (false to true, never back), by any number of readers at once:
// safe for concurrent use. The zero value is an unmarked tracker, and a nil
// *Tracker reads as unmarked.
type Tracker struct{ v atomic.Bool }

// key is the context key of the request's Tracker.
type key struct{}

// With returns ctx carrying a Tracker, or ctx itself and the Tracker it
// already carries: nested middlewares then share the outermost tracker,
// which sees every mark.
func With(ctx context.Context) (context.Context, *Tracker) {
	if p, ok := ctx.Value(key{}).(*Tracker); ok {
		return ctx, p
	}
	p := new(Tracker)
	return context.WithValue(ctx, key{}, p), p
}

// Mark marks the answer of ctx's request partial. Without a tracker in ctx
// (a read outside an HTTP request: a test, an alert rule) it does nothing.
func Mark(ctx context.Context) {
	if p, ok := ctx.Value(key{}).(*Tracker); ok {
		p.v.Store(true)
	}
}

// Is reports whether a read under ctx was marked partial.
func Is(ctx context.Context) bool {
	p, ok := ctx.Value(key{}).(*Tracker)
	return ok && p.Is()
}

// Is reports whether the answer was marked partial.
func (p *Tracker) Is() bool { return p != nil && p.v.Load() }
