package fanout

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Consistency is how fresh a read must be.
type Consistency int

// The read consistencies.
const (
	// Eventual reads what the store nodes have applied when they answer
	// (normally within a second of the write): the default.
	Eventual Consistency = iota
	// Strong reads everything Kafka acknowledged before the read arrived:
	// the query node reads the log's end offsets and each store node
	// waits, before it answers, until it has applied its partitions up to
	// them (Mimir's strong read consistency). It costs a round trip to
	// Kafka and the store nodes' lag.
	Strong
)

// ConsistencyHeader is the request header that asks for a read
// consistency ("strong" or "eventual"); ConsistencyParam is the same as
// a URL parameter.
const (
	ConsistencyHeader = "X-Sextant-Read-Consistency"
	ConsistencyParam  = "consistency"
)

// ParseConsistency parses "strong" or "eventual" (any case); "" is
// Eventual.
func ParseConsistency(s string) (Consistency, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "eventual":
		return Eventual, nil
	case "strong":
		return Strong, nil
	}
	return Eventual, fmt.Errorf("%q is not a read consistency; use strong or eventual", s)
}

// String returns the name of c.
func (c Consistency) String() string {
	if c == Strong {
		return "strong"
	}
	return "eventual"
}

type consistencyKey struct{}

// WithConsistency returns ctx asking the reads under it for consistency c.
func WithConsistency(ctx context.Context, c Consistency) context.Context {
	return context.WithValue(ctx, consistencyKey{}, c)
}

// ConsistencyOf returns the consistency ctx asks for (Eventual unless set).
func ConsistencyOf(ctx context.Context) Consistency {
	c, _ := ctx.Value(consistencyKey{}).(Consistency)
	return c
}

// Log names one of the cluster's logs: the metrics topic or the spans
// topic (both have the same partitions).
type Log int

// The logs.
const (
	LogMetrics Log = iota
	LogSpans
)

// String returns the name of l.
func (l Log) String() string {
	if l == LogSpans {
		return "spans"
	}
	return "metrics"
}

// errNotFresh marks a store node that cannot show it applied the log up
// to a strong read's offsets (no consumer, the partition not consumed
// here, or not caught up before the deadline): 503, so the query node
// asks the partition's next owner.
var errNotFresh = errors.New("fanout: store node not caught up for a strong read")

// endOffsets returns, for a strong read, the end offset of every
// partition of log, and nil for an eventual one.
func (q *Querier) endOffsets(ctx context.Context, log Log, n int) ([]int64, error) {
	if ConsistencyOf(ctx) != Strong {
		return nil, nil
	}
	if q.ends == nil {
		return nil, fmt.Errorf("%w: strong read: the query node cannot read the log's end offsets", ErrUnavailable)
	}
	ends, err := q.ends.get(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("%w: strong read: %w", ErrUnavailable, err)
	}
	if len(ends) != n {
		return nil, fmt.Errorf("%w: strong read: the %s log has %d partitions, the membership %d", ErrUnavailable, log, len(ends), n)
	}
	q.m.strong.Increment()
	return ends, nil
}

// offsetsFor returns the offsets of partitions ps in ends (nil when ends is).
func offsetsFor(ends []int64, ps []int) []partOffset {
	if ends == nil {
		return nil
	}
	out := make([]partOffset, len(ps))
	for i, p := range ps {
		out[i] = partOffset{P: p, Offset: ends[p]}
	}
	return out
}

// waitFresh waits, on a store node, until the node applied log up to
// every offset of offs.
func (h *Handler) waitFresh(ctx context.Context, log Log, offs []partOffset) error {
	if len(offs) == 0 {
		return nil
	}
	if h.opts.WaitApplied == nil {
		return fmt.Errorf("%w: this node consumes no log", errNotFresh)
	}
	for _, o := range offs {
		if err := h.opts.WaitApplied(ctx, log, o.P, o.Offset); err != nil {
			return fmt.Errorf("%w: %s partition %d offset %d: %w", errNotFresh, log, o.P, o.Offset, err)
		}
	}
	return nil
}
