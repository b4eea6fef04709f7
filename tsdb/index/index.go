package index

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Index maps tag keys to values to the postings of series IDs. It is safe
// for concurrent use: lookups share a read lock, and adding or removing a
// series takes the write lock briefly.
type Index struct {
	mu struct {
		sync.RWMutex
		keys map[string]*keyEntry
		all  *roaring.Bitmap // every series
		epochs
	}
}

// keyEntry holds the values of one key.
type keyEntry struct {
	values map[string]*postings
	all    postings // series having the key, for :has and :not

	// The sorted value list serves prefix and range scans. It is brought up
	// to date lazily, under sortMu, by readers holding the index read lock:
	// new values wait in pending and removed ones are skipped until enough
	// accumulate to rebuild.
	sortMu  sync.Mutex
	sorted  []string
	pending []string
	deleted int
}

// New returns an empty index.
func New() *Index {
	ix := &Index{}
	ix.mu.keys = make(map[string]*keyEntry)
	ix.mu.all = roaring.New()
	return ix
}

// Add indexes series id with tags s. Adding an indexed series again is a
// no-op for its existing postings.
func (ix *Index) Add(id uint32, s tags.Set) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.mu.all.Add(id)
	ix.mu.added(s)
	for _, t := range s {
		k := ix.mu.keys[t.Key]
		if k == nil {
			k = &keyEntry{values: make(map[string]*postings)}
			ix.mu.keys[strings.Clone(t.Key)] = k
		}
		p := k.values[t.Value]
		if p == nil {
			p = &postings{}
			v := strings.Clone(t.Value)
			k.values[v] = p
			k.sortMu.Lock()
			k.pending = append(k.pending, v)
			k.sortMu.Unlock()
		}
		p.add(id)
		k.all.add(id)
	}
}

// Remove drops series id, which was added with tags s.
func (ix *Index) Remove(id uint32, s tags.Set) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.mu.all.Remove(id)
	ix.mu.removed()
	for _, t := range s {
		k := ix.mu.keys[t.Key]
		if k == nil {
			continue
		}
		k.all.remove(id)
		if p := k.values[t.Value]; p != nil {
			p.remove(id)
			if p.card() == 0 {
				delete(k.values, t.Value)
				if t.Key == tags.NameKey {
					ix.mu.forgetName(t.Value)
				}
				k.sortMu.Lock()
				k.deleted++
				k.sortMu.Unlock()
			}
		}
		if k.all.card() == 0 {
			delete(ix.mu.keys, t.Key)
		}
	}
}

// Len returns the number of indexed series.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return int(ix.mu.all.GetCardinality())
}

// SelectContext is Select for a query that may hold backtracking regexes:
// their matching runs first, outside the index lock (on a copy of the
// values of their keys), within budget and ctx, and answers an error
// rather than fewer series when either runs out (see
// tags.Query.ResolveBacktracking).
func (ix *Index) SelectContext(ctx context.Context, q *tags.Query, budget time.Duration) (*roaring.Bitmap, error) {
	q, err := q.ResolveBacktracking(ctx, ix.values, budget)
	if err != nil {
		return nil, err
	}
	return ix.Select(q), nil
}

// values returns a copy of the values of key (the strings are shared:
// they are immutable).
func (ix *Index) values(key string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	k := ix.mu.keys[key]
	if k == nil {
		return nil
	}
	out := make([]string, 0, len(k.values))
	for v := range k.values {
		out = append(out, v)
	}
	return out
}

// Select returns the IDs of the series matching q. The caller owns the
// result. A backtracking regex in q runs under the index lock: callers with
// user queries use SelectContext.
func (ix *Index) Select(q *tags.Query) *roaring.Bitmap {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.selectLocked(q)
}

func (ix *Index) selectLocked(q *tags.Query) *roaring.Bitmap {
	switch q.Op() {
	case tags.OpTrue:
		return ix.mu.all.Clone()
	case tags.OpFalse:
		return roaring.New()
	case tags.OpAnd:
		return ix.selectAndLocked(q)
	case tags.OpOr:
		r := ix.selectLocked(q.Subs()[0])
		r.Or(ix.selectLocked(q.Subs()[1]))
		return r
	case tags.OpNot:
		r := ix.mu.all.Clone()
		r.AndNot(ix.selectLocked(q.Subs()[0]))
		return r
	}
	k := ix.mu.keys[q.Key()]
	if k == nil {
		return roaring.New()
	}
	switch q.Op() {
	case tags.OpEq:
		if p := k.values[q.Value()]; p != nil {
			return p.bitmap()
		}
		return roaring.New()
	case tags.OpHas:
		return k.all.bitmap()
	case tags.OpIn:
		return k.union(q.Values(), nil)
	}
	// Regexes and comparisons: scan the values that can match.
	r := roaring.New()
	k.scan(q, func(v string, p *postings) { p.orInto(r) })
	return r
}

// selectAndLocked evaluates a chain of :and. Equality terms are intersected
// smallest first straight from the postings, with no copy but the first;
// other terms are evaluated and intersected after; negated terms are
// subtracted last, so that no complement is ever built.
func (ix *Index) selectAndLocked(q *tags.Query) *roaring.Bitmap {
	var terms, negs []*tags.Query
	var flatten func(q *tags.Query)
	flatten = func(q *tags.Query) {
		switch q.Op() {
		case tags.OpAnd:
			flatten(q.Subs()[0])
			flatten(q.Subs()[1])
		case tags.OpNot:
			negs = append(negs, q.Subs()[0])
		default:
			terms = append(terms, q)
		}
	}
	flatten(q)
	var eqs []*postings
	var rest []*tags.Query
	for _, t := range terms {
		if t.Op() != tags.OpEq {
			rest = append(rest, t)
			continue
		}
		k := ix.mu.keys[t.Key()]
		if k == nil {
			return roaring.New()
		}
		p := k.values[t.Value()]
		if p == nil {
			return roaring.New()
		}
		eqs = append(eqs, p)
	}
	var r *roaring.Bitmap
	if len(eqs) > 0 {
		slices.SortFunc(eqs, func(a, b *postings) int { return int(a.card()) - int(b.card()) })
		r = eqs[0].bitmap()
		for _, p := range eqs[1:] {
			if r.IsEmpty() {
				return r
			}
			p.andInto(r)
		}
	}
	for _, t := range rest {
		if r != nil && r.IsEmpty() {
			return r
		}
		if r != nil && t.Op() == tags.OpIn {
			// Intersect each value's postings with what is left before the
			// union: the union of five large postings cost more than the
			// whole rest of a live step (BenchmarkSelectIn).
			k := ix.mu.keys[t.Key()]
			if k == nil {
				return roaring.New()
			}
			r = k.union(t.Values(), r)
			continue
		}
		sel := ix.selectLocked(t)
		if r == nil {
			r = sel
		} else {
			r.And(sel)
		}
	}
	if r == nil {
		r = ix.mu.all.Clone()
	}
	for _, n := range negs {
		if r.IsEmpty() {
			return r
		}
		r.AndNot(ix.selectLocked(n))
	}
	return r
}

// scan calls fn for every value of k that q (a leaf on k's key) matches,
// restricted to a sorted range when q allows: a regex with a literal prefix
// or a comparison. Must be called with the index read lock held.
func (k *keyEntry) scan(q *tags.Query, fn func(string, *postings)) {
	lo, hi, ranged := "", "", false
	loIncl := true
	switch q.Op() {
	case tags.OpRe:
		if pre := q.Prefix(); pre != "" {
			lo, hi, ranged = pre, prefixEnd(pre), true
		}
	case tags.OpGt, tags.OpGe:
		lo, ranged, loIncl = q.Value(), true, q.Op() == tags.OpGe
	case tags.OpLt, tags.OpLe:
		hi, ranged = q.Value(), true
		if q.Op() == tags.OpLe {
			hi += "\x00" // the smallest string after the value
		}
	}
	if !ranged {
		// No order to use: test every value.
		for v, p := range k.values {
			if q.MatchValue(v) {
				fn(v, p)
			}
		}
		return
	}
	sorted := k.sortedValues()
	i := sort.SearchStrings(sorted, lo)
	for ; i < len(sorted); i++ {
		v := sorted[i]
		if hi != "" && v >= hi {
			break
		}
		if !loIncl && v == lo {
			continue
		}
		if p := k.values[v]; p != nil && q.MatchValue(v) {
			fn(v, p)
		}
	}
}

// prefixEnd returns the smallest string greater than every string with the
// prefix, or "" if there is none (a prefix of 0xff bytes).
func prefixEnd(pre string) string {
	b := []byte(pre)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// sortedValues returns the key's values in order, possibly including values
// removed since the last rebuild (callers check the map). The returned slice
// must not be modified.
func (k *keyEntry) sortedValues() []string {
	k.sortMu.Lock()
	defer k.sortMu.Unlock()
	if len(k.pending) == 0 && k.deleted*4 <= len(k.sorted) {
		return k.sorted
	}
	if k.deleted*4 > len(k.sorted) {
		// Rebuild from the map: removals have piled up.
		vs := make([]string, 0, len(k.values))
		for v := range k.values {
			vs = append(vs, v)
		}
		slices.Sort(vs)
		k.sorted, k.pending, k.deleted = vs, nil, 0
		return k.sorted
	}
	// Merge the pending values into a new slice: readers may hold the old.
	slices.Sort(k.pending)
	merged := make([]string, 0, len(k.sorted)+len(k.pending))
	i, j := 0, 0
	for i < len(k.sorted) || j < len(k.pending) {
		if j == len(k.pending) || (i < len(k.sorted) && k.sorted[i] < k.pending[j]) {
			merged = append(merged, k.sorted[i])
			i++
		} else {
			if len(merged) == 0 || merged[len(merged)-1] != k.pending[j] {
				merged = append(merged, k.pending[j])
			}
			j++
		}
	}
	k.sorted, k.pending = merged, nil
	return k.sorted
}

// Keys lists the tag keys of the series in matched (nil: all series), with
// the number of those series having each, sorted, starting after after, at
// most limit of them.
func (ix *Index) Keys(matched *roaring.Bitmap, after string, limit int) []tsdb.TagCount {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	names := make([]string, 0, len(ix.mu.keys))
	for k := range ix.mu.keys {
		if k > after {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []tsdb.TagCount
	for _, name := range names {
		if len(out) == limit {
			break
		}
		if n := ix.mu.keys[name].all.andCard(matched); n > 0 {
			out = append(out, tsdb.TagCount{Name: name, Count: int(n)})
		}
	}
	return out
}

// Values lists the values of key among the series in matched (nil: all),
// with counts, sorted, starting after after, at most limit of them.
func (ix *Index) Values(key string, matched *roaring.Bitmap, after string, limit int) []tsdb.TagCount {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	k := ix.mu.keys[key]
	if k == nil {
		return nil
	}
	sorted := k.sortedValues()
	var out []tsdb.TagCount
	for i := sort.SearchStrings(sorted, after); i < len(sorted) && len(out) < limit; i++ {
		v := sorted[i]
		if v == after {
			continue
		}
		p := k.values[v]
		if p == nil {
			continue
		}
		if n := p.andCard(matched); n > 0 {
			out = append(out, tsdb.TagCount{Name: v, Count: int(n)})
		}
	}
	return out
}

// Cardinality returns the number of distinct values of key.
func (ix *Index) Cardinality(key string) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if k := ix.mu.keys[key]; k != nil {
		return len(k.values)
	}
	return 0
}

// Group calls fn, in value order, with each value of key and the IDs of the
// series in matched having it, skipping values none of them has. The bitmap
// passed to fn is owned by fn.
func (ix *Index) Group(key string, matched *roaring.Bitmap, fn func(value string, ids *roaring.Bitmap)) {
	ix.mu.RLock()
	k := ix.mu.keys[key]
	if k == nil {
		ix.mu.RUnlock()
		return
	}
	type group struct {
		v   string
		ids *roaring.Bitmap
	}
	var groups []group
	for _, v := range k.sortedValues() {
		if p := k.values[v]; p != nil {
			if ids := p.and(matched); !ids.IsEmpty() {
				groups = append(groups, group{v, ids})
			}
		}
	}
	ix.mu.RUnlock()
	// fn runs without the lock: it may be slow and must not block writers.
	for _, g := range groups {
		fn(g.v, g.ids)
	}
}

// SizeBytes estimates the memory held by postings and values.
func (ix *Index) SizeBytes() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := ix.mu.all.GetSizeInBytes()
	for name, k := range ix.mu.keys {
		n += uint64(len(name)) + k.all.sizeBytes() + uint64(cap(k.sorted))*16
		for v, p := range k.values {
			n += uint64(len(v)) + 16 + 8 + p.sizeBytes()
		}
	}
	return n
}
