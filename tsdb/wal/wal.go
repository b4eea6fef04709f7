package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/lib"
)

// SyncMode is when a record becomes durable.
type SyncMode uint8

// Sync modes (the --fsync flag).
const (
	// SyncBatch fsyncs before acknowledging, sharing one fsync among the
	// writers that arrive while the previous one runs (group commit).
	SyncBatch SyncMode = iota
	// SyncAlways gives every Sync call a write and an fsync of its own.
	SyncAlways
	// SyncInterval writes to the OS before acknowledging and fsyncs in the
	// background every SyncInterval: a process crash loses nothing, a power
	// loss up to one interval.
	SyncInterval
)

// ParseSyncMode parses the --fsync flag value.
func ParseSyncMode(s string) (SyncMode, error) {
	switch s {
	case "batch":
		return SyncBatch, nil
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	}
	return 0, fmt.Errorf("wal: unknown fsync mode %q (want always, batch or interval)", s)
}

// String returns the flag value of m.
func (m SyncMode) String() string {
	return [...]string{"batch", "always", "interval"}[m%3]
}

// Options configure a WAL.
type Options struct {
	Sync         SyncMode
	SyncInterval time.Duration // SyncInterval mode; default 1s
	SegmentSize  int64         // rotate segments beyond this size; default 64 MiB
	// MaxPending is the size of unwritten records beyond which Saturated
	// reports true, so that writers shed load instead of queueing without
	// bound. Default 256 MiB.
	MaxPending int
	// FS is the file system the segments live on (the store's, so that
	// faults can be injected in tests); nil means the OS.
	FS       vfs.FS
	Logger   *slog.Logger
	Registry *lib.Registry
}

func (o Options) withDefaults() Options {
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	return o
}

// MaxRecord bounds one record, so that a corrupt length cannot make replay
// allocate without bound.
const MaxRecord = 64 << 20

const headerSize = 8 // uint32 length, uint32 CRC-32C of the payload

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// WAL is a write-ahead log of records in numbered segment files. Each record
// gets a log sequence number (LSN), consecutive from 1 across segments; a
// segment file is named after the LSN of its first record.
//
// Log buffers a record and Sync makes it durable. Safe for concurrent use.
// The write path holds mu only to append to the buffer or to swap it out;
// file I/O runs without it, by one flushing goroutine at a time.
type WAL struct {
	dir  string
	opts Options

	mu struct {
		sync.Mutex
		cond     *sync.Cond
		pending  []byte // framed records not yet written
		spare    []byte // the other buffer, reused
		nextLSN  uint64 // LSN of the next record
		written  uint64 // records up to this LSN are written to the OS
		synced   uint64 // ... and fsynced
		flushing bool
		err      error // a write or sync failure: the WAL is unusable
		closed   bool
		replayed bool
		segments []segment // oldest first; the last is being written
	}
	fs       vfs.FS
	seg      vfs.File // current segment, used by the flushing goroutine
	segSize  int64
	segFirst uint64

	stop chan struct{}
	done chan struct{}

	syncTimer *lib.Timer
	bytes     *lib.Counter
}

type segment struct {
	first uint64 // LSN of the first record
	path  string
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("wal: closed")

// Open opens the log in dir, creating it if needed. Call Replay before the
// first Log to learn what is in it.
func Open(dir string, opts Options) (*WAL, error) {
	opts = opts.withDefaults()
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	w := &WAL{dir: dir, opts: opts, fs: opts.FS, stop: make(chan struct{}), done: make(chan struct{})}
	w.mu.cond = sync.NewCond(&w.mu.Mutex)
	segs, err := listSegments(opts.FS, dir)
	if err != nil {
		return nil, err
	}
	w.mu.segments = segs
	w.mu.nextLSN = 1
	if len(segs) > 0 {
		w.mu.nextLSN = segs[len(segs)-1].first
	}
	w.syncTimer = opts.Registry.Timer("sextant.wal.syncLatency", "mode", opts.Sync.String())
	w.bytes = opts.Registry.Counter("sextant.wal.bytesWritten")
	go w.background()
	return w, nil
}

func listSegments(fs vfs.FS, dir string) ([]segment, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal dir: %w", err)
	}
	var segs []segment
	for _, e := range names {
		name, ok := strings.CutSuffix(e, ".wal")
		if !ok {
			continue
		}
		first, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, path: fs.PathJoin(dir, e)})
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpU64(a.first, b.first) })
	return segs, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Log appends rec to the log buffer and returns its LSN. It copies rec. The
// record is durable only after Sync returns for an LSN at least this one.
func (w *WAL) Log(rec []byte) (uint64, error) {
	if len(rec) > MaxRecord {
		return 0, fmt.Errorf("wal: record of %d bytes exceeds %d", len(rec), MaxRecord)
	}
	if len(rec) == 0 {
		// Empty records are the fillers Repair writes for lost records.
		return 0, errors.New("wal: empty record")
	}
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(rec)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(rec, crcTable))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return 0, ErrClosed
	}
	if w.mu.err != nil {
		return 0, w.mu.err
	}
	if !w.mu.replayed {
		return 0, errors.New("wal: Log before Replay")
	}
	w.mu.pending = append(w.mu.pending, hdr[:]...)
	w.mu.pending = append(w.mu.pending, rec...)
	lsn := w.mu.nextLSN
	w.mu.nextLSN++
	return lsn, nil
}

// LastLSN returns the LSN of the last record logged (0 if none).
func (w *WAL) LastLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.nextLSN - 1
}

// Saturated reports whether unwritten records exceed MaxPending: writers
// should shed load rather than add to it.
func (w *WAL) Saturated() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.pending) > w.opts.MaxPending
}

// Sync returns once the record with lsn is durable as the sync mode
// promises: fsynced for batch and always, written to the OS for interval.
func (w *WAL) Sync(ctx context.Context, lsn uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	ownCycle := w.opts.Sync == SyncAlways
	for {
		if w.mu.err != nil {
			return w.mu.err
		}
		if !ownCycle && w.durableLocked() >= lsn {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if w.mu.flushing {
			w.mu.cond.Wait()
			continue
		}
		if ownCycle && w.mu.synced >= lsn && len(w.mu.pending) == 0 {
			// Our record went out in another writer's cycle, which wrote and
			// fsynced it after we logged it.
			return nil
		}
		w.flushLocked(w.opts.Sync != SyncInterval)
		ownCycle = false
	}
}

func (w *WAL) durableLocked() uint64 {
	if w.opts.Sync == SyncInterval {
		return w.mu.written
	}
	return w.mu.synced
}

// spareKeep is the capacity up to which the buffer of a flush is kept for
// the next one whatever it held.
const spareKeep = 1 << 20

// flushLocked writes the pending buffer, fsyncing if sync, with mu released
// during I/O. Only one goroutine flushes at a time (mu.flushing).
func (w *WAL) flushLocked(sync bool) {
	w.mu.flushing = true
	buf := w.mu.pending
	w.mu.pending = w.mu.spare[:0]
	end := w.mu.nextLSN - 1
	first := w.mu.written + 1
	w.mu.Unlock()

	err := w.write(buf, first, sync)

	w.mu.Lock()
	w.mu.spare = buf[:0]
	if cap(buf) > spareKeep && 4*len(buf) < cap(buf) {
		// A burst grew the buffer (a load creating a million series logs
		// their tags: 10 MB of buffers) and the writes that follow need a
		// quarter of it: let it go, the next append sizes one anew.
		w.mu.spare = nil
	}
	w.mu.flushing = false
	if err != nil {
		w.mu.err = fmt.Errorf("wal: %w", err)
		w.opts.Logger.Error("wal write failed; the store stops accepting writes", "err", err)
	} else {
		w.mu.written = end
		if sync {
			w.mu.synced = end
		}
	}
	w.mu.cond.Broadcast()
}

// write appends buf, whose first record has LSN first, to the current
// segment, rotating first if it is full.
func (w *WAL) write(buf []byte, first uint64, sync bool) error {
	start := time.Now()
	if len(buf) > 0 && (w.seg == nil || w.segSize >= w.opts.SegmentSize) {
		if err := w.rotate(first); err != nil {
			return err
		}
	}
	if len(buf) > 0 {
		if _, err := w.seg.Write(buf); err != nil {
			return fmt.Errorf("write segment: %w", err)
		}
		w.segSize += int64(len(buf))
		w.bytes.Add(float64(len(buf)))
	}
	if sync && w.seg != nil {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("sync segment: %w", err)
		}
		w.syncTimer.Record(time.Since(start))
	}
	return nil
}

// rotate closes the current segment (already synced by the caller's mode or
// synced here) and starts one whose first record is first.
func (w *WAL) rotate(first uint64) error {
	if w.seg != nil {
		if err := w.seg.Sync(); err != nil {
			return fmt.Errorf("sync segment: %w", err)
		}
		if err := w.seg.Close(); err != nil {
			return fmt.Errorf("close segment: %w", err)
		}
		w.seg = nil
	}
	path := w.fs.PathJoin(w.dir, fmt.Sprintf("%016x.wal", first))
	if _, err := w.fs.Stat(path); err == nil {
		return fmt.Errorf("create segment: %s exists", path)
	}
	f, err := w.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(w.fs, w.dir); err != nil {
		f.Close()
		return err
	}
	w.seg, w.segSize, w.segFirst = f, 0, first
	w.mu.Lock()
	w.mu.segments = append(w.mu.segments, segment{first: first, path: path})
	w.mu.Unlock()
	return nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open wal dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync wal dir: %w", err)
	}
	return nil
}

// Truncate deletes the segments all of whose records have LSN <= lsn. The
// segment being written is never deleted.
func (w *WAL) Truncate(lsn uint64) error {
	w.mu.Lock()
	var drop []segment
	keep := w.mu.segments[:0:0]
	for i, s := range w.mu.segments {
		last := i == len(w.mu.segments)-1
		if !last && w.mu.segments[i+1].first-1 <= lsn {
			drop = append(drop, s)
			continue
		}
		keep = append(keep, s)
	}
	w.mu.segments = keep
	w.mu.Unlock()
	for _, s := range drop {
		if err := w.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove wal segment: %w", err)
		}
	}
	if len(drop) > 0 {
		return syncDir(w.fs, w.dir)
	}
	return nil
}

// Segments returns the number of segment files.
func (w *WAL) Segments() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.segments)
}

// background flushes and fsyncs every SyncInterval in interval mode, so that
// at most one interval of acknowledged records is at risk of a power loss.
func (w *WAL) background() {
	defer close(w.done)
	if w.opts.Sync != SyncInterval {
		<-w.stop
		return
	}
	t := time.NewTicker(w.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if !w.mu.flushing && w.mu.err == nil && w.mu.synced < w.mu.nextLSN-1 {
				w.flushLocked(true)
			}
			w.mu.Unlock()
		}
	}
}

// Close writes and fsyncs everything logged and closes the segment.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return nil
	}
	w.mu.closed = true
	for w.mu.flushing {
		w.mu.cond.Wait()
	}
	if w.mu.err == nil && (len(w.mu.pending) > 0 || w.mu.synced < w.mu.written) {
		w.flushLocked(true)
	}
	err := w.mu.err
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	if w.seg != nil {
		if cerr := w.seg.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close wal segment: %w", cerr)
		}
	}
	return err
}
