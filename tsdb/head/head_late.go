package head

import (
	"bytes"
	"slices"

	"github.com/sextant-dev/sextant/tsdb/chunk"
)

// Late blocks.
//
// A write into a period older than a series' newest block (its open one,
// or its newest sealed one) is a late write: senders of one series that
// run at different paces around a block boundary make them, as do retries
// and a backfill split across senders. Merging each into the period's
// sealed block costs a decode and a re-encode of the whole block per
// datapoint, which at a boundary under concurrent senders is most of the
// ingest's CPU (BenchmarkLateBoundary: 0.69 re-encodes per datapoint).
//
// Instead the period becomes the series' late block: an open block
// (chunk.Open) of that older period, kept in its shard's late map beside
// the series' open block, so that the late write and those that follow
// cost an open-block write each. The first late write of a period loads
// its sealed block once (a decode, no encode); a series that got late
// writes is marked late-prone, and at its next block boundary its ended
// block is not sealed at all but kept open as the late block (no decode,
// no encode: the late writes of that boundary re-encode nothing). The late
// block is sealed by SealIdle once its period ended SealDelay ago and it
// got no write for SealDelay of wall time, like an open block, by
// DropBefore, or when another period of the series needs the late block.
// A late-prone series whose deferred block got no late write before its
// seal is prone no more.
//
// Memory. Only series that got a late write pay: the late map's entry and
// the block, for the seal delay after the period. The series itself holds
// flag bits in padding (memSeries.late), and the period's entry in
// ms.sealed, marked late with no data, keeps the block lists (WithData,
// AppendPoints, the scan's order) right without a lookup in the map.
//
// Reads. Scan copies a late block under the shard lock as it copies the
// open one, in the place of the period's sealed block.
//
// Durability. Late writes are logged like any other and replay goes
// through the same paths, so it rebuilds the same values (whether a block
// is deferred depends on the clock and the series' past, which only
// changes where the values sit, never what they are). A checkpoint writes
// a late block in its series' state snapshot, as it does the open block
// (FORMAT.md), and leaves the period's stale block on disk alone until the
// late block is sealed; restore keeps the snapshot's late block over it.

// lateBlock is the open block of a period older than its series' newest.
//
// Senders at different paces write its slots out of order, and an open
// block rewrites its whole stream for a write before its newest slot
// (chunk.Open), which would be a decode and re-encode per datapoint again.
// So only writes at or after the newest slot written (last) go to the
// block; earlier ones wait in pend, in order, and are applied all at once
// (flush) when a read, a snapshot or the seal needs the block, or when
// maxLatePending of them wait.
type lateBlock struct {
	open   chunk.Open
	pend   []lateWrite
	last   int // the newest slot written, -1 for none
	period int64
	// wrote is when it last got a write, as memSeries.wrote counts.
	wrote uint32
	// reloaded: it was loaded from a sealed block, so sealing it encodes
	// the period again (counted in sextant.tsdb.blocksReencoded).
	reloaded bool
	// written: it got a late write (a deferred block may get none).
	written bool
}

// lateWrite is a write waiting in lateBlock.pend.
type lateWrite struct {
	v    float64
	slot uint8
	op   chunk.Op
}

// maxLatePending bounds lateBlock.pend (16 bytes an entry).
const maxLatePending = 32

// newLateBlock returns the late block of period p holding o.
func newLateBlock(p int64, o chunk.Open, wrote uint32) *lateBlock {
	lb := &lateBlock{open: o, period: p, wrote: wrote, last: -1}
	// The newest slot is the tail, or the newest committed one: slots after
	// it read as Missing at no cost, so the search is short.
	for slot := chunk.MaxOpenSlots - 1; slot >= 0; slot-- {
		if !chunk.IsMissing(lb.open.At(slot)) {
			lb.last = slot
			break
		}
	}
	return lb
}

// write combines v into slot.
func (lb *lateBlock) write(slot int, v float64, op chunk.Op) {
	if slot >= lb.last {
		// Fast path: the newest slot, or a later one.
		lb.open.Write(slot, v, op)
		lb.last = slot
		return
	}
	// Slow path: before the newest slot; applied with the others later.
	if lb.pend == nil {
		lb.pend = make([]lateWrite, 0, 8) // fewer growths than from 1
	}
	lb.pend = append(lb.pend, lateWrite{v: v, slot: uint8(slot), op: op})
	if len(lb.pend) >= maxLatePending {
		lb.flush()
	}
}

// flush applies the pending writes: one decode and re-encode of the
// block's stream for all of them.
func (lb *lateBlock) flush() {
	if len(lb.pend) == 0 {
		return
	}
	var buf [chunk.MaxOpenSlots]float64
	vals := lb.open.Values(buf[:0], chunk.MaxOpenSlots)
	for _, w := range lb.pend {
		vals[w.slot] = w.op.Apply(vals[w.slot], w.v)
	}
	lb.pend = lb.pend[:0]
	lb.open.Reset()
	for slot, v := range vals {
		if !chunk.IsMissing(v) {
			lb.open.Write(slot, v, chunk.OpSet)
		}
	}
}

// memSeries.late bits.
const (
	lateOpen  = 1 << iota // the shard's late map holds a block of the series
	lateProne             // the series got late writes: defer its next seal
	reopened              // the open block was loaded from a sealed block
)

// writeLateLocked combines v into the late block lb of w's series.
func (h *Head) writeLateLocked(w seriesWrite, lb *lateBlock, slot int, v float64, op chunk.Op) {
	lb.write(slot, v, op)
	lb.wrote, lb.written = w.sc.wrote, true
	w.sc.late++ // counted once per call: a counter per datapoint costs more than the write
}

// closeOpenLocked ends the open block of w's series, as a write of a later
// period came: it seals it, or keeps it open as the series' late block
// when the series is late-prone and the period may still get writes.
func (h *Head) closeOpenLocked(w seriesWrite) {
	ms, s := w.ms, w.s
	if ms.late&lateProne == 0 || (ms.period+1)*h.blockDur <= w.sc.lateFloor || ms.open.Empty() {
		h.sealLocked(s, ms)
		return
	}
	if ms.late&lateOpen != 0 {
		h.sealLateLocked(s, ms, w.local)
	}
	// The block moves, buffer and all; the series' next block starts a
	// buffer of its own.
	lb := newLateBlock(ms.period, ms.open, w.sc.wrote)
	lb.reloaded = ms.late&reopened != 0
	ms.open = chunk.Open{}
	ms.hasOpen = false
	ms.late = ms.late&^reopened | lateOpen
	s.mu.late[w.local] = lb
	ms.putSealed(sealedBlock{per: int32(lb.period), late: true})
}

// openLateLocked makes period p of w's series, older than its newest block
// and within the memory window, its late block: the period's sealed block
// loaded, or an empty block when the period has none. A late block of
// another period is sealed first. It reports false, leaving the series as
// it was but for that seal, when the sealed block does not load.
func (h *Head) openLateLocked(w seriesWrite, p int64) bool {
	ms, s := w.ms, w.s
	if ms.late&lateOpen != 0 {
		h.sealLateLocked(s, ms, w.local)
	}
	var o chunk.Open
	i, found := ms.findSealed(p)
	if found {
		if err := o.Load(ms.sealed[i].data); err != nil {
			// Memory blocks are ours and always load.
			h.opts.Logger.Error("late write: sealed block does not load", "series", ms.id, "block", p, "err", err)
			return false
		}
	}
	lb := newLateBlock(p, o, w.sc.wrote)
	lb.reloaded = found
	ms.late |= lateOpen | lateProne
	s.mu.late[w.local] = lb
	ms.putSealed(sealedBlock{per: int32(p), late: true})
	return true
}

// sealLateLocked encodes the late block of ms (local index local of shard
// s) into the period's sealed block and drops it.
func (h *Head) sealLateLocked(s *shard, ms *memSeries, local uint32) {
	lb := s.mu.late[local]
	delete(s.mu.late, local)
	ms.late &^= lateOpen
	if !lb.written {
		// Deferred for nothing: the series' senders caught up.
		ms.late &^= lateProne
	}
	i, found := ms.findSealed(lb.period)
	if !found || !ms.sealed[i].late {
		panic("BUG: late block without its sealed entry")
	}
	lb.flush()
	if lb.open.Empty() {
		ms.sealed = slices.Delete(ms.sealed, i, i+1)
		if len(ms.sealed) == 0 {
			ms.sealed = nil
		}
	} else {
		s.mu.buf = s.mu.enc.Seal(s.mu.buf[:0], &lb.open, h.opts.BlockSteps)
		ms.sealed[i] = sealedBlock{per: int32(lb.period), data: bytes.Clone(s.mu.buf)}
		h.m.sealed.Increment()
		if lb.reloaded {
			h.m.reencoded.Increment()
		}
	}
	s.markDirtyLocked(ms, local)
}

// sealLateShardLocked seals the late blocks of shard s that keep returns
// true for, and returns how many it sealed.
func (h *Head) sealLateShardLocked(s *shard, keep func(lb *lateBlock) bool) int {
	n := 0
	for local, lb := range s.mu.late {
		if keep(lb) {
			continue
		}
		ms := s.seriesLocked(local)
		if ms == nil {
			delete(s.mu.late, local) // cannot happen: a series with blocks is not deleted
			continue
		}
		h.sealLateLocked(s, ms, local)
		n++
	}
	return n
}
