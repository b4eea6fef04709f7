package head

import (
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sextant-dev/sextant/tsdb/chunk"

	"github.com/sextant-dev/sextant/tsdb"
)

// View is a series as a reader sees it: its identity and its blocks in
// memory within the scanned range, oldest first.
type View struct {
	ID     uint32
	Tags   []byte // canonical encoding; immutable, may be kept
	DSType tsdb.DSType
	Blocks []BlockView
}

// BlockView is one block of a View: either the encoded bytes of a sealed
// block (immutable, may be kept) or a copy of the open block (valid only
// during the Scan callback; decode it with Values).
type BlockView struct {
	Period int64
	Data   []byte
	Open   *chunk.Open
}

// scanBatch bounds how many series a Scan collects under one shard lock:
// enough to amortize locking, few enough not to stall appends.
const scanBatch = 128

// scanScratch is the reusable space of one Scan: one batch's buffers, or
// two alternating ones for ScanAhead.
type scanScratch struct {
	bufs    [2]scanBuf
	pending []uint32
	touched byte // see touchBlocks
}

// scanBuf holds the views of one batch and what they point into.
type scanBuf struct {
	views   []View
	opens   []chunk.Open
	streams []byte
}

// Scan calls fn for every series in ids that still exists, in id order,
// with its blocks in periods [minP, maxP]. fn runs without any lock held
// and may stop the scan by returning false.
func (h *Head) Scan(ids *roaring.Bitmap, minP, maxP int64, fn func(v *View) bool) {
	h.ScanBatches(ids, minP, maxP, func(vs []View) bool {
		for i := range vs {
			if !fn(&vs[i]) {
				return false
			}
		}
		return true
	})
}

// ScanBatches is Scan a batch of series at a time: fn gets the views of up
// to scanBatch series, in id order, all valid until fn returns (so that a
// reader may decode them on several goroutines). fn runs without any lock
// held and may stop the scan by returning false.
func (h *Head) ScanBatches(ids *roaring.Bitmap, minP, maxP int64, fn func(vs []View) bool) {
	h.scan(ids, minP, maxP, 1, fn, nil)
}

// ScanAhead is ScanBatches for a reader that works on a batch while the
// next one is collected: fn may hand vs to other goroutines and return at
// once; vs then stays valid until fn's next call returns, and the last
// batch's until done returns. ScanAhead calls done once, last, whether fn
// stopped the scan or not: the reader finishes its work there. Collecting
// a batch (the shard locks, the copies of open blocks, the loads of the
// blocks' memory) is then off the reader's path: on the grouped sum of a
// freshly loaded store it was a fifth of the fetch, on one goroutine while
// the other waited for the batch.
func (h *Head) ScanAhead(ids *roaring.Bitmap, minP, maxP int64, fn func(vs []View) bool, done func()) {
	h.scan(ids, minP, maxP, 2, fn, done)
}

// scan is ScanBatches with nbuf (1 or 2) buffers used in turn, and done,
// when not nil, called before it returns.
func (h *Head) scan(ids *roaring.Bitmap, minP, maxP int64, nbuf int, fn func(vs []View) bool, done func()) {
	sc, _ := h.scanPool.Get().(*scanScratch)
	if sc == nil {
		sc = &scanScratch{}
	}
	defer h.scanPool.Put(sc)
	if done != nil {
		defer done()
	}
	n := min(scanBatch, int(ids.GetCardinality()))
	it := ids.Iterator()
	for k := 0; it.HasNext(); k++ {
		b := &sc.bufs[k%nbuf]
		if cap(b.views) < n {
			b.views = make([]View, n)
			b.opens = make([]chunk.Open, 2*n) // open blocks, then late ones
		}
		views, opens := b.views[:n], b.opens[:2*n]
		cnt := 0
		streams := b.streams[:0]
		// Fill the batch from runs of ids of one shard each, one shard lock
		// at a time, so that a batch is scanBatch series even when the ids
		// are spread over many shards (a few dozen each for 2 000 series).
		for it.HasNext() && cnt < n {
			pending := sc.pending[:0]
			shardOf := -1
			for it.HasNext() && cnt+len(pending) < n {
				k, _ := splitID(it.PeekNext())
				if shardOf >= 0 && k != shardOf {
					break
				}
				shardOf = k
				pending = append(pending, it.Next())
			}
			sc.pending = pending
			streams = h.shards[shardOf].collect(pending, minP, maxP, views, opens, &cnt, streams, &sc.touched)
		}
		b.streams = streams
		sc.touched += touchBlocks(views[:cnt])
		if cnt > 0 && !fn(views[:cnt]) {
			return
		}
	}
}

// collect adds to views[*cnt:] the series of pending (ids of shard s that
// still exist) with their blocks in periods [minP, maxP], under s's lock;
// open blocks are copied into opens (late blocks into its second half),
// their streams appended to streams, which it returns.
func (s *shard) collect(pending []uint32, minP, maxP int64, views []View, opens []chunk.Open,
	cnt *int, streams []byte, touched *byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Touch the series first: the loads are independent, so their cache
	// misses overlap instead of stalling the loop below one by one.
	for _, id := range pending {
		_, local := splitID(id)
		if ms := s.seriesLocked(local); ms != nil {
			*touched += byte(ms.id) + byte(len(ms.sealed))
		}
	}
	// The views' tags, rebuilt from the tag ids (head_tags.go) into memory
	// of their own: they may be kept.
	tagBuf := make([]byte, 0, tagsGuess*len(pending))
	for _, id := range pending {
		_, local := splitID(id)
		ms := s.seriesLocked(local)
		if ms == nil {
			continue
		}
		i := *cnt
		v := &views[i]
		start := len(tagBuf)
		tagBuf = s.appendTagsLocked(tagBuf, ms)
		v.ID, v.Tags, v.DSType = ms.id, tagBuf[start:len(tagBuf):len(tagBuf)], ms.dstype
		v.Blocks = v.Blocks[:0]
		for _, b := range ms.sealed {
			if b.period() >= minP && b.period() <= maxP {
				if b.late {
					// Slow path: the period is a late block (head_late.go).
					lo, lb := &opens[len(views)+i], s.mu.late[local]
					lb.flush()
					streams = lb.open.CopyTo(lo, streams)
					v.Blocks = append(v.Blocks, BlockView{Period: b.period(), Open: lo})
					continue
				}
				v.Blocks = append(v.Blocks, BlockView{Period: b.period(), Data: b.data})
			}
		}
		if ms.hasOpen && ms.period >= minP && ms.period <= maxP {
			streams = ms.open.CopyTo(&opens[i], streams)
			v.Blocks = append(v.Blocks, BlockView{Period: ms.period, Open: &opens[i]})
		}
		*cnt = i + 1
	}
	return streams
}

// touchBlocks reads a byte of every cache line of the blocks of views
// before they are decoded. The loads are independent, so the CPU overlaps
// their cache misses; when decoding then visits the blocks one by one, they
// are in cache. Blocks of a large scan are scattered over the heap, and
// otherwise each miss would stall its decoder in turn. The returned sum
// only keeps the loads from being optimized away.
func touchBlocks(views []View) byte {
	var sum byte
	for i := range views {
		for _, b := range views[i].Blocks {
			for j := 0; j < len(b.Data); j += 64 {
				sum += b.Data[j]
			}
		}
	}
	return sum
}

// SeriesTags returns the canonical tag encoding of series id, in memory of
// its own.
func (h *Head) SeriesTags(id uint32) ([]byte, bool) {
	enc, ok := h.AppendSeriesTags(nil, id)
	return enc[:len(enc):len(enc)], ok
}

// AppendSeriesTags appends the canonical tag encoding of series id to dst
// and returns the extended dst, or dst and false when there is no such
// series. Readers of many series rebuild their tags (head_tags.go) into
// one buffer this way rather than a slice each.
func (h *Head) AppendSeriesTags(dst []byte, id uint32) ([]byte, bool) {
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	if ms := s.seriesLocked(local); ms != nil {
		return s.appendTagsLocked(dst, ms), true
	}
	return dst, false
}

// MemoryStats describes the memory the head holds, for benchmarks and the
// store's own metrics.
type MemoryStats struct {
	Series      int
	SealedBytes int // encoded sealed blocks
	SealedSlots int // steps covered by them
	OpenBytes   int // open blocks' streams (capacity)
	TagBytes    int
	IndexBytes  int
}

// MemoryStats walks every series; it is meant for tests and occasional
// reporting, not hot paths.
func (h *Head) MemoryStats() MemoryStats {
	var st MemoryStats
	var enc []byte
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		for local, ms := range s.mu.series {
			if ms == nil {
				continue
			}
			st.Series++
			enc = s.appendTagsLocked(enc[:0], ms)
			st.TagBytes += len(enc)
			st.OpenBytes += ms.open.Bytes()
			if ms.late&lateOpen != 0 {
				st.OpenBytes += s.mu.late[uint32(local)].open.Bytes()
			}
			for _, b := range ms.sealed {
				if !b.late { // a late block is open (counted above)
					st.SealedBytes += len(b.data)
					st.SealedSlots += h.opts.BlockSteps
				}
			}
		}
		s.mu.Unlock()
	}
	st.IndexBytes = int(h.index.SizeBytes())
	return st
}

// WithData returns the series of ids (nil: every series) that may have
// data in a window: their newest data is at or after since, and they have
// a block in memory, sealed or open, in the periods [minP, maxP], or they
// are in onDisk (the series with a block on disk in those periods; nil:
// none). It reads the series' block lists, never the blocks: listing the
// series with data in a window costs a pass over the series, not a fetch.
func (h *Head) WithData(ids *roaring.Bitmap, minP, maxP, since int64, onDisk *roaring.Bitmap) *roaring.Bitmap {
	out := roaring.New()
	var found []uint32
	has := func(ms *memSeries) bool {
		return ms != nil && ms.lastT >= since && (ms.hasBlockIn(minP, maxP) || onDisk != nil && onDisk.Contains(ms.id))
	}
	if ids != nil && ids.GetCardinality() < uint64(h.NumSeries()/8) {
		// Fast path: a few series of many, looked up one by one.
		it := ids.Iterator()
		for it.HasNext() {
			id := it.Next()
			k, local := splitID(id)
			s := &h.shards[k]
			s.mu.Lock()
			ok := has(s.seriesLocked(local))
			s.mu.Unlock()
			if ok {
				found = append(found, id)
			}
		}
		out.AddMany(found)
		return out
	}
	for k := range h.shards {
		s := &h.shards[k]
		found = found[:0]
		s.mu.Lock()
		for _, ms := range s.mu.series {
			if has(ms) && (ids == nil || ids.Contains(ms.id)) {
				found = append(found, ms.id)
			}
		}
		s.mu.Unlock()
		out.AddMany(found)
	}
	return out
}

// hasBlockIn reports whether ms has a block in memory in [minP, maxP].
// Called with the shard's lock held.
func (ms *memSeries) hasBlockIn(minP, maxP int64) bool {
	if ms.hasOpen && ms.period >= minP && ms.period <= maxP {
		return true
	}
	for _, b := range ms.sealed {
		if p := b.period(); p >= minP && p <= maxP {
			return true
		}
	}
	return false
}
