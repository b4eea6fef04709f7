package ingest

import (
	"hash/maphash"
	"sync"

	"github.com/sextant-dev/sextant/tsdb"
)

// refCache maps the raw bytes a client sent for a series' tags to the
// store's ref of that series, so that a datapoint of a known series skips
// decoding its tags, sorting and merging them, the tag rules, and the
// store's lookup by tags (encoding the set, hashing it, a map probe and a
// comparison). Profiled on the Atlas publish path into the store, those
// were about half of the CPU per datapoint (docs/benchmarks.md, issue 18).
//
// Keys. A key is a 128-bit hash of the bytes the tags came in (for Atlas
// publish, the JSON text of a metric's "tags" object) combined with a
// hash of what else decides the series (the request's common tags). The
// same bytes always decode to the same tags, so two requests with equal
// key bytes name the same series; two spellings of one series (another
// key order, other spaces) are two entries with the same ref. The hashes
// are maphash with seeds drawn per cache: clients cannot see them, so
// they cannot craft collisions, and an accidental one among n keys has
// probability about n²/2¹²⁹ (10⁻²⁵ for ten million series). The key
// bytes are not kept: verifying a hit would cost about 150 bytes per
// series, more than the entry itself.
//
// What may be cached. Only series the store accepted a datapoint of,
// after the tag rules passed: a hit means the same bytes passed the same
// rules before, so the rules are not run again. The rules of a Handler are
// fixed at New; a rule change is a new Handler and so an empty cache.
//
// Invalidation. The store decides whether a ref is still good: a series
// deleted by retention, or a ref the Appender forgot (the cluster
// producer's own ref cache is bounded), comes back as a MissingName
// rejection of a datapoint that carried a Ref and no tags. The handler
// then drops the entry and sends that datapoint again with its tags; the
// store resolves them (creating the series anew if need be) and the new
// ref is cached. Refs of the head are never reused for another series in
// a process's lifetime, so a good-looking ref is never the wrong series.
//
// Memory. Entries are 24 bytes (key and ref) in a map, striped by key
// into refStripes stripes of at most max/refStripes entries; a full
// stripe starts over (its series miss once and are cached again), so the
// cache never holds more than max entries, about 40 bytes each.
//
// Concurrency. Safe for concurrent senders: lookups take a stripe's read
// lock, inserts its write lock; stripes are padded apart.
type refCache struct {
	seeds   [4]maphash.Seed // key bytes (2), context bytes (2)
	max     int             // entries per stripe
	stripes [refStripes]refStripe
}

// refStripes is the number of lock stripes of a refCache.
const refStripes = 64

// refKey is the 128-bit hash a refCache is keyed by; the zero key means
// "no key".
type refKey [2]uint64

type refStripe struct {
	mu struct {
		sync.RWMutex
		m map[refKey]tsdb.SeriesRef
	}
	_ [32]byte // writers on other cores do not share a cache line
}

// newRefCache returns a cache of at most n entries, or nil (no cache)
// when n is negative.
func newRefCache(n int) *refCache {
	if n < 0 {
		return nil
	}
	c := &refCache{max: max(1, n/refStripes)}
	for i := range c.seeds {
		c.seeds[i] = maphash.MakeSeed()
	}
	for i := range c.stripes {
		c.stripes[i].mu.m = make(map[refKey]tsdb.SeriesRef)
	}
	return c
}

// context hashes the bytes that, besides a series' own key bytes, decide
// its tags (for Atlas publish, the JSON text of the common tags).
func (c *refCache) context(b []byte) refKey {
	return refKey{maphash.Bytes(c.seeds[2], b), maphash.Bytes(c.seeds[3], b)}
}

// key returns the key of a series whose tags came as the bytes b in the
// context ctx. The context's hashes use other seeds than the key bytes'
// ones, so swapping the two texts gives another key.
func (c *refCache) key(ctx refKey, b []byte) refKey {
	k := refKey{maphash.Bytes(c.seeds[0], b) ^ ctx[0], maphash.Bytes(c.seeds[1], b) ^ ctx[1]}
	if k == (refKey{}) {
		k[0] = 1 // the zero key means none; a one-bit nudge is as unique
	}
	return k
}

func (c *refCache) stripe(k refKey) *refStripe {
	return &c.stripes[k[0]%refStripes]
}

// get returns the ref cached for k, or 0.
func (c *refCache) get(k refKey) tsdb.SeriesRef {
	st := c.stripe(k)
	st.mu.RLock()
	ref := st.mu.m[k]
	st.mu.RUnlock()
	return ref
}

// put caches ref for k. It reports whether the stripe was full and
// started over.
func (c *refCache) put(k refKey, ref tsdb.SeriesRef) (evicted bool) {
	st := c.stripe(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if old, ok := st.mu.m[k]; ok && old == ref {
		return false
	}
	if len(st.mu.m) >= c.max {
		clear(st.mu.m)
		evicted = true
	}
	st.mu.m[k] = ref
	return evicted
}

// drop forgets k if it still maps to ref (a stale ref another sender may
// already have replaced).
func (c *refCache) drop(k refKey, ref tsdb.SeriesRef) {
	st := c.stripe(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.m[k] == ref {
		delete(st.mu.m, k)
	}
}

// len returns the number of entries.
func (c *refCache) len() int {
	n := 0
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.RLock()
		n += len(st.mu.m)
		st.mu.RUnlock()
	}
	return n
}
