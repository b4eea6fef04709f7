package ingest

import (
	"hash/maphash"
	"math"
	"math/bits"
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
// Memory. An entry is 16 bytes: 95 bits of the key and the ref in 32
// bits (the head's refs are ids + 1 and fit; wider refs, the cluster
// producer's 64-bit hashes, go to a side table of the stripe and the entry
// holds their index there). Dropping the 33 key bits the table does not
// keep leaves the chance of an accidental collision among n keys at about
// n²/2⁹⁶ (10⁻¹⁵ for ten million series). The tables are open-addressing
// with linear probing, striped by key into refStripes stripes of at most
// max/refStripes entries, at most 80 % full and grown by half (not
// doubled): 20 to 30 bytes an entry, where 24-byte entries in tables
// doubled at three quarters full took 48 at a million series. A full
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
// cost of a lookup in BenchmarkPublishStore). A slot whose key bits are
// zero is empty. Its size is any number of slots (grown by half), and a
// key's home slot is the top bits of key[0] times the size.
type refStripe struct {
	mu struct {
		sync.RWMutex
		slots []refSlot
		n     int // slots in use
		// wide holds the refs that do not fit a slot's 32 bits, by the
		// index the slot holds; free lists the indexes of dropped ones.
		wide []tsdb.SeriesRef
		free []uint32
	}
	_ [24]byte // 128 bytes: writers on other cores do not share a cache line
}

// refSlot is one entry: key[0], the low 31 bits of key[1] with wideBit
// set when v indexes the stripe's wide refs, and v, the ref otherwise.
type refSlot struct {
	k0 uint64
	k1 uint32
	v  uint32
}

const (
	keyBits = 1<<31 - 1 // the bits of key[1] a slot keeps
	wideBit = 1 << 31
	growMin = 16 // slots of a stripe's first table
)

// matches reports whether the slot holds key k.
func (s *refSlot) matches(k refKey) bool {
	return s.k0 == k[0] && s.k1&keyBits == uint32(k[1])&keyBits
}

// empty reports whether the slot holds nothing.
func (s *refSlot) empty() bool { return s.k0 == 0 && s.k1 == 0 }

// refLocked returns the ref of the occupied slot sl. Called with the
// stripe's lock held (read or write).
func (st *refStripe) refLocked(sl *refSlot) tsdb.SeriesRef {
	if sl.k1&wideBit != 0 {
		return st.mu.wide[sl.v]
	}
	return tsdb.SeriesRef(sl.v)
}

// home returns the first slot to probe for k in a table of n slots.
func home(k refKey, n int) int {
	hi, _ := bits.Mul64(k[0], uint64(n))
	return int(hi)
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
	if k[0] == 0 && k[1]&keyBits == 0 {
		// The zero key means none (and a slot with zero key bits is
		// empty); a one-bit nudge is as unique.
		k[0] = 1
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
	ref := st.getLocked(k)
	st.mu.RUnlock()
	return ref
}

// getLocked returns the ref cached for k in the stripe, or 0. Called with
// its lock held (read or write).
func (st *refStripe) getLocked(k refKey) tsdb.SeriesRef {
	slots := st.mu.slots
	if len(slots) == 0 {
		return 0
	}
	for i := home(k, len(slots)); ; {
		sl := &slots[i]
		if sl.matches(k) {
			return st.refLocked(sl)
		}
		if sl.empty() {
			return 0
		}
		i = next(i, len(slots))
	}
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
		for _, i := range order[lo:hi] {
			refs[i] = st.getLocked(keys[i])
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
		st.mu.wide, st.mu.free = st.mu.wide[:0], st.mu.free[:0]
		evicted = true
	}
	// At most four fifths full, so that probes stay short and one always
	// ends on an empty slot.
	if (st.mu.n+1)*5 > len(st.mu.slots)*4 {
		st.growLocked()
	}
	slots := st.mu.slots
	for i := home(k, len(slots)); ; {
		sl := &slots[i]
		if sl.empty() {
			*sl = refSlot{k0: k[0], k1: uint32(k[1]) & keyBits}
			st.setLocked(sl, ref)
			st.mu.n++
			return evicted
		}
		if sl.matches(k) {
			st.releaseLocked(sl)
			st.setLocked(sl, ref)
			return evicted
		}
		i = next(i, len(slots))
	}
}

// setLocked stores ref in the slot sl, whose key bits are set.
func (st *refStripe) setLocked(sl *refSlot, ref tsdb.SeriesRef) {
	if ref <= math.MaxUint32 {
		// Fast path: the head's refs.
		sl.k1 &^= wideBit
		sl.v = uint32(ref)
		return
	}
	var w uint32
	if n := len(st.mu.free); n > 0 {
		w = st.mu.free[n-1]
		st.mu.free = st.mu.free[:n-1]
		st.mu.wide[w] = ref
	} else {
		w = uint32(len(st.mu.wide))
		st.mu.wide = append(st.mu.wide, ref)
	}
	sl.k1 |= wideBit
	sl.v = w
}

// releaseLocked frees the wide ref the slot sl may index.
func (st *refStripe) releaseLocked(sl *refSlot) {
	if sl.k1&wideBit != 0 {
		st.mu.free = append(st.mu.free, sl.v)
	}
}

// growLocked grows the table by half and places every entry again.
func (st *refStripe) growLocked() {
	old := st.mu.slots
	slots := make([]refSlot, max(growMin, len(old)+len(old)/2))
	for _, s := range old {
		if s.empty() {
			continue
		}
		i := home(refKey{s.k0, uint64(s.k1 & keyBits)}, len(slots))
		for !slots[i].empty() {
			i = next(i, len(slots))
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
	i := home(k, len(slots))
	for ; !slots[i].matches(k) || st.refLocked(&slots[i]) != ref; i = next(i, len(slots)) {
		if slots[i].empty() {
			return
		}
	}
	st.releaseLocked(&slots[i])
	// Backward-shift deletion: move later entries of the probe run into
	// the hole when their home slot is not after it, so that no lookup
	// stops early at the hole.
	for {
		slots[i] = refSlot{}
		j := i
		for {
			j = next(j, len(slots))
			if slots[j].empty() {
				st.mu.n--
				return
			}
			h := home(refKey{slots[j].k0}, len(slots))
			// Entry j may stay if its home lies cyclically in (i, j].
			if (i < j && i < h && h <= j) || (i > j && (h > i || h <= j)) {
				continue
			}
			slots[i] = slots[j]
			i = j
			break
		}
	}
}

// next returns the slot after i in a table of n.
func next(i, n int) int {
	if i++; i == n {
		return 0
	}
	return i
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
