package tracing

import (
	"context"

	"github.com/sextant-dev/sextant/lib/partial"
)

// Partial records that a trace answer misses data: in cluster mode, a
// read whose partition had no store node answering. A reader over several
// stores marks it in the request's context (MarkPartial) and the HTTP
// layer reads it back (IsPartial) to flag the response. It is lib/partial's
// Tracker, the same type as tsdb.Partial (the contracts do not import each
// other, so the marker sits below both): a request carries one. Safe for
// concurrent use.
type Partial = partial.Tracker

// WithPartial returns ctx carrying a Partial tracker, or ctx itself when
// it already carries one.
func WithPartial(ctx context.Context) (context.Context, *Partial) { return partial.With(ctx) }

// MarkPartial marks the answer of ctx's request partial; without a
// tracker in ctx it does nothing.
func MarkPartial(ctx context.Context) { partial.Mark(ctx) }

// IsPartial reports whether a read under ctx was marked partial.
func IsPartial(ctx context.Context) bool { return partial.Is(ctx) }
