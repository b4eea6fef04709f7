package head

import (
	"github.com/RoaringBitmap/roaring/v2"

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
// block (immutable, may be kept) or the decoded values of the open block
// (valid only during the Scan callback).
type BlockView struct {
	Period int64
	Data   []byte
	Values []float64
}

// scanBatch bounds how many series a Scan collects under one shard lock:
// enough to amortize locking, few enough not to stall appends.
const scanBatch = 128

// Scan calls fn for every series in ids that still exists, in id order,
// with its blocks in periods [minP, maxP]. fn runs without any lock held
// and may stop the scan by returning false.
func (h *Head) Scan(ids *roaring.Bitmap, minP, maxP int64, fn func(v *View) bool) {
	views := make([]View, scanBatch)
	vals := make([]float64, 0, scanBatch*h.opts.BlockSteps)
	it := ids.Iterator()
	var pending []uint32
	for it.HasNext() || len(pending) > 0 {
		// Collect a run of ids of one shard.
		pending = pending[:0]
		shardOf := -1
		for it.HasNext() && len(pending) < scanBatch {
			id := it.PeekNext()
			k, _ := splitID(id)
			if shardOf >= 0 && k != shardOf {
				break
			}
			shardOf = k
			pending = append(pending, it.Next())
		}
		if len(pending) == 0 {
			return
		}
		s := &h.shards[shardOf]
		n := 0
		vals = vals[:0]
		s.mu.Lock()
		for _, id := range pending {
			_, local := splitID(id)
			ms := s.seriesLocked(local)
			if ms == nil {
				continue
			}
			v := &views[n]
			n++
			v.ID, v.Tags, v.DSType = ms.id, ms.tags, ms.dstype
			v.Blocks = v.Blocks[:0]
			for _, b := range ms.sealed {
				if b.period >= minP && b.period <= maxP {
					v.Blocks = append(v.Blocks, BlockView{Period: b.period, Data: b.data})
				}
			}
			if ms.hasOpen && ms.period >= minP && ms.period <= maxP {
				start := len(vals)
				vals = ms.open.Values(vals, h.opts.BlockSteps)
				v.Blocks = append(v.Blocks, BlockView{Period: ms.period, Values: vals[start:len(vals):len(vals)]})
			}
		}
		s.mu.Unlock()
		for i := range views[:n] {
			if !fn(&views[i]) {
				return
			}
		}
		pending = pending[:0]
	}
}

// SeriesTags returns the canonical tag encoding of series id.
func (h *Head) SeriesTags(id uint32) ([]byte, bool) {
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	if ms := s.seriesLocked(local); ms != nil {
		return ms.tags, true
	}
	return nil, false
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
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		for _, ms := range s.mu.series {
			if ms == nil {
				continue
			}
			st.Series++
			st.TagBytes += len(ms.tags)
			st.OpenBytes += ms.open.Bytes()
			for _, b := range ms.sealed {
				st.SealedBytes += len(b.data)
				st.SealedSlots += h.opts.BlockSteps
			}
		}
		s.mu.Unlock()
	}
	st.IndexBytes = int(h.index.SizeBytes())
	return st
}
