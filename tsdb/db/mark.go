package db

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/head"
)

// Marks (tsdb.MarkedAppender, FORMAT.md). A marked append logs, in the
// WAL, a begin record, the head's records of the batch, then a mark
// record, and returns once the mark is durable: the WAL is a prefix after
// a crash, so a durable mark means the whole batch is durable. Replay
// applies a batch's records only when its mark follows them; a batch cut
// off by a crash before its mark was durable is dropped whole, so the
// store holds a mark if and only if it holds the batch.
//
// For that, a batch's records must be alone between its begin and its
// mark: AppendMarked holds appendMu exclusively from the begin to the
// mark, and with Options.Marks a plain Append holds it shared. A
// checkpoint holds it shared too, so that it never captures half a marked
// batch, and first syncs the WAL to the newest mark logged, so that it
// never persists a batch whose mark the WAL could still lose.

// WAL record types of marks; the head's own records are type 1
// (tsdb/head/FORMAT.md).
const (
	recBegin = 2 // a marked batch starts
	recMark  = 3 // a marked batch ends: its mark
	// recAbort drops a marked batch left open before it: Open logs one
	// when the WAL ends inside a batch (a crash before its mark), so that
	// the records logged after the restart are not taken for that batch's.
	recAbort = 4
)

// markVersion is the version byte of the begin, mark and abort records.
const markVersion = 1

// markKey names a log partition.
type markKey struct {
	log       string
	partition int
}

// errNoMarks is AppendMarked on a store on disk opened without
// Options.Marks.
var errNoMarks = fmt.Errorf("%w: a store on disk opened without Options.Marks", tsdb.ErrNoMarks)

var _ tsdb.MarkedAppender = (*DB)(nil)

// AppendMarked implements tsdb.MarkedAppender: b and m become durable
// together, in one fsync.
func (db *DB) AppendMarked(ctx context.Context, b *tsdb.Batch, m tsdb.Mark) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if db.wal == nil {
		// In memory: nothing survives the process, so nothing to order.
		if err := db.Append(ctx, b); err != nil {
			return err
		}
		db.setMark(m)
		return nil
	}
	if !db.opts.Marks {
		return errNoMarks
	}
	if db.wal.Saturated() {
		db.m.overloaded.Increment()
		return tsdb.ErrOverloaded
	}
	// The head checks ctx before it applies anything; checking it here
	// too means a begin is logged only for a batch that is applied.
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	lsn, err := db.appendMarkedLocked(ctx, b, m)
	if err != nil {
		return err
	}
	// The mark's LSN is above the batch's: syncing it syncs them.
	if err := db.wal.Sync(ctx, lsn); err != nil {
		return err
	}
	db.m.appendLatency.Record(time.Since(start))
	return nil
}

// appendMarkedLocked logs the begin record, applies and logs b, and logs
// the mark, holding appendMu exclusively; it returns the mark's LSN.
func (db *DB) appendMarkedLocked(ctx context.Context, b *tsdb.Batch, m tsdb.Mark) (uint64, error) {
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	if _, err := db.wal.Log([]byte{recBegin, markVersion}); err != nil {
		return 0, err
	}
	if _, err := db.head.Append(ctx, b); err != nil {
		// The WAL failed (it stays failed): the batch may be applied in
		// memory in part, and is not in the log whole.
		return 0, err
	}
	lsn, err := db.wal.Log(appendMarkRecord(nil, m))
	if err != nil {
		return 0, err
	}
	db.setMark(m)
	db.markLSN = lsn
	return lsn, nil
}

// Marked implements tsdb.MarkedAppender.
func (db *DB) Marked(log string, p int) (int64, bool) {
	db.marks.Lock()
	defer db.marks.Unlock()
	next, ok := db.marks.m[markKey{log, p}]
	return next, ok
}

// setMark keeps m as the newest mark of its partition, unless a newer one
// is kept.
func (db *DB) setMark(m tsdb.Mark) {
	db.marks.Lock()
	defer db.marks.Unlock()
	k := markKey{m.Log, m.Partition}
	if cur, ok := db.marks.m[k]; !ok || m.Next > cur {
		db.marks.m[k] = m.Next
	}
}

// snapshotMarks returns a copy of the marks kept.
func (db *DB) snapshotMarks() []tsdb.Mark {
	db.marks.Lock()
	defer db.marks.Unlock()
	out := make([]tsdb.Mark, 0, len(db.marks.m))
	for k, next := range db.marks.m {
		out = append(out, tsdb.Mark{Log: k.log, Partition: k.partition, Next: next})
	}
	return out
}

// appendMarkRecord appends the WAL record of m to dst: type, version,
// uvarint len(log), log, uvarint partition, uvarint next.
func appendMarkRecord(dst []byte, m tsdb.Mark) []byte {
	dst = append(dst, recMark, markVersion)
	dst = binary.AppendUvarint(dst, uint64(len(m.Log)))
	dst = append(dst, m.Log...)
	dst = binary.AppendUvarint(dst, uint64(m.Partition))
	return binary.AppendUvarint(dst, uint64(m.Next))
}

var errMarkRecord = fmt.Errorf("%w: malformed mark record", tsdb.ErrCorrupt)

// decodeMarkRecord decodes a record of type recMark.
func decodeMarkRecord(rec []byte) (tsdb.Mark, error) {
	if len(rec) < 2 || rec[0] != recMark {
		return tsdb.Mark{}, errMarkRecord
	}
	if rec[1] != markVersion {
		return tsdb.Mark{}, fmt.Errorf("%w: mark record version %d, this store reads %d", tsdb.ErrCorrupt, rec[1], markVersion)
	}
	rest := rec[2:]
	n, w := uvarint(rest)
	if w <= 0 || n == 0 || n > uint64(len(rest)-w) {
		return tsdb.Mark{}, errMarkRecord
	}
	m := tsdb.Mark{Log: string(rest[w : w+int(n)])}
	rest = rest[w+int(n):]
	p, w := uvarint(rest)
	if w <= 0 || p > 1<<31 {
		return tsdb.Mark{}, errMarkRecord
	}
	rest = rest[w:]
	next, w := uvarint(rest)
	if w <= 0 || w != len(rest) || next > 1<<62 {
		return tsdb.Mark{}, errMarkRecord
	}
	m.Partition, m.Next = int(p), int64(next)
	return m, nil
}

// uvarint is binary.Uvarint refusing a longer encoding than the minimal
// one (w = 0), so that a record has exactly one encoding.
func uvarint(b []byte) (uint64, int) {
	v, w := binary.Uvarint(b)
	if w > 0 && w != len(binary.AppendUvarint(nil, v)) {
		return 0, 0
	}
	return v, w
}

// replayer applies the WAL at open: the head's records above their
// shard's stamp, each marked batch only once its mark is read.
type replayer struct {
	db     *DB
	stamps []uint64
	// open is set between a begin record and its mark; pending holds the
	// batch's records (copied: a record is valid only during the call).
	open    bool
	pending []pendingRecord
	// replayed counts the head records applied; dropped those of a
	// marked batch cut off before its mark.
	replayed, dropped int
}

type pendingRecord struct {
	lsn uint64
	rec []byte
}

// record handles one WAL record.
func (r *replayer) record(lsn uint64, rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("%w: empty wal record", tsdb.ErrCorrupt)
	}
	switch rec[0] {
	case recBegin:
		if len(rec) != 2 || rec[1] != markVersion {
			return fmt.Errorf("%w: malformed begin record", tsdb.ErrCorrupt)
		}
		// A begin while a batch is open: that batch failed before its
		// mark (the head refused it), and was never acknowledged.
		r.drop()
		r.open = true
		return nil
	case recAbort:
		if len(rec) != 2 || rec[1] != markVersion {
			return fmt.Errorf("%w: malformed abort record", tsdb.ErrCorrupt)
		}
		r.drop()
		return nil
	case recMark:
		m, err := decodeMarkRecord(rec)
		if err != nil {
			return err
		}
		for _, p := range r.pending {
			if err := r.apply(p.lsn, p.rec); err != nil {
				return err
			}
		}
		r.pending, r.open = r.pending[:0], false
		r.db.setMark(m)
		return nil
	}
	if r.open {
		r.pending = append(r.pending, pendingRecord{lsn, append([]byte(nil), rec...)})
		return nil
	}
	return r.apply(lsn, rec)
}

// apply replays one head record unless its shard's checkpoint has it.
func (r *replayer) apply(lsn uint64, rec []byte) error {
	k, err := head.RecordShard(rec)
	if err != nil {
		return err
	}
	if lsn <= r.stamps[k] {
		return nil
	}
	r.replayed++
	return r.db.head.Replay(rec)
}

// drop forgets an open batch's records.
func (r *replayer) drop() {
	r.dropped += len(r.pending)
	r.pending, r.open = r.pending[:0], false
}
