package spanstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tracing"
)

// Marks (tracing.MarkedWriter, FORMAT.md "Marks"). A store node of a
// cluster applies the spans topic through WriteTracesMarked: the mark (the
// partition's next offset) is one more key of the Pebble batch that holds
// the block and its index entries, so Pebble's atomic batches give the
// rule the consumer needs: after a crash, the store holds a mark if and
// only if it holds every block written with it and before it. The batch
// syncs as every span write does, so a mark costs one small key, not a
// sync. A single node writes no mark and pays nothing.
//
// The marks are few (one per partition of the log the node ever applied)
// and are read into memory when the store opens; retention never deletes
// them.

// kindMark is the key kind of a mark: p log 0x00 partition(4) → value.
const kindMark = 'p'

// markVersion is the version byte of a mark's value.
const markVersion = 1

// markID names a log partition.
type markID struct {
	log       string
	partition int
}

// WriteTracesMarked implements tracing.MarkedWriter: td's block, its
// index entries and m go into one Pebble batch, committed with a sync.
func (s *Store) WriteTracesMarked(ctx context.Context, td ptrace.Traces, m tracing.Mark) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return s.writeTraces(ctx, td, &m)
}

// WriteExemplarsMarked implements tracing.MarkedWriter: the exemplars and
// m go into one Pebble batch, committed with a sync (unlike
// WriteExemplars, since the mark says they are stored).
func (s *Store) WriteExemplarsMarked(ctx context.Context, ex []tracing.Exemplar, m tracing.Mark) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return s.writeExemplars(ctx, ex, &m)
}

// Marked implements tracing.MarkedWriter.
func (s *Store) Marked(log string, p int) (int64, bool) {
	s.marks.Lock()
	defer s.marks.Unlock()
	next, ok := s.marks.m[markID{log, p}]
	return next, ok
}

// commitMark writes m alone, with a sync: a marked write without spans.
// The caller checked that the store is open.
func (s *Store) commitMark(m tracing.Mark) error {
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(markKey(m.Log, m.Partition), appendMarkValue(nil, m.Next), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit mark: %w", err)
	}
	s.setMark(m)
	return nil
}

// setMark records m, committed, as its partition's mark.
func (s *Store) setMark(m tracing.Mark) {
	s.marks.Lock()
	defer s.marks.Unlock()
	s.marks.m[markID{m.Log, m.Partition}] = m.Next
}

// loadMarks reads the marks at open. A mark it cannot read (damaged, or
// of a later version of its value) is skipped with a warning: the
// consumer then resumes at the offset it kept in its KV, at least once,
// as before marks.
func (s *Store) loadMarks() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMark}, UpperBound: []byte{kindMark + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		log, p, ok := parseMarkKey(it.Key())
		if !ok {
			s.opts.Logger.Warn("skip a malformed mark key", "key", fmt.Sprintf("%q", it.Key()))
			continue
		}
		next, err := decodeMarkValue(it.Value())
		if err != nil {
			s.opts.Logger.Warn("skip a mark", "log", log, "partition", p, "err", err)
			continue
		}
		s.marks.m[markID{log, p}] = next
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read marks: %w", err)
	}
	return nil
}

// markKey is the key of the mark of partition p of log: p log 0x00
// partition(4, big-endian).
func markKey(log string, p int) []byte {
	k := make([]byte, 0, len(log)+6)
	k = append(k, kindMark)
	k = append(k, log...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(p))
}

// parseMarkKey reads a mark key; ok is false for one malformed.
func parseMarkKey(k []byte) (log string, p int, ok bool) {
	if len(k) < 1+1+1+4 || k[0] != kindMark {
		return "", 0, false
	}
	name := k[1 : len(k)-5]
	if k[len(k)-5] != 0 || slices.Contains(name, 0) {
		return "", 0, false
	}
	part := binary.BigEndian.Uint32(k[len(k)-4:])
	if part >= 1<<31 {
		return "", 0, false
	}
	return string(name), int(part), true
}

// appendMarkValue appends a mark's value to dst: version(1), next
// (uvarint).
func appendMarkValue(dst []byte, next int64) []byte {
	dst = append(dst, markVersion)
	return binary.AppendUvarint(dst, uint64(next))
}

// errMarkValue is a mark value this build cannot read.
var errMarkValue = errors.New("spanstore: malformed mark value")

// decodeMarkValue reads a mark's value: exactly a version byte this build
// reads and a minimal uvarint offset up to math.MaxInt64.
func decodeMarkValue(v []byte) (int64, error) {
	if len(v) < 2 {
		return 0, errMarkValue
	}
	if v[0] != markVersion {
		return 0, fmt.Errorf("spanstore: mark value version %d, this build reads %d", v[0], markVersion)
	}
	next, w := binary.Uvarint(v[1:])
	if w <= 0 || w != len(v)-1 || w != len(binary.AppendUvarint(nil, next)) || next > math.MaxInt64 {
		return 0, errMarkValue
	}
	return int64(next), nil
}
