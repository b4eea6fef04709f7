package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/disk"
	"github.com/sextant-dev/sextant/tsdb/head"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// Options configure a DB. Durations are in milliseconds.
type Options struct {
	Step            int64 // storage step; default 60 s; must divide 1 h
	BlockSteps      int   // steps per block; default 120
	MemoryRetention int64 // recent data kept in memory; default 24 h
	Retention       int64 // data kept on disk; default 15 d
	IngestMaxAge    int64 // older datapoints are rejected; default 1 h
	MaxFuture       int64 // datapoints further ahead are rejected; default 5 m
	Fsync           wal.SyncMode
	// MaxLogBacklog bounds the bytes logged but not yet written out; beyond
	// it Append sheds load with tsdb.ErrOverloaded. Default 256 MiB.
	MaxLogBacklog int

	MaxSeries             int // default 10 M
	MaxSeriesPerName      int // default 1 M
	MaxSeriesPerQuery     int // series a fetch may read; default 1 M
	MaxDatapointsPerQuery int // storage-step values a fetch may read; default 500 M
	// MaxBytesPerQuery bounds the memory one fetch may hold (its scratch
	// and its answer); default 256 MiB.
	MaxBytesPerQuery int
	// RegexBudget bounds the time one fetch may spend matching tag values
	// with backtracking regexes (Java-only syntax); default 1 s.
	RegexBudget time.Duration

	// CheckpointInterval is how often the in-memory state is persisted and
	// the WAL truncated; default 5 min.
	CheckpointInterval int64
	// MaintenanceInterval is how often blocks are sealed and retention
	// enforced; default 30 s.
	MaintenanceInterval int64

	// Marks readies a store on disk for AppendMarked (a cluster store
	// node, which applies a log): a plain Append then takes a shared lock,
	// so that none of its WAL records lands inside a marked batch's.
	// Without it Append takes no lock and AppendMarked returns an error.
	Marks bool

	FS       vfs.FS       // Pebble's file system; nil means the OS
	Now      func() int64 // Unix ms; default the system clock
	Logger   *slog.Logger
	Registry *lib.Registry
}

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
)

func (o Options) withDefaults() Options {
	if o.Step == 0 {
		o.Step = minute
	}
	if o.BlockSteps == 0 {
		o.BlockSteps = 120
	}
	if o.MemoryRetention == 0 {
		o.MemoryRetention = day
	}
	if o.Retention == 0 {
		o.Retention = 15 * day
	}
	if o.IngestMaxAge == 0 {
		o.IngestMaxAge = hour
	}
	if o.MaxFuture == 0 {
		o.MaxFuture = 5 * minute
	}
	if o.MaxSeriesPerQuery == 0 {
		o.MaxSeriesPerQuery = 1_000_000
	}
	if o.MaxDatapointsPerQuery == 0 {
		o.MaxDatapointsPerQuery = 500_000_000
	}
	if o.MaxBytesPerQuery == 0 {
		o.MaxBytesPerQuery = 256 << 20
	}
	if o.RegexBudget == 0 {
		o.RegexBudget = time.Second
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 5 * minute
	}
	if o.MaintenanceInterval == 0 {
		o.MaintenanceInterval = 30 * second
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Step < second || o.Step > hour || hour%o.Step != 0:
		return fmt.Errorf("tsdb: step %s must be between 1s and 1h and divide 1h", time.Duration(o.Step)*time.Millisecond)
	case o.MemoryRetention < o.Step*int64(o.BlockSteps):
		return fmt.Errorf("tsdb: memory retention %s is shorter than one block (%s)",
			dur(o.MemoryRetention), dur(o.Step*int64(o.BlockSteps)))
	case o.Retention < o.MemoryRetention:
		return fmt.Errorf("tsdb: retention %s is shorter than the memory retention %s", dur(o.Retention), dur(o.MemoryRetention))
	case o.IngestMaxAge > o.MemoryRetention:
		// Late writes merge into blocks in memory; older ones would need a
		// read from disk under a lock on the write path.
		return fmt.Errorf("tsdb: ingest max age %s exceeds the memory retention %s", dur(o.IngestMaxAge), dur(o.MemoryRetention))
	case o.IngestMaxAge < 0 || o.MaxFuture < 0:
		return errors.New("tsdb: negative ingest age bounds")
	}
	return nil
}

func dur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// DB is the time-series store: a head in memory, a write-ahead log and
// persisted blocks on disk. It implements tsdb.Appender and tsdb.Querier.
// With an empty directory it lives in memory only.
type DB struct {
	opts Options
	head *head.Head
	wal  *wal.WAL   // nil in memory
	disk *disk.Disk // nil in memory
	// kvDisk holds the KV of a store in memory: Pebble on an in-memory FS.
	kvDisk *disk.Disk

	// ckptMu serializes checkpoints (the maintenance loop and Close).
	ckptMu   sync.Mutex
	lastCkpt int64

	// appendMu keeps a marked batch's WAL records together (mark.go):
	// AppendMarked holds it exclusively from its begin record to its mark;
	// a plain Append (with Options.Marks) and a checkpoint's capture hold
	// it shared.
	appendMu sync.RWMutex
	// markLSN is the LSN of the newest mark logged; guarded by appendMu.
	markLSN uint64
	// marks holds the newest mark per log partition: recovered at Open,
	// then set by AppendMarked once its mark is logged.
	marks struct {
		sync.Mutex
		m map[markKey]int64
	}

	stop   chan struct{}
	done   chan struct{}
	closed sync.Once

	// workers keeps fetches' workers (*worker) and their slabs (up to half
	// a megabyte) between fetches: fresh ones were a fifth of what a
	// grouped fetch allocated (see fetch_batch.go).
	workers sync.Pool

	m struct {
		appendLatency *lib.Timer
		checkpoint    *lib.Timer
		fetchLatency  *lib.Timer
		overloaded    *lib.Counter
	}
}

var (
	_ tsdb.Appender = (*DB)(nil)
	_ tsdb.Querier  = (*DB)(nil)
)

// Open opens the store in dir (created if needed), recovering what a
// previous process left: the series, their checkpointed state and recent
// blocks from Pebble, then everything the WAL holds beyond the checkpoint.
// An empty dir gives a store in memory only.
func Open(dir string, opts Options) (_ *DB, err error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	db := &DB{opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	db.marks.m = map[markKey]int64{}
	r := opts.Registry
	db.m.appendLatency = r.Timer("sextant.tsdb.appendLatency")
	db.m.checkpoint = r.Timer("sextant.tsdb.checkpointLatency")
	db.m.fetchLatency = r.Timer("sextant.tsdb.fetchLatency")
	db.m.overloaded = r.Counter("sextant.tsdb.overloaded")

	hopts := head.Options{
		Step: opts.Step, BlockSteps: opts.BlockSteps, MaxAge: opts.IngestMaxAge, MaxFuture: opts.MaxFuture,
		MaxSeries: opts.MaxSeries, MaxSeriesPerName: opts.MaxSeriesPerName,
		Now: opts.Now, Logger: opts.Logger, Registry: r,
	}
	if dir != "" {
		if db.disk, err = disk.Open(filepath.Join(dir, "pebble"), disk.Options{FS: opts.FS, Logger: opts.Logger}); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				db.disk.Close()
			}
		}()
		if err := db.disk.CheckMeta(disk.Meta{Step: opts.Step, BlockSteps: opts.BlockSteps}); err != nil {
			return nil, err
		}
		if db.wal, err = wal.Open(filepath.Join(dir, "wal"), wal.Options{Sync: opts.Fsync, MaxPending: opts.MaxLogBacklog, FS: opts.FS,
			Logger: opts.Logger, Registry: r}); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				db.wal.Close()
			}
		}()
		// The directories just made must survive a crash too.
		if err := syncDirs(opts.FS, dir); err != nil {
			return nil, err
		}
		hopts.Log = db.wal.Log
		hopts.LoadBlock = db.disk.Block
	}
	if db.disk == nil {
		if db.kvDisk, err = disk.Open("kv", disk.Options{FS: vfs.NewMem(), Logger: opts.Logger}); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				db.kvDisk.Close()
			}
		}()
	}
	if db.head, err = head.New(hopts); err != nil {
		return nil, err
	}
	if db.disk != nil {
		start := time.Now()
		if err := db.recover(); err != nil {
			return nil, err
		}
		opts.Logger.Info("store recovered", "series", db.head.NumSeries(), "duration", time.Since(start).Round(time.Millisecond))
	}
	db.head.SetMinPeriod(db.memoryCutoff(opts.Now()))
	db.lastCkpt = opts.Now()
	go db.maintain()
	return db, nil
}

// syncDirs fsyncs dir and its parent, so that the entries of the store's
// subdirectories (and of dir itself) are durable.
func syncDirs(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		f, err := fs.OpenDir(d)
		if err != nil {
			return fmt.Errorf("open dir %s: %w", d, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("sync dir %s: %w", d, err)
		}
	}
	return nil
}

// KV returns the small durable key/value store kept beside the series, in
// the same Pebble (in memory for a store in memory).
func (db *DB) KV() tsdb.KV {
	if db.disk != nil {
		return db.disk.KV()
	}
	return db.kvDisk.KV()
}

// memoryCutoff is the oldest period kept in memory at time now.
func (db *DB) memoryCutoff(now int64) int64 {
	return floorDiv(now-db.opts.MemoryRetention, db.head.BlockDuration())
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// recover loads the persisted state and replays the WAL.
func (db *DB) recover() error {
	if err := db.disk.Series(db.head.RestoreSeries); err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	if err := db.disk.States(db.head.RestoreState); err != nil {
		return fmt.Errorf("load series states: %w", err)
	}
	cut := db.memoryCutoff(db.opts.Now())
	if err := db.disk.Blocks(cut, db.head.RestoreBlock); err != nil {
		return fmt.Errorf("load blocks: %w", err)
	}
	db.head.SetMinPeriod(cut)
	stamps, err := db.disk.Stamps(head.Shards)
	if err != nil {
		return fmt.Errorf("load checkpoint stamps: %w", err)
	}
	err = db.disk.Marks(func(log string, partition int, next int64) error {
		db.setMark(tsdb.Mark{Log: log, Partition: partition, Next: next})
		return nil
	})
	if err != nil {
		return fmt.Errorf("load marks: %w", err)
	}
	r := &replayer{db: db, stamps: stamps}
	if err := db.wal.Replay(r.record); err != nil {
		return fmt.Errorf("replay wal: %w", err)
	}
	if r.open {
		// The log ends inside a marked batch: a crash before its mark was
		// durable. The batch was not acknowledged; drop it, and say so in
		// the log, so that later records are not taken for its own.
		r.drop()
		if _, err := db.wal.Log([]byte{recAbort, markVersion}); err != nil {
			return fmt.Errorf("log abort record: %w", err)
		}
	}
	db.opts.Logger.Info("wal replayed", "records", r.replayed, "dropped", r.dropped)
	return nil
}

// Append implements tsdb.Appender: the datapoints are applied in memory and
// logged, and Append returns once the log is durable per the fsync mode.
func (db *DB) Append(ctx context.Context, b *tsdb.Batch) error {
	if db.wal != nil && db.wal.Saturated() {
		db.m.overloaded.Increment()
		return tsdb.ErrOverloaded
	}
	start := time.Now()
	if db.opts.Marks {
		db.appendMu.RLock()
	}
	lsn, err := db.head.Append(ctx, b)
	if db.opts.Marks {
		db.appendMu.RUnlock()
	}
	if err != nil {
		return err
	}
	if db.wal != nil && lsn > 0 {
		if err := db.wal.Sync(ctx, lsn); err != nil {
			return err
		}
	}
	db.m.appendLatency.Record(time.Since(start))
	return nil
}

// Err returns the error that put the store in a failed state (its disk
// refused a write), or nil. A failed store keeps logging writes to the WAL
// but cannot checkpoint; it should be restarted.
func (db *DB) Err() error {
	if db.disk == nil {
		return nil
	}
	return db.disk.Err()
}

// Head returns the in-memory part, for statistics and benchmarks.
func (db *DB) Head() *head.Head { return db.head }

// Step returns the storage step in ms.
func (db *DB) Step() int64 { return db.opts.Step }

// maintain seals idle blocks, checkpoints and enforces retention until Close.
func (db *DB) maintain() {
	defer close(db.done)
	t := time.NewTicker(dur(db.opts.MaintenanceInterval))
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			if err := db.Maintain(); err != nil {
				db.opts.Logger.Error("maintenance failed", "err", err)
			}
		}
	}
}

// Maintain runs one round of maintenance now: seal blocks of idle series,
// checkpoint if due, move old blocks out of memory and delete data past
// retention. The background loop calls it; tests call it directly.
func (db *DB) Maintain() error {
	now := db.opts.Now()
	db.head.SealIdle(now)
	if db.disk == nil {
		db.head.DropBefore(db.memoryCutoff(now), false)
		db.head.DeleteStale(now - db.opts.MemoryRetention)
		return nil
	}
	db.ckptMu.Lock()
	due := now-db.lastCkpt >= db.opts.CheckpointInterval
	db.ckptMu.Unlock()
	if due {
		if err := db.Checkpoint(); err != nil {
			return err
		}
	}
	db.head.DropBefore(db.memoryCutoff(now), true)
	return db.enforceRetention(now)
}

// enforceRetention deletes blocks and series older than the retention.
func (db *DB) enforceRetention(now int64) error {
	cut := floorDiv(now-db.opts.Retention, db.head.BlockDuration())
	if oldest, ok, err := db.disk.OldestPeriod(); err != nil {
		return err
	} else if ok && oldest < cut {
		if err := db.disk.DeleteBefore(cut); err != nil {
			return err
		}
		db.opts.Logger.Info("deleted blocks past retention", "before_period", cut)
	}
	if ids := db.head.DeleteStale(now - db.opts.Retention); len(ids) > 0 {
		b := db.disk.NewBatch()
		for _, id := range ids {
			b.DeleteSeries(id)
		}
		if err := b.Commit(true); err != nil {
			return err
		}
		db.opts.Logger.Info("deleted series past retention", "series", len(ids))
	}
	return nil
}

// Checkpoint persists what changed in memory since the last checkpoint,
// shard by shard, then deletes the WAL segments it made redundant.
func (db *DB) Checkpoint() error {
	if db.disk == nil {
		return nil
	}
	db.ckptMu.Lock()
	defer db.ckptMu.Unlock()
	start := time.Now()
	marks, minStamp, err := db.captureShards()
	if err != nil {
		return err
	}
	if len(marks) > 0 {
		b := db.disk.NewBatch()
		for _, m := range marks {
			b.SetMark(m.Log, m.Partition, m.Next)
		}
		if err := b.Commit(false); err != nil {
			db.head.MarkAllDirty()
			return fmt.Errorf("checkpoint marks: %w", err)
		}
	}
	if err := db.disk.Sync(); err != nil {
		db.head.MarkAllDirty()
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := db.wal.Truncate(minStamp); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	db.lastCkpt = db.opts.Now()
	db.m.checkpoint.Record(time.Since(start))
	return nil
}

// captureShards writes what changed in every shard to disk (unsynced); it
// returns the marks the captured state holds and the lowest shard stamp.
// It holds appendMu shared, so that no marked batch is half captured, and
// first makes the WAL durable up to the newest mark, so that the
// checkpoint holds no marked batch whose mark a crash could still take
// from the WAL.
func (db *DB) captureShards() (marks []tsdb.Mark, minStamp uint64, err error) {
	db.appendMu.RLock()
	defer db.appendMu.RUnlock()
	if db.markLSN > 0 {
		if err := db.wal.Sync(context.Background(), db.markLSN); err != nil {
			return nil, 0, fmt.Errorf("checkpoint: sync the marks: %w", err)
		}
		marks = db.snapshotMarks()
	}
	var cp head.Capture
	minStamp = ^uint64(0)
	for k := 0; k < head.Shards; k++ {
		db.head.CaptureShard(k, db.wal.LastLSN, &cp)
		b := db.disk.NewBatch()
		for _, s := range cp.Created {
			b.SetSeries(s.ID, s.Tags)
		}
		for _, s := range cp.States {
			b.SetState(s.ID, s.Snapshot)
		}
		for _, bl := range cp.Blocks {
			b.SetBlock(bl.ID, bl.Period, bl.Data)
		}
		b.SetStamp(k, cp.Stamp)
		if err := b.Commit(false); err != nil {
			db.head.MarkAllDirty()
			return nil, 0, fmt.Errorf("checkpoint shard %d: %w", k, err)
		}
		minStamp = min(minStamp, cp.Stamp)
	}
	return marks, minStamp, nil
}

// Close stops maintenance, checkpoints and closes the log and the disk.
func (db *DB) Close() error {
	var err error
	db.closed.Do(func() {
		close(db.stop)
		<-db.done
		if db.disk == nil {
			err = db.kvDisk.Close()
			return
		}
		db.head.SealIdle(db.opts.Now())
		err = db.Checkpoint()
		if werr := db.wal.Close(); werr != nil && err == nil {
			err = werr
		}
		if derr := db.disk.Close(); derr != nil && err == nil {
			err = derr
		}
	})
	return err
}
