package spanstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-dev/sextant/tracing"
)

// retentionLoop runs retention every RetentionEvery until Close.
func (s *Store) retentionLoop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.RetentionEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.Retain(); err != nil {
			s.opts.Logger.Warn("trace retention", "err", err)
		}
	}
}

// Retain deletes what is past the retention, and, while the store is
// over its size cap, the oldest hour of blocks. Retention runs on its own
// every minute; tests call it directly.
func (s *Store) Retain() (err error) {
	if err := s.trap.Err(); err != nil {
		return err
	}
	defer s.trap.Recover(&err)
	cutoff := s.opts.Now().Add(-s.opts.Retention).UnixNano()
	hour := hourOf(cutoff)
	if s.opts.MaxBytes > 0 && s.diskSize() > s.opts.MaxBytes {
		if oldest, ok, err := s.oldestHour(); err != nil {
			return err
		} else if ok && oldest+1 > hour {
			s.opts.Logger.Warn("trace store over its size cap: dropping its oldest hour early",
				"bytes", s.diskSize(), "max_bytes", s.opts.MaxBytes, "hour", time.Unix(int64(oldest)*3600, 0).UTC())
			hour = oldest + 1
		}
	}
	return s.expireBefore(hour)
}

// oldestHour is the end hour of the oldest block.
func (s *Store) oldestHour() (uint32, bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindExpiry}, UpperBound: []byte{kindExpiry + 1}})
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.First() || len(it.Key()) < 5 {
		return 0, false, it.Error()
	}
	return binary.BigEndian.Uint32(it.Key()[1:5]), true, nil
}

// expireBefore deletes the blocks whose spans all ended before hour, with
// their trace entries, and the search, dependency and exemplar entries of
// the hours before it.
func (s *Store) expireBefore(hour uint32) error {
	if hour == 0 {
		return nil
	}
	lo, hi := []byte{kindExpiry}, binary.BigEndian.AppendUint32([]byte{kindExpiry}, hour)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	var expired [][]byte
	for it.First(); it.Valid(); it.Next() {
		expired = append(expired, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("list expired blocks: %w", err)
	}
	minSeq, maxSeq := uint64(math.MaxUint64), uint64(0)
	for _, rk := range expired {
		if s.closed.Load() {
			return tracing.ErrClosed
		}
		if len(rk) != 13 {
			continue
		}
		seq := binary.BigEndian.Uint64(rk[5:])
		minSeq, maxSeq = min(minSeq, seq), max(maxSeq, seq)
		if err := s.dropBlock(rk, seq); err != nil {
			return err
		}
	}
	ranges := [][2][]byte{
		{[]byte{kindSearch}, binary.BigEndian.AppendUint32([]byte{kindSearch}, hour)},
		{[]byte{kindDep}, binary.BigEndian.AppendUint64([]byte{kindDep}, uint64(hour)*60)},
		{[]byte{kindExemplar}, binary.BigEndian.AppendUint64([]byte{kindExemplar}, uint64(hour)*3600_000)},
		{[]byte{kindDict}, binary.BigEndian.AppendUint32([]byte{kindDict}, hour)},
		{[]byte{kindDictOverflow}, binary.BigEndian.AppendUint32([]byte{kindDictOverflow}, hour)},
	}
	for _, r := range ranges {
		if err := s.db.DeleteRange(r[0], r[1], pebble.NoSync); err != nil {
			return fmt.Errorf("delete expired entries: %w", err)
		}
	}
	s.mu.Lock()
	for h := range s.mu.hours {
		if h < hour {
			delete(s.mu.hours, h)
		}
	}
	var gone []opID
	for id, h := range s.mu.ops {
		if h < hour {
			gone = append(gone, id)
			delete(s.mu.ops, id)
		}
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		b := s.db.NewBatch()
		for _, id := range gone {
			b.Delete(opKey(id.service, id.kind, id.name), nil)
		}
		err := b.Commit(pebble.NoSync)
		b.Close()
		if err != nil {
			return fmt.Errorf("delete expired operations: %w", err)
		}
	}
	if minSeq <= maxSeq {
		// Reclaim the space now rather than at the next natural compaction
		// (the size cap depends on it), compacting only the expired blocks'
		// key range: sequence numbers grow with time, so it is the oldest
		// blocks' and holds little else.
		if err := s.db.Compact(context.Background(), blockKey(minSeq), blockKey(maxSeq+1), false); err != nil {
			return fmt.Errorf("compact expired blocks: %w", err)
		}
	}
	return nil
}

// dropBlock deletes one block, its trace entries and its expiry key in
// one batch.
func (s *Store) dropBlock(rk []byte, seq uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	v, closer, err := s.db.Get(blockKey(seq))
	if err == nil {
		blk, derr := decodeBlock(v)
		if derr == nil {
			var key []byte
			var last tracing.TraceID
			for i := range blk.len() {
				off := binary.LittleEndian.Uint32(blk.offsets[i*4:])
				if int(off)+16 > len(blk.spans) {
					break
				}
				id := tracing.TraceID(blk.spans[off : off+16])
				if i > 0 && id == last {
					continue
				}
				last = id
				key = traceKey(key[:0], id, seq)
				b.Delete(key, nil)
			}
		}
		closer.Close()
		if derr != nil {
			s.opts.Logger.Warn("expired block is corrupt; deleting it", "block", seq, "err", derr)
		}
	} else if err != pebble.ErrNotFound {
		return fmt.Errorf("read expired block %d: %w", seq, err)
	}
	b.Delete(blockKey(seq), nil)
	b.Delete(rk, nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("delete block %d: %w", seq, err)
	}
	s.m.expired.Increment()
	return nil
}

// durationOf converts a stored duration, saturating.
func durationOf(d uint64) time.Duration {
	if d > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(d)
}
