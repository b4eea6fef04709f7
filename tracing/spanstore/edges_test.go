package spanstore

import "testing"

func TestEdgeTracker(t *testing.T) {
	t.Parallel()
	m := func(tr, sp, parent int, svc string) spanMeta {
		x := spanMeta{trace: tid(tr), span: sid(tr, sp), service: svc, start: 61e9}
		if parent != 0 {
			x.parent = sid(tr, parent)
		}
		return x
	}
	et := newEdgeTracker(8) // generations of 4 spans
	// Child first, parent later: the pending child pairs up.
	if e := et.observe([]spanMeta{m(1, 2, 1, "db")}, 0); len(e) != 0 {
		t.Errorf("edges before the parent arrived: %v", e)
	}
	if e := et.observe([]spanMeta{m(1, 1, 0, "api")}, 0); len(e) != 1 || e[edge{1, "api", "db", -1}] != 1 {
		t.Errorf("parent after child: %v", e)
	}
	// Parent first; a child in the same service makes no edge.
	et.observe([]spanMeta{m(2, 1, 0, "api")}, 0)
	if e := et.observe([]spanMeta{m(2, 2, 1, "api"), m(2, 3, 1, "cache")}, 0); len(e) != 1 || e[edge{1, "api", "cache", -1}] != 1 {
		t.Errorf("parent before children: %v", e)
	}
	// Old spans fall out after two generations.
	for i := range 12 {
		et.observe([]spanMeta{m(100+i, 1, 0, "filler")}, 0)
	}
	if e := et.observe([]spanMeta{m(2, 4, 1, "late")}, 0); len(e) != 0 {
		t.Errorf("a parent older than two generations still paired: %v", e)
	}
	et.mu.Lock()
	n := len(et.mu.spans) + len(et.mu.oldSpans)
	et.mu.Unlock()
	if n > 8 {
		t.Errorf("%d spans remembered, bound is 8", n)
	}
}
