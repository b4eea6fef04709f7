package ui

import (
	"sync"

	"github.com/sextant-dev/sextant/query/live"
)

// lineCacheSize bounds the live updates whose encoded lines are kept. The
// evaluator hands one update to every subscriber of its expression one
// after the other, so an update is needed only while its group is being
// fanned out; a few hundred entries cover every worker's.
const lineCacheSize = 1024

// lineCache encodes the lines of a live update once for all the
// subscribers of its expression (what a timeseries message holds besides
// the subscription id: appendTimeseriesTail), instead of formatting every
// value once per subscriber. An update is known by the address of its
// first line: the evaluator shares one Lines slice between the subscribers
// of a group. The cache holds that slice while the entry lives, so the
// address cannot be reused for another update meanwhile; entries are
// evicted in insertion order. Safe for concurrent use.
type lineCache struct {
	mu   sync.Mutex
	m    map[*live.Line][][]byte
	ring [lineCacheSize]*live.Line
	next int
}

// tails returns the encoded tails of lines (shared: read only).
func (lc *lineCache) tails(lines []live.Line) [][]byte {
	key := &lines[0]
	lc.mu.Lock()
	t, ok := lc.m[key]
	lc.mu.Unlock()
	if ok {
		return t // Fast path: another subscriber of the update encoded it.
	}
	t = make([][]byte, len(lines))
	for i := range lines {
		t[i] = appendTimeseriesTail(nil, &lines[i])
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if have, ok := lc.m[key]; ok {
		return have
	}
	if lc.m == nil {
		lc.m = make(map[*live.Line][][]byte)
	}
	if old := lc.ring[lc.next]; old != nil {
		delete(lc.m, old)
	}
	lc.ring[lc.next] = key
	lc.next = (lc.next + 1) % len(lc.ring)
	lc.m[key] = t
	return t
}
