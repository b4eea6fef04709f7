package spanstore

import (
	"encoding/binary"
	"sync"

	"github.com/sextant-dev/sextant/tracing"
)

// edgeTracker pairs child spans with their parents to count calls
// between services. Services export their spans separately, so a parent
// and its child usually arrive in different writes: the tracker remembers
// recent spans' services, and children whose parent has not arrived yet,
// in two generations of maps each (a full current generation replaces
// the previous one), so memory stays bounded and old entries fall out.
//
// A span is remembered as a 64-bit hash of its trace and span ids and a
// service number, about 40 bytes with the map's overhead: the default
// million spans cost some 40 MB and pair parents and children that arrive
// seconds apart at 100 000 spans/s.
type edgeTracker struct {
	max int // entries per generation
	mu  struct {
		sync.Mutex
		spans, oldSpans     map[uint64]uint32
		pending, oldPending map[uint64][]pendingChild
		services            map[string]uint32 // service numbers
		names               []string
	}
}

// maxEdgeServices bounds the service numbers: spans of further services
// make no edges.
const maxEdgeServices = 1 << 16

type pendingChild struct {
	service uint32
	minute  int64
}

// edge is a call from a span of parent to a span of child, counted in the
// minute the child started; part is the partition of their trace in a
// cluster's span log (Store.SetPartitions), -1 when the store knows none.
type edge struct {
	minute        int64
	parent, child string
	part          int
}

func newEdgeTracker(max int) *edgeTracker {
	t := &edgeTracker{max: max / 2}
	t.mu.spans, t.mu.pending = map[uint64]uint32{}, map[uint64][]pendingChild{}
	t.mu.services = map[string]uint32{}
	return t
}

// spanHash mixes a trace and span id into 64 bits (FNV-1a over the 24
// bytes); a collision would at worst count one call on a wrong edge.
func spanHash(tr tracing.TraceID, sp tracing.SpanID) uint64 {
	h := uint64(14695981039346656037)
	for _, b := range tr {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return (h ^ binary.LittleEndian.Uint64(sp[:])) * 1099511628211
}

// serviceLocked numbers a service; false when there are too many.
func (t *edgeTracker) serviceLocked(name string) (uint32, bool) {
	if n, ok := t.mu.services[name]; ok {
		return n, true
	}
	if len(t.mu.names) >= maxEdgeServices {
		return 0, false
	}
	n := uint32(len(t.mu.names))
	t.mu.services[name] = n
	t.mu.names = append(t.mu.names, name)
	return n, true
}

// observe registers a write's spans and returns the cross-service edges
// they complete, each in the partition of its trace in a log of n
// partitions (none when n is 0).
func (t *edgeTracker) observe(meta []spanMeta, n int) map[edge]int {
	var out map[edge]int
	t.mu.Lock()
	defer t.mu.Unlock()
	// A parent and its child are of one trace, the span being observed:
	// the edge is in its partition.
	add := func(m *spanMeta, minute int64, parent, child uint32) {
		if out == nil {
			out = map[edge]int{}
		}
		part := -1
		if n > 0 {
			part = tracing.TracePartition(m.trace, n)
		}
		out[edge{minute: minute, parent: t.mu.names[parent], child: t.mu.names[child], part: part}]++
	}
	if len(t.mu.spans) >= t.max {
		t.mu.oldSpans, t.mu.spans = t.mu.spans, make(map[uint64]uint32, t.max)
	}
	if len(t.mu.pending) >= t.max {
		t.mu.oldPending, t.mu.pending = t.mu.pending, map[uint64][]pendingChild{}
	}
	for i := range meta {
		m := &meta[i]
		if svc, ok := t.serviceLocked(m.service); ok {
			t.mu.spans[spanHash(m.trace, m.span)] = svc
		}
	}
	for i := range meta {
		m := &meta[i]
		svc, ok := t.serviceLocked(m.service)
		if !ok {
			continue
		}
		minute := m.start / 60e9
		// Children that arrived before this span.
		k := spanHash(m.trace, m.span)
		for _, pend := range [2]map[uint64][]pendingChild{t.mu.pending, t.mu.oldPending} {
			for _, c := range pend[k] {
				if c.service != svc {
					add(m, c.minute, svc, c.service)
				}
			}
			delete(pend, k)
		}
		if m.parent.IsZero() {
			continue
		}
		pk := spanHash(m.trace, m.parent)
		parent, ok := t.mu.spans[pk]
		if !ok {
			parent, ok = t.mu.oldSpans[pk]
		}
		switch {
		case !ok:
			t.mu.pending[pk] = append(t.mu.pending[pk], pendingChild{service: svc, minute: minute})
		case parent != svc:
			add(m, minute, parent, svc)
		}
	}
	return out
}
