package head

import "encoding/binary"

// seriesTable finds the series of a shard by the hash of their tags. It is
// an open-addressing table with linear probing of 8-byte slots: the top 32
// bits of a series' tag hash (the shard is chosen by the low bits) and its
// local index + 1 (0: an empty slot). A probe compares the hash bits and
// then the tags themselves, so series whose hashes collide simply sit in
// the same probe run.
//
// Memory: the table grows by half (not doubling) once four fifths full, so
// a series costs 10 to 15 bytes. The Go map of hash to local index it
// replaced (with a second map for collisions) cost 37 bytes a series at a
// million series (docs/benchmarks.md, "Memory per series at a million
// series"). The slots hold no pointers: the collector never scans them.
//
// A seriesTable is guarded by its shard's lock.
type seriesTable struct {
	slots []tableSlot
	n     int // slots in use
}

type tableSlot struct {
	frag  uint32 // the top 32 bits of the tag hash
	local uint32 // local index + 1; 0: empty
}

// tableMin is the size of a table's first slots.
const tableMin = 64

func hashFrag(hash uint64) uint32 { return uint32(hash >> 32) }

// home returns the first slot to probe for frag in a table of n slots.
func tableHome(frag uint32, n int) int { return int(uint64(frag) * uint64(n) >> 32) }

// find returns the local index of the series with tag hash hash for which
// match is true, probing the series of that hash in insertion order.
func (t *seriesTable) find(hash uint64, match func(local uint32) bool) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	frag := hashFrag(hash)
	for i := tableHome(frag, len(t.slots)); ; i = t.next(i) {
		sl := t.slots[i]
		if sl.local == 0 {
			return 0, false
		}
		if sl.frag == frag && match(sl.local-1) {
			return sl.local - 1, true
		}
	}
}

// insert adds the series local with tag hash hash. It must not be in the
// table.
func (t *seriesTable) insert(hash uint64, local uint32) {
	if (t.n+1)*5 > len(t.slots)*4 {
		t.grow()
	}
	t.place(tableSlot{frag: hashFrag(hash), local: local + 1})
	t.n++
}

// place puts sl in the first empty slot of its probe run.
func (t *seriesTable) place(sl tableSlot) {
	i := tableHome(sl.frag, len(t.slots))
	for t.slots[i].local != 0 {
		i = t.next(i)
	}
	t.slots[i] = sl
}

// remove drops the series local with tag hash hash, if present.
func (t *seriesTable) remove(hash uint64, local uint32) {
	if len(t.slots) == 0 {
		return
	}
	frag := hashFrag(hash)
	i := tableHome(frag, len(t.slots))
	for t.slots[i] != (tableSlot{frag: frag, local: local + 1}) {
		if t.slots[i].local == 0 {
			return
		}
		i = t.next(i)
	}
	t.n--
	// Backward-shift deletion: move later entries of the probe run into
	// the hole when their home is not after it, so that no probe stops
	// early at the hole.
	for {
		t.slots[i] = tableSlot{}
		j := i
		for {
			j = t.next(j)
			if t.slots[j].local == 0 {
				return
			}
			h := tableHome(t.slots[j].frag, len(t.slots))
			// Entry j may stay if its home lies cyclically in (i, j].
			if (i < j && i < h && h <= j) || (i > j && (h > i || h <= j)) {
				continue
			}
			t.slots[i] = t.slots[j]
			i = j
			break
		}
	}
}

// grow makes the table half as large again and places every entry anew.
func (t *seriesTable) grow() {
	old := t.slots
	t.slots = make([]tableSlot, max(tableMin, len(old)+len(old)/2))
	for _, sl := range old {
		if sl.local != 0 {
			t.place(sl)
		}
	}
}

func (t *seriesTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// bytes returns the memory the table holds.
func (t *seriesTable) bytes() int { return cap(t.slots) * 8 }

// tagSlab holds the canonical tag encodings of a shard's series, each
// prefixed by its length as a uvarint, in chunks of tagChunk bytes that
// are only ever appended to; a series keeps a 32-bit ref (the chunk's
// index and the offset in it) instead of a slice (24 bytes) to its own
// allocation (rounded up to a size class: 112 or 128 bytes for a typical
// hundred-byte set). A set larger than a chunk gets a chunk of its own.
//
// The bytes a ref resolves to never change: a reader may keep them (a
// View's Tags) after the shard's lock is released, and they stay alive as
// long as it does. Deleting series leaves their bytes dead in the chunks;
// once half of the slab is dead, compact copies the live sets into new
// chunks and the old ones go to the collector when the last reader
// drops them.
//
// A tagSlab is guarded by its shard's lock.
type tagSlab struct {
	chunks [][]byte
	used   int // bytes in chunks, dead ones included
	dead   int // bytes of deleted series' sets
}

const (
	tagChunkBits = 14
	tagChunk     = 1 << tagChunkBits
	// tagCompactMin is the dead bytes below which a slab is not compacted.
	tagCompactMin = tagChunk
)

// add appends enc and returns its ref. Refs address 2^18 chunks: 4 GiB
// of tags in one shard, which the cardinality limits keep far away.
func (s *tagSlab) add(enc []byte) uint32 {
	n := uvarintLen(uint64(len(enc))) + len(enc)
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last])+n > cap(s.chunks[last]) {
		s.chunks = append(s.chunks, make([]byte, 0, max(tagChunk, n)))
		last++
	}
	c := s.chunks[last]
	off := len(c)
	c = binary.AppendUvarint(c, uint64(len(enc)))
	s.chunks[last] = append(c, enc...)
	s.used += n
	return uint32(last)<<tagChunkBits | uint32(off)
}

// get returns the encoding of ref. The result's capacity ends with it:
// appending to it never writes into the slab.
func (s *tagSlab) get(ref uint32) []byte {
	c := s.chunks[ref>>tagChunkBits][ref&(tagChunk-1):]
	l, n := binary.Uvarint(c)
	end := n + int(l)
	return c[n:end:end]
}

// release records that the set of ref is dead.
func (s *tagSlab) release(ref uint32) {
	n := len(s.get(ref))
	s.dead += uvarintLen(uint64(n)) + n
}

// shouldCompact reports whether half of the slab is dead bytes, and at
// least min bytes.
func (s *tagSlab) shouldCompact(min int) bool {
	return s.dead >= min && s.dead*2 >= s.used
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
