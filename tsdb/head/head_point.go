package head

import (
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
)

// Point is one series' value at one step, as AppendPoints reads it.
type Point struct {
	ID     uint32
	Tags   []byte // canonical encoding; immutable, may be kept
	DSType tsdb.DSType
	// V is the value, chunk.Missing when the series has none.
	V float64
	// Read reports that the series has a block in the step's period (so
	// the value was read, even if Missing).
	Read bool
}

// AppendPoints appends to dst the value at global step index k (period
// k/BlockSteps) of every series of ids (sorted) that still exists, in id
// order. It is the live evaluator's point read: the step that just closed
// sits in the open block, where chunk.Open.At reads it without copying or
// decoding the block. It reports false, with dst as it came, when a series
// holds k in a sealed block in memory (the caller reads with Scan then);
// the caller also makes sure k is not older than MinPeriod.
func (h *Head) AppendPoints(dst []Point, ids []uint32, k int64) ([]Point, bool) {
	bs := int64(h.opts.BlockSteps)
	p := floorDiv(k, bs)
	slot := int(k - p*bs)
	base := len(dst)
	// The points' tags, rebuilt from the tag ids (head_tags.go) into memory
	// of their own: they may be kept.
	tagBuf := make([]byte, 0, tagsGuess*len(ids))
	for i := 0; i < len(ids); {
		// One lock per run of ids of one shard (ids are sorted, and the
		// shard is their top bits).
		shardOf, _ := splitID(ids[i])
		s := &h.shards[shardOf]
		s.mu.Lock()
		for ; i < len(ids); i++ {
			k, local := splitID(ids[i])
			if k != shardOf {
				break
			}
			ms := s.seriesLocked(local)
			if ms == nil {
				continue
			}
			start := len(tagBuf)
			tagBuf = s.appendTagsLocked(tagBuf, ms)
			pt := Point{ID: ms.id, Tags: tagBuf[start:len(tagBuf):len(tagBuf)], DSType: ms.dstype, V: chunk.Missing}
			switch {
			case ms.hasOpen && ms.period == p:
				pt.V, pt.Read = ms.open.At(slot), true
			case hasSealed(ms, p):
				// Slow path: the period was sealed (it just ended).
				s.mu.Unlock()
				return dst[:base], false
			}
			dst = append(dst, pt)
		}
		s.mu.Unlock()
	}
	return dst, true
}

func hasSealed(ms *memSeries, p int64) bool {
	// A dozen blocks at most: a scan costs less than trusting their order.
	for _, b := range ms.sealed {
		if b.period() == p {
			return true
		}
	}
	return false
}
