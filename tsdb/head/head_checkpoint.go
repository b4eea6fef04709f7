package head

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Capture is what a checkpoint persists of one shard: everything that
// changed since the previous capture, consistent with Stamp.
type Capture struct {
	Shard int
	// Stamp is the LSN up to which every WAL record of this shard is
	// reflected in the capture; replay skips them.
	Stamp   uint64
	Created []SeriesDef
	States  []SeriesState
	Blocks  []Block
	// Deleted lists series removed since the previous capture.
	Deleted []uint32

	tags []byte // what Created's Tags are slices of
}

// SeriesDef is a new series.
type SeriesDef struct {
	ID   uint32
	Tags []byte // canonical encoding
}

// SeriesState is the mutable state of a series: normalization and the open
// block, as a snapshot (FORMAT.md).
type SeriesState struct {
	ID       uint32
	Snapshot []byte
}

// Block is a sealed block to persist.
type Block struct {
	ID     uint32
	Period int64
	Data   []byte // immutable
}

// Reset empties c for reuse.
func (c *Capture) Reset() {
	c.Created, c.States, c.Blocks, c.Deleted = c.Created[:0], c.States[:0], c.Blocks[:0], c.Deleted[:0]
	c.tags = c.tags[:0]
}

// CaptureShard fills c with the changes of shard k since its last capture
// and marks them captured. lastLSN is called under the shard's lock: every
// record the shard logged has an LSN up to it, and every later one will
// have a higher LSN, because the shard logs only while locked.
//
// The shard stays locked for the capture, which copies only the open blocks
// of changed series, so appends to it stall for well under a millisecond.
func (h *Head) CaptureShard(k int, lastLSN func() uint64, c *Capture) {
	s := &h.shards[k]
	c.Reset()
	c.Shard = k
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Stamp = lastLSN()
	for _, local := range s.mu.created {
		if ms := s.seriesLocked(local); ms != nil {
			start := len(c.tags)
			c.tags = s.appendTagsLocked(c.tags, ms)
			c.Created = append(c.Created, SeriesDef{ID: ms.id, Tags: c.tags[start:len(c.tags):len(c.tags)]})
		}
	}
	s.mu.created = s.mu.created[:0]
	for _, local := range s.mu.dirty {
		ms := s.seriesLocked(local)
		if ms == nil {
			continue
		}
		ms.dirty = false
		var lb *lateBlock
		if ms.late&lateOpen != 0 {
			lb = s.mu.late[local]
		}
		c.States = append(c.States, SeriesState{ID: ms.id, Snapshot: ms.appendSnapshot(nil, lb)})
		for i := range ms.sealed {
			// A late block goes in the snapshot; the period's block on
			// disk, if any, stays as it is until the late block is sealed.
			if b := &ms.sealed[i]; !b.persisted && !b.late {
				b.persisted = true
				c.Blocks = append(c.Blocks, Block{ID: ms.id, Period: b.period(), Data: b.data})
			}
		}
	}
	s.mu.dirty = s.mu.dirty[:0]
}

// MarkAllDirty makes the next captures persist every series and sealed
// block in memory again, after a checkpoint failed to write what it
// captured.
func (h *Head) MarkAllDirty() {
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		for local, ms := range s.mu.series {
			if ms == nil {
				continue
			}
			s.mu.created = append(s.mu.created, uint32(local))
			for i := range ms.sealed {
				ms.sealed[i].persisted = false
			}
			s.markDirtyLocked(ms, uint32(local))
		}
		s.mu.Unlock()
	}
}

const snapshotVersion = 1

// Snapshot flags (FORMAT.md).
const (
	snapRate       = 1
	snapCounter    = 2
	snapOpen       = 4
	snapLate       = 8
	snapLateReload = 16
)

// appendSnapshot encodes the mutable state of ms, with its late block lb
// (nil when it has none).
func (ms *memSeries) appendSnapshot(dst []byte, lb *lateBlock) []byte {
	var flags byte
	if ms.norm.HasT {
		flags |= snapRate
	}
	if ms.norm.HasPrev {
		flags |= snapCounter
	}
	if ms.hasOpen {
		flags |= snapOpen
	}
	if lb != nil {
		flags |= snapLate
		if lb.reloaded {
			flags |= snapLateReload
		}
	}
	dst = append(dst, snapshotVersion, flags)
	dst = binary.AppendVarint(dst, ms.norm.T)
	// The format keeps a rate's pending value and a counter's previous
	// sample apart; norm.State has them in one field.
	pending, prev := ms.norm.V, 0.0
	if ms.norm.HasPrev {
		pending, prev = 0, ms.norm.V
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(pending))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(prev))
	dst = binary.AppendVarint(dst, ms.lastT)
	if ms.hasOpen {
		dst = binary.AppendVarint(dst, ms.period)
		dst = ms.open.AppendTo(dst)
	}
	if lb != nil {
		lb.flush()
		dst = binary.AppendVarint(dst, lb.period)
		dst = lb.open.AppendTo(dst)
	}
	return dst
}

var errSnapshot = fmt.Errorf("%w: bad series snapshot", tsdb.ErrCorrupt)

// restoreSnapshot restores the state of ms from a snapshot and returns the
// late block it holds, or nil.
func (ms *memSeries) restoreSnapshot(src []byte) (*lateBlock, error) {
	if len(src) < 2 || src[0] != snapshotVersion {
		return nil, errSnapshot
	}
	flags := src[1]
	src = src[2:]
	t, n := binary.Varint(src)
	if n <= 0 || len(src) < n+16 {
		return nil, errSnapshot
	}
	src = src[n:]
	ms.norm.T, ms.norm.HasT, ms.norm.HasPrev = t, flags&snapRate != 0, flags&snapCounter != 0
	ms.norm.V = math.Float64frombits(binary.LittleEndian.Uint64(src)) // pending
	if ms.norm.HasPrev {
		ms.norm.V = math.Float64frombits(binary.LittleEndian.Uint64(src[8:])) // previous sample
	}
	src = src[16:]
	last, n := binary.Varint(src)
	if n <= 0 {
		return nil, errSnapshot
	}
	ms.lastT = max(ms.lastT, last)
	src = src[n:]
	ms.hasOpen = flags&snapOpen != 0
	ms.open.Reset()
	if ms.hasOpen {
		p, n := binary.Varint(src)
		if n <= 0 {
			return nil, errSnapshot
		}
		ms.period = p
		var err error
		if src, err = ms.open.DecodeOpen(src[n:]); err != nil {
			return nil, fmt.Errorf("%w: %v", tsdb.ErrCorrupt, err)
		}
	}
	if flags&snapLate == 0 {
		return nil, nil
	}
	p, n := binary.Varint(src)
	if n <= 0 || ms.hasOpen && p >= ms.period {
		return nil, errSnapshot
	}
	var o chunk.Open
	if _, err := o.DecodeOpen(src[n:]); err != nil {
		return nil, fmt.Errorf("%w: %v", tsdb.ErrCorrupt, err)
	}
	lb := newLateBlock(p, o, 0)
	lb.reloaded, lb.written = flags&snapLateReload != 0, true
	return lb, nil
}

// RestoreSeries adds a persisted series with its id, without limits and
// without scheduling it for the next checkpoint. An existing id is kept.
func (h *Head) RestoreSeries(id uint32, enc []byte) error {
	ts, err := tags.Decode(enc)
	if err != nil {
		return fmt.Errorf("%w: series %d tags: %v", tsdb.ErrCorrupt, id, err)
	}
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seriesLocked(local) != nil {
		return nil
	}
	h.restoreLocked(s, k, local, enc, ts)
	if s.persist {
		// Persisted already: not for the next checkpoint.
		s.mu.created = s.mu.created[:len(s.mu.created)-1]
		s.mu.dirty = s.mu.dirty[:len(s.mu.dirty)-1]
		s.mu.series[local].dirty = false
	}
	return nil
}

// restoreLocked adds a series that was created before; enc is copied.
func (h *Head) restoreLocked(s *shard, k int, local uint32, enc []byte, ts tags.Set) *memSeries {
	h.numSeries.Add(1)
	h.names.Lock()
	h.names.counts[ts.Name()]++
	h.names.Unlock()
	return h.newSeriesLocked(s, k, local, enc, ts, tagHash(enc))
}

// RestoreState restores the normalization state and open block of series id.
func (h *Head) RestoreState(id uint32, snapshot []byte) error {
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.seriesLocked(local)
	if ms == nil {
		return fmt.Errorf("%w: state of unknown series %d", tsdb.ErrCorrupt, id)
	}
	if ms.late&lateOpen != 0 {
		// Restored twice: the late block of the first goes.
		lb := s.mu.late[local]
		delete(s.mu.late, local)
		ms.late &^= lateOpen
		if i, found := ms.findSealed(lb.period); found && ms.sealed[i].late {
			ms.sealed = slices.Delete(ms.sealed, i, i+1)
		}
	}
	lb, err := ms.restoreSnapshot(snapshot)
	if err != nil || lb == nil {
		return err
	}
	lb.wrote = h.wallSec(h.opts.Now()) // as replayed writes count
	s.mu.late[local] = lb
	ms.late |= lateOpen | lateProne
	ms.putSealed(sealedBlock{per: int32(lb.period), late: true})
	return nil
}

// RestoreBlock adds a persisted sealed block of series id. data is copied.
func (h *Head) RestoreBlock(id uint32, period int64, data []byte) error {
	if _, err := chunk.ReadHeader(data); err != nil {
		return fmt.Errorf("block %d of series %d: %w", period, id, err)
	}
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.seriesLocked(local)
	if ms == nil {
		return fmt.Errorf("%w: block of unknown series %d", tsdb.ErrCorrupt, id)
	}
	if ms.hasOpen && ms.period == period {
		// The open snapshot is newer than a block persisted before it was
		// reopened by a late write; keep the snapshot.
		return nil
	}
	if i, found := ms.findSealed(period); found && ms.sealed[i].late {
		// Likewise a late block's (head_late.go).
		return nil
	}
	ms.putSealed(sealedBlock{per: int32(period), data: bytes.Clone(data), persisted: true})
	ms.lastT = max(ms.lastT, (period+1)*h.blockDur-h.opts.Step)
	return nil
}

// RecordShard returns the shard a WAL record belongs to.
func RecordShard(rec []byte) (int, error) {
	if len(rec) < 2 || rec[0] != recSamples {
		return 0, fmt.Errorf("%w: unknown wal record type", tsdb.ErrCorrupt)
	}
	k, n := binary.Uvarint(rec[1:])
	if n <= 0 || k >= Shards {
		return 0, fmt.Errorf("%w: bad wal record shard", tsdb.ErrCorrupt)
	}
	return int(k), nil
}

var errRecord = fmt.Errorf("%w: malformed wal record", tsdb.ErrCorrupt)

// Replay applies a WAL record written by Append, without logging it again
// and without time or cardinality checks: it was accepted once.
func (h *Head) Replay(rec []byte) error {
	k, err := RecordShard(rec)
	if err != nil {
		return err
	}
	_, n := binary.Uvarint(rec[1:])
	src := rec[1+n:]
	base, n := binary.Varint(src)
	if n <= 0 {
		return errRecord
	}
	src = src[n:]
	sc := h.scratch.Get().(*appendScratch)
	defer func() {
		sc.replay = false
		h.scratch.Put(sc)
	}()
	sc.replay = true
	sc.wrote = h.wallSec(h.opts.Now()) // replayed series count as written now
	var b tsdb.Batch
	for len(src) > 0 {
		kind := src[0]
		id, n := binary.Uvarint(src[1:])
		if n <= 0 || id >= 1<<32 {
			return errRecord
		}
		src = src[1+n:]
		if sk, _ := splitID(uint32(id)); sk != k {
			return errRecord
		}
		switch kind {
		case entrySeries:
			l, n := binary.Uvarint(src)
			if n <= 0 || uint64(len(src)-n) < l {
				return errRecord
			}
			enc := src[n : n+int(l)]
			src = src[n+int(l):]
			if err := h.replaySeries(uint32(id), enc); err != nil {
				return err
			}
		case entrySample:
			dt, n := binary.Varint(src)
			if n <= 0 || len(src) < n+8 {
				return errRecord
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(src[n:]))
			src = src[n+8:]
			b.Points = append(b.Points, tsdb.Datapoint{Ref: Ref(uint32(id)), T: base + dt, V: v})
		default:
			return errRecord
		}
	}
	if len(b.Points) == 0 {
		return nil
	}
	sc.lateFloor = h.opts.Now() - h.opts.MaxAge
	if _, err := h.append(sc, &b, 0, 0); err != nil {
		return err
	}
	if sc.late > 0 {
		h.m.late.Add(float64(sc.late))
	}
	for i, r := range sc.reason[:len(b.Points)] {
		if r != tsdb.Accepted && r != tsdb.OutOfOrder {
			return fmt.Errorf("%w: wal sample %d of series %d not applicable: %v", tsdb.ErrCorrupt, i, b.Points[i].Ref-1, r)
		}
	}
	return nil
}

// replaySeries creates a series logged in the WAL, scheduling it for the
// next checkpoint like a new series.
func (h *Head) replaySeries(id uint32, enc []byte) error {
	ts, err := tags.Decode(enc)
	if err != nil {
		return errors.Join(errRecord, err)
	}
	k, local := splitID(id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seriesLocked(local) == nil {
		h.restoreLocked(s, k, local, enc, ts)
	}
	return nil
}
