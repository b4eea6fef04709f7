package index

import "github.com/sextant-dev/sextant/tsdb/tags"

// epochs tell a caller that cached the series a query selected whether the
// answer may have changed since (tsdb.Selection). Every Add and Remove
// advances gen; an Add stamps the series' name with it, a Remove stamps
// removedAt. The epoch of a query that pins the name (an :eq or :in on it
// through :and) is the newest stamp of its names or of removedAt; of any
// other query, gen. Stamps only grow, so an epoch equal to the cached one
// means no series of those names was added and none at all was removed
// (a removal frees an id that a new series of any name may take, so it
// invalidates every selection; removals come in rare garbage-collection
// batches). Guarded by the index lock.
type epochs struct {
	gen       uint64
	removedAt uint64
	names     map[string]uint64 // name value -> gen of its last Add
}

func (e *epochs) added(s tags.Set) {
	e.gen++
	name, ok := s.Get(tags.NameKey)
	if !ok {
		return
	}
	if e.names == nil {
		e.names = make(map[string]uint64)
	}
	if _, known := e.names[name]; !known {
		name = clone(name)
	}
	e.names[name] = e.gen
}

func (e *epochs) removed() {
	e.gen++
	e.removedAt = e.gen
}

// forgetName drops the stamp of a name that has no series left (so that
// the map does not grow with names long gone); removedAt, newer than the
// stamp, keeps every selection of it invalid.
func (e *epochs) forgetName(name string) { delete(e.names, name) }

func clone(s string) string { return string(append([]byte(nil), s...)) }

// Epoch returns the index generation that the series matching q depend
// on: it changes whenever a series that q could match is added, and on
// every removal. Callers that cache a selection (tsdb.Selection) read it
// before selecting and select again when it differs.
func (ix *Index) Epoch(q *tags.Query) uint64 {
	names := pinnedNames(q)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e := &ix.mu.epochs
	if names == nil {
		return e.gen
	}
	ep := e.removedAt
	for _, n := range names {
		ep = max(ep, e.names[n])
	}
	return ep
}

// pinnedNames returns the names q restricts its series to (through :and
// only), or nil when it does not.
func pinnedNames(q *tags.Query) []string {
	switch q.Op() {
	case tags.OpEq:
		if q.Key() == tags.NameKey {
			return []string{q.Value()}
		}
	case tags.OpIn:
		if q.Key() == tags.NameKey && len(q.Values()) > 0 {
			return q.Values()
		}
	case tags.OpAnd:
		if n := pinnedNames(q.Subs()[0]); n != nil {
			return n
		}
		return pinnedNames(q.Subs()[1])
	}
	return nil
}
