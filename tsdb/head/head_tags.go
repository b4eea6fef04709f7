package head

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// pairTable interns the tags of the head's series: each distinct tag (a
// key and its value) is stored once, in its canonical encoding
// (uvarint(len(key)) key uvarint(len(value)) value, as tags.Set.AppendTo
// writes each tag), and a series keeps the ids of its tags, a uvarint
// each, in its shard's tagSlab: a dozen bytes where its canonical encoding
// took a hundred. Series share most of their tags (a metric name, an app,
// a region, a node's id across the node's metrics), so at a million series
// this was 90 MB less (docs/benchmarks.md, "Memory per series at a million
// series"). The canonical encoding of a series is the concatenation of its
// tags' encodings in id order, so rebuilding it (appendTags) is a copy of
// each.
//
// A tag is held by a count of the series that have it and freed with the
// last one (release); its id is then reused.
//
// Concurrency: intern and release take the table's lock. Reading a tag's
// encoding (appendTags, equal) takes no lock: the entries live in chunks
// that never move, found through a directory swapped atomically when it
// grows, and an entry's encoding is written before any series can hold
// its id and is only cleared after the last series holding it was
// deleted. A reader reaches an id only through a series, under its
// shard's lock, and deleting that series takes the same lock.
type pairTable struct {
	mu struct {
		sync.Mutex
		ids  map[string]uint32 // a tag's canonical encoding → its id
		free []uint32          // ids of freed tags, for reuse
		next uint32            // the next id never used
	}
	dir atomic.Pointer[[]*pairChunk]
}

// pairChunkBits sizes the chunks of entries: 1 024 of 24 bytes.
const (
	pairChunkBits = 10
	pairChunkSize = 1 << pairChunkBits
)

type pairChunk [pairChunkSize]pairEntry

type pairEntry struct {
	enc  string // the tag's canonical encoding; "" once freed
	refs int32  // series holding the tag; guarded by pairTable.mu
}

// tagsGuess is the bytes a series' canonical tag encoding is assumed to
// take, to size the buffers readers rebuild them into.
const tagsGuess = 128

func newPairTable() *pairTable {
	t := &pairTable{}
	t.mu.ids = make(map[string]uint32)
	t.dir.Store(&[]*pairChunk{})
	return t
}

// entry returns the entry of id, which a live series holds.
func (t *pairTable) entry(dir []*pairChunk, id uint32) *pairEntry {
	return &dir[id>>pairChunkBits][id&(pairChunkSize-1)]
}

// intern appends to dst the ids of the tags of enc, a canonical tag-set
// encoding, counting a holder more for each, and returns the extended dst.
// It returns dst unchanged and false for a malformed encoding (the head
// encodes its tag sets itself, and restores only ones that decode).
func (t *pairTable) intern(dst, enc []byte) ([]byte, bool) {
	base := len(dst)
	t.mu.Lock()
	defer t.mu.Unlock()
	for off := 0; off < len(enc); {
		n := pairLen(enc[off:])
		if n <= 0 {
			t.releaseLocked(dst[base:])
			return dst[:base], false
		}
		p := enc[off : off+n]
		off += n
		id, ok := t.mu.ids[string(p)]
		if !ok {
			id = t.newLocked(string(p))
		}
		t.entry(*t.dir.Load(), id).refs++
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	return dst, true
}

// newLocked adds the tag of encoding p, held by no series yet.
func (t *pairTable) newLocked(p string) uint32 {
	var id uint32
	if n := len(t.mu.free); n > 0 {
		id = t.mu.free[n-1]
		t.mu.free = t.mu.free[:n-1]
	} else {
		id = t.mu.next
		t.mu.next++
		if dir := *t.dir.Load(); int(id>>pairChunkBits) == len(dir) {
			// A new chunk: readers keep the directory they loaded, which
			// holds every id they can reach.
			grown := append(dir[:len(dir):len(dir)], new(pairChunk))
			t.dir.Store(&grown)
		}
	}
	t.entry(*t.dir.Load(), id).enc = p
	t.mu.ids[p] = id
	return id
}

// release counts a holder less for each tag of ids (a series' ids, as
// intern appended them), freeing the tags no series holds any more.
func (t *pairTable) release(ids []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(ids)
}

func (t *pairTable) releaseLocked(ids []byte) {
	dir := *t.dir.Load()
	for len(ids) > 0 {
		id, n := binary.Uvarint(ids)
		ids = ids[n:]
		e := t.entry(dir, uint32(id))
		if e.refs--; e.refs == 0 {
			delete(t.mu.ids, e.enc)
			e.enc = ""
			t.mu.free = append(t.mu.free, uint32(id))
		}
	}
}

// appendTags appends the canonical encoding of the tag set of ids to dst.
func (t *pairTable) appendTags(dst, ids []byte) []byte {
	dir := *t.dir.Load()
	for len(ids) > 0 {
		// Fast path: ids under 128 are one byte.
		id, n := uint64(ids[0]), 1
		if id >= 0x80 {
			id, n = binary.Uvarint(ids)
		}
		ids = ids[n:]
		dst = append(dst, t.entry(dir, uint32(id)).enc...)
	}
	return dst
}

// equal reports whether the tag set of ids has the canonical encoding enc,
// without building it.
func (t *pairTable) equal(ids, enc []byte) bool {
	dir := *t.dir.Load()
	for len(ids) > 0 {
		id, n := binary.Uvarint(ids)
		ids = ids[n:]
		p := t.entry(dir, uint32(id)).enc
		if len(enc) < len(p) || string(enc[:len(p)]) != p {
			return false
		}
		enc = enc[len(p):]
	}
	return len(enc) == 0
}

// len returns the number of distinct tags held.
func (t *pairTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.mu.ids)
}

// pairLen returns the length of the first tag of a canonical encoding, or
// 0 when it is malformed.
func pairLen(enc []byte) int {
	off := 0
	for range 2 { // the key, then the value
		l, n := binary.Uvarint(enc[off:])
		if n <= 0 || uint64(len(enc)-off-n) < l {
			return 0
		}
		off += n + int(l)
	}
	return off
}
