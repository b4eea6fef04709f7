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
// series, more than the entry itself. Remote write keys by its labels
// (length-prefixed), OTLP metrics by their attributes and the tags the
// mapping adds (otlpref.go).
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
// Memory. Entries are 24 bytes (key and ref) in open-addressing tables,
// striped by key into refStripes stripes of at most max/refStripes
// entries, three quarters full at most: 32 to 64 bytes an entry. A full
// stripe starts over (its series miss once and are cached again), so the
// cache never holds more than max entries.
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

// refStripe is an open-addressing hash table with linear probing: one
// probe usually reads one cache line, where a Go map reads its control
// word and then its slot (two misses on a large cache, measured as the
// cost of a lookup in BenchmarkPublishStore). A slot with ref 0 is empty.
type refStripe struct {
	mu struct {
		sync.RWMutex
		slots []refSlot // a power of two long, or nil
		n     int       // slots in use
	}
	_ [24]byte // writers on other cores do not share a cache line
}

type refSlot struct {
	key refKey
	ref tsdb.SeriesRef
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
	var ref tsdb.SeriesRef
	if slots := st.mu.slots; len(slots) > 0 {
		mask := uint64(len(slots) - 1)
		for i := k[1] & mask; ; i = (i + 1) & mask {
			s := &slots[i]
			if s.ref == 0 || s.key == k {
				ref = s.ref
				break
			}
		}
	}
	st.mu.RUnlock()
	return ref
}

// lookupAll sets refs[i] to the ref cached for keys[i], or 0 (the zero key
// is none), and returns the scratch order (key indexes grouped by stripe)
// for reuse. Lookups of one stripe share a read lock, and with no atomic
// between them the CPU overlaps their cache misses: one at a time, a
// lookup in a cache of 100 000 series cost about as much as decoding the
// datapoint's tags did.
func (c *refCache) lookupAll(keys []refKey, refs []tsdb.SeriesRef, order []int32) []int32 {
	var counts [refStripes + 1]int32
	for _, k := range keys {
		if k != (refKey{}) {
			counts[k[0]%refStripes+1]++
		}
	}
	for s := 1; s <= refStripes; s++ {
		counts[s] += counts[s-1]
	}
	n := int(counts[refStripes])
	if cap(order) < n {
		order = make([]int32, n, n+n/4)
	}
	order = order[:n]
	pos := counts
	for i, k := range keys {
		refs[i] = 0
		if k != (refKey{}) {
			s := k[0] % refStripes
			order[pos[s]] = int32(i)
			pos[s]++
		}
	}
	for s := range refStripes {
		lo, hi := counts[s], counts[s+1]
		if lo == hi {
			continue
		}
		st := &c.stripes[s]
		st.mu.RLock()
		if slots := st.mu.slots; len(slots) > 0 {
			mask := uint64(len(slots) - 1)
			for _, i := range order[lo:hi] {
				k := keys[i]
				for j := k[1] & mask; ; j = (j + 1) & mask {
					if sl := &slots[j]; sl.ref == 0 || sl.key == k {
						refs[i] = sl.ref
						break
					}
				}
			}
		}
		st.mu.RUnlock()
	}
	return order
}

// put caches ref for k. It reports whether the stripe was full and
// started over.
func (c *refCache) put(k refKey, ref tsdb.SeriesRef) (evicted bool) {
	st := c.stripe(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.n >= c.max {
		clear(st.mu.slots)
		st.mu.n = 0
		evicted = true
	}
	// At most three quarters full, so that probes stay short and one
	// always ends on an empty slot.
	if (st.mu.n+1)*4 > len(st.mu.slots)*3 {
		st.growLocked()
	}
	slots := st.mu.slots
	mask := uint64(len(slots) - 1)
	for i := k[1] & mask; ; i = (i + 1) & mask {
		s := &slots[i]
		if s.ref == 0 {
			s.key, s.ref = k, ref
			st.mu.n++
			return evicted
		}
		if s.key == k {
			s.ref = ref
			return evicted
		}
	}
}

// growLocked doubles the table and places every entry again.
func (st *refStripe) growLocked() {
	old := st.mu.slots
	slots := make([]refSlot, max(16, 2*len(old)))
	mask := uint64(len(slots) - 1)
	for _, s := range old {
		if s.ref == 0 {
			continue
		}
		i := s.key[1] & mask
		for slots[i].ref != 0 {
			i = (i + 1) & mask
		}
		slots[i] = s
	}
	st.mu.slots = slots
}

// drop forgets k if it still maps to ref (a stale ref another sender may
// already have replaced).
func (c *refCache) drop(k refKey, ref tsdb.SeriesRef) {
	st := c.stripe(k)
	st.mu.Lock()
	defer st.mu.Unlock()
	slots := st.mu.slots
	if len(slots) == 0 {
		return
	}
	mask := uint64(len(slots) - 1)
	i := k[1] & mask
	for ; slots[i].key != k || slots[i].ref != ref; i = (i + 1) & mask {
		if slots[i].ref == 0 {
			return
		}
	}
	// Backward-shift deletion: move later entries of the probe run into
	// the hole when their home slot is not after it, so that no lookup
	// stops early at the hole.
	for {
		slots[i] = refSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if slots[j].ref == 0 {
				st.mu.n--
				return
			}
			home := slots[j].key[1] & mask
			// Entry j may stay if its home lies cyclically in (i, j].
			if (i < j && i < home && home <= j) || (i > j && (home > i || home <= j)) {
				continue
			}
			slots[i] = slots[j]
			i = j
			break
		}
	}
}

// len returns the number of entries.
func (c *refCache) len() int {
	n := 0
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.RLock()
		n += st.mu.n
		st.mu.RUnlock()
	}
	return n
}

// resize returns s with length n, reusing its array when it is big enough.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
