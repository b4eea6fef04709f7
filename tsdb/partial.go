package tsdb

import (
	"context"
	"sync/atomic"
)

// Partial records that an answer misses data: in cluster mode, a read
// whose partition had no store node answering. A reader over several
// stores marks it in the request's context (MarkPartial) and the HTTP
// layer reads it back (IsPartial) to flag the response, so a missing
// partition is never a quiet wrong number. Safe for concurrent use.
type Partial struct{ v atomic.Bool }

type partialKey struct{}

// WithPartial returns ctx carrying a Partial tracker, or ctx itself when
// it already carries one (so that the outermost tracker sees every mark).
func WithPartial(ctx context.Context) (context.Context, *Partial) {
	if p, ok := ctx.Value(partialKey{}).(*Partial); ok {
		return ctx, p
	}
	p := new(Partial)
	return context.WithValue(ctx, partialKey{}, p), p
}

// MarkPartial marks the answer of ctx's request partial; without a
// tracker in ctx it does nothing.
func MarkPartial(ctx context.Context) {
	if p, ok := ctx.Value(partialKey{}).(*Partial); ok {
		p.v.Store(true)
	}
}

// IsPartial reports whether a read under ctx was marked partial.
func IsPartial(ctx context.Context) bool {
	p, ok := ctx.Value(partialKey{}).(*Partial)
	return ok && p.Is()
}

// Is reports whether the answer was marked partial.
func (p *Partial) Is() bool { return p != nil && p.v.Load() }
