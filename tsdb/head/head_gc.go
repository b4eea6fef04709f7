package head

import (
	"slices"

	"github.com/sextant-dev/sextant/tsdb/chunk"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// SealIdle seals the open blocks whose period ended more than SealDelay
// before now, of series that got no write in the last SealDelay of wall
// time: series that stopped reporting, or the last block of a backfill
// once it is done. Late blocks (head_late.go) are sealed on the same
// terms, their own last write counting. It returns how many it sealed.
//
// The second condition is what keeps a backfill cheap: its periods all
// ended long ago, and sealing a block its senders are still filling would
// turn each of their next datapoints into a late write (a decode and
// re-encode of the whole block). Before it, loading the standard workload
// (6 h old) over HTTP sent 70 % of its datapoints down that path.
func (h *Head) SealIdle(now int64) int {
	sealed := 0
	wall := h.wallSec(now)
	idle := uint32(max(h.opts.SealDelay/1000, 1))
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		if len(s.mu.late) > 0 {
			sealed += h.sealLateShardLocked(s, func(lb *lateBlock) bool {
				return wall < lb.wrote+idle || (lb.period+1)*h.blockDur+h.opts.SealDelay > now
			})
		}
		for local, ms := range s.mu.series {
			if ms == nil || !ms.hasOpen {
				continue
			}
			if wall < ms.wrote+idle {
				// Written recently: its senders are not done with it. (Whole
				// seconds: a series may count as idle up to a second early.)
				continue
			}
			if end := (ms.period + 1) * h.blockDur; end+h.opts.SealDelay <= now {
				h.sealLocked(s, ms)
				// The series went quiet: give back its stream buffer, which
				// a series that keeps writing reuses for its next block.
				ms.open = chunk.Open{}
				s.markDirtyLocked(ms, uint32(local))
				sealed++
			}
		}
		s.mu.Unlock()
	}
	return sealed
}

// DropBefore forgets the sealed blocks of periods before p. With
// requirePersisted, blocks not yet written to disk are kept until they are.
// Open and late blocks of such periods are sealed first. It returns the number of
// blocks dropped and sets MinPeriod to p.
func (h *Head) DropBefore(p int64, requirePersisted bool) int {
	h.minPeriod.Store(p)
	dropped := 0
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		if len(s.mu.late) > 0 {
			h.sealLateShardLocked(s, func(lb *lateBlock) bool { return lb.period >= p })
		}
		for local, ms := range s.mu.series {
			if ms == nil {
				continue
			}
			if ms.hasOpen && ms.period < p {
				h.sealLocked(s, ms)
				s.markDirtyLocked(ms, uint32(local))
			}
			n := len(ms.sealed)
			ms.sealed = slices.DeleteFunc(ms.sealed, func(b sealedBlock) bool {
				return b.period() < p && (b.persisted || !requirePersisted)
			})
			dropped += n - len(ms.sealed)
			if len(ms.sealed) == 0 {
				ms.sealed = nil // release the backing array of idle series
			}
		}
		s.mu.Unlock()
	}
	return dropped
}

// DeleteStale removes the series whose newest data is older than t and that
// hold nothing in memory, and returns their ids so the caller can delete
// them on disk too.
func (h *Head) DeleteStale(t int64) []uint32 {
	var ids []uint32
	var enc []byte
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		for local, ms := range s.mu.series {
			if ms == nil || ms.hasOpen || len(ms.sealed) > 0 || ms.lastT >= t {
				continue
			}
			enc = s.appendTagsLocked(enc[:0], ms)
			ts, err := tags.Decode(enc)
			if err != nil {
				continue
			}
			s.mu.byHash.remove(tagHash(enc), uint32(local))
			h.pairs.release(s.mu.tags.get(ms.tags))
			s.mu.tags.release(ms.tags)
			s.mu.series[local] = nil
			h.index.Remove(ms.id, ts)
			h.release(ts.Name())
			ids = append(ids, ms.id)
			// Its chunk of series may live on (allocSeriesLocked): let go
			// of what the series still points to.
			*ms = memSeries{}
		}
		if s.mu.tags.shouldCompact(h.tagCompactMin) {
			s.compactTagsLocked()
		}
		s.mu.Unlock()
	}
	return ids
}

// compactTagsLocked copies the tag ids of the shard's series into a new slab,
// leaving the dead bytes of deleted series behind. Readers holding tags of
// the old slab keep its chunks alive until they drop them.
func (s *shard) compactTagsLocked() {
	var fresh tagSlab
	for _, ms := range s.mu.series {
		if ms != nil {
			ms.tags = fresh.add(s.mu.tags.get(ms.tags))
		}
	}
	s.mu.tags = fresh
}
