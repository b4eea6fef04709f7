package spanstore

import (
	"sync"

	"github.com/sextant-dev/sextant/tracing"
)

// edgeTracker pairs child spans with their parents to count calls
// between services. Services export their spans separately, so a parent
// and its child usually arrive in different writes: the tracker remembers
// recent spans' services, and children whose parent has not arrived yet,
// in two generations of maps each (a full current generation replaces
// the previous one), so memory stays bounded and old entries fall out.
type edgeTracker struct {
	max int // entries per generation
	mu  struct {
		sync.Mutex
		spans, oldSpans     map[spanKey]string
		pending, oldPending map[spanKey][]pendingChild
	}
}

// spanKey identifies a span across traces.
type spanKey struct {
	trace tracing.TraceID
	span  tracing.SpanID
}

type pendingChild struct {
	service string
	minute  int64
}

// edge is a call from a span of parent to a span of child, counted in the
// minute the child started.
type edge struct {
	minute        int64
	parent, child string
}

func newEdgeTracker(max int) *edgeTracker {
	t := &edgeTracker{max: max / 2}
	t.mu.spans, t.mu.pending = map[spanKey]string{}, map[spanKey][]pendingChild{}
	return t
}

// observe registers a write's spans and returns the cross-service edges
// they complete.
func (t *edgeTracker) observe(meta []spanMeta) map[edge]int {
	var out map[edge]int
	add := func(e edge) {
		if out == nil {
			out = map[edge]int{}
		}
		out[e]++
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.mu.spans) >= t.max {
		t.mu.oldSpans, t.mu.spans = t.mu.spans, make(map[spanKey]string, t.max)
	}
	if len(t.mu.pending) >= t.max {
		t.mu.oldPending, t.mu.pending = t.mu.pending, map[spanKey][]pendingChild{}
	}
	for i := range meta {
		m := &meta[i]
		t.mu.spans[spanKey{m.trace, m.span}] = m.service
	}
	for i := range meta {
		m := &meta[i]
		minute := m.start / 60e9
		// Children that arrived before this span.
		k := spanKey{m.trace, m.span}
		for _, pend := range [2]map[spanKey][]pendingChild{t.mu.pending, t.mu.oldPending} {
			for _, c := range pend[k] {
				if c.service != m.service {
					add(edge{minute: c.minute, parent: m.service, child: c.service})
				}
			}
			delete(pend, k)
		}
		if m.parent.IsZero() {
			continue
		}
		pk := spanKey{m.trace, m.parent}
		svc, ok := t.mu.spans[pk]
		if !ok {
			svc, ok = t.mu.oldSpans[pk]
		}
		switch {
		case !ok:
			t.mu.pending[pk] = append(t.mu.pending[pk], pendingChild{service: m.service, minute: minute})
		case svc != m.service:
			add(edge{minute: minute, parent: svc, child: m.service})
		}
	}
	return out
}
