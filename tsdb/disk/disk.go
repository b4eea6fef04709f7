package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/fatal"
)

// Key prefixes (FORMAT.md). The first byte of every key is its kind.
const (
	kindMeta   = 0x00
	kindSeries = 0x01
	kindState  = 0x02
	kindBlock  = 0x03
	kindStamp  = 0x04
)

// FormatVersion is the version of the key/value layout, stored in the meta
// key and checked on open.
const FormatVersion = 1

// Options configure a Disk.
type Options struct {
	// FS is the file system; nil means the OS. Tests pass vfs.NewMem().
	FS        vfs.FS
	CacheSize int64 // block cache; default 64 MiB
	Logger    *slog.Logger
	// OnFail is called once when Pebble reports a fatal error or corrupt
	// data; the store has failed (Err). Optional.
	OnFail func(error)
}

// Meta is what a data directory was created with; reopening it with a
// different step would misread every block.
type Meta struct {
	Step       int64
	BlockSteps int
}

// Disk is the persistent part of the store, on Pebble: the series table,
// each series' checkpointed state, sealed blocks and the checkpoint stamps.
// Safe for concurrent use.
type Disk struct {
	db   *pebble.DB
	trap *fatal.Trap
}

// ErrFailed marks every operation after Pebble reported a fatal error (a
// write or sync the disk refused, or corrupt data): the store refuses
// every operation from then on. The process should restart: the WAL holds
// every acknowledged write.
var ErrFailed = fatal.ErrFailed

// Err returns the error that failed the disk, or nil.
func (d *Disk) Err() error { return d.trap.Err() }

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Disk, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	trap := fatal.New("tsdb", opts.Logger, opts.OnFail)
	cache := pebble.NewCache(opts.CacheSize)
	po := &pebble.Options{
		FS:     opts.FS,
		Cache:  cache,
		Logger: trap,
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) { trap.Corruption(info.Path, info.Details) },
		},
	}
	db, err := openPebble(dir, po, trap)
	cache.Unref()
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", dir, err)
	}
	return &Disk{db: db, trap: trap}, nil
}

// openPebble opens Pebble, turning a fatal error during the open into an
// error wrapping tsdb.ErrCorrupt (a corrupt manifest or table).
func openPebble(dir string, po *pebble.Options, trap *fatal.Trap) (db *pebble.DB, err error) {
	defer func() {
		if err != nil && !errors.Is(err, tsdb.ErrCorrupt) && (pebble.IsCorruptionError(err) || errors.Is(err, fatal.ErrFailed)) {
			err = fmt.Errorf("%w: %w", tsdb.ErrCorrupt, err)
		}
	}()
	defer trap.Recover(&err)
	return pebble.Open(dir, po)
}

// Close closes the store.
func (d *Disk) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// CheckMeta compares m with what the store was created with, recording m
// in a new store.
func (d *Disk) CheckMeta(m Meta) error {
	key := []byte{kindMeta}
	val, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		b := []byte{FormatVersion}
		b = binary.AppendVarint(b, m.Step)
		b = binary.AppendUvarint(b, uint64(m.BlockSteps))
		if err := d.db.Set(key, b, pebble.Sync); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read meta: %w", err)
	}
	defer closer.Close()
	if len(val) < 1 || val[0] != FormatVersion {
		return fmt.Errorf("%w: data format version %d, this build reads %d", tsdb.ErrCorrupt, val[0], FormatVersion)
	}
	step, n := binary.Varint(val[1:])
	bs, k := binary.Uvarint(val[1+max(n, 0):])
	if n <= 0 || k <= 0 {
		return fmt.Errorf("%w: bad meta record", tsdb.ErrCorrupt)
	}
	if step != m.Step || int(bs) != m.BlockSteps {
		return fmt.Errorf("tsdb: data directory was created with step %dms and %d steps per block; cannot open it with step %dms and %d",
			step, bs, m.Step, m.BlockSteps)
	}
	return nil
}

func seriesKey(dst []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, kindSeries), id)
}

func stateKey(dst []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, kindState), id)
}

// blockKey sorts by period, then id: retention is one range deletion and a
// query reads each period's blocks in id order.
func blockKey(dst []byte, period int64, id uint32) []byte {
	dst = binary.BigEndian.AppendUint64(append(dst, kindBlock), uint64(period)^(1<<63))
	return binary.BigEndian.AppendUint32(dst, id)
}

func stampKey(shard int) []byte { return []byte{kindStamp, byte(shard)} }

// Batch collects changes that commit atomically.
type Batch struct {
	d   *Disk
	b   *pebble.Batch
	key []byte
}

// NewBatch returns an empty batch.
func (d *Disk) NewBatch() *Batch { return &Batch{d: d, b: d.db.NewBatch()} }

// SetSeries records a series.
func (b *Batch) SetSeries(id uint32, tags []byte) {
	b.key = seriesKey(b.key[:0], id)
	b.b.Set(b.key, tags, nil)
}

// SetState records the checkpointed state of a series.
func (b *Batch) SetState(id uint32, snapshot []byte) {
	b.key = stateKey(b.key[:0], id)
	b.b.Set(b.key, snapshot, nil)
}

// SetBlock records a sealed block.
func (b *Batch) SetBlock(id uint32, period int64, data []byte) {
	b.key = blockKey(b.key[:0], period, id)
	b.b.Set(b.key, data, nil)
}

// SetStamp records the checkpoint stamp of a shard.
func (b *Batch) SetStamp(shard int, lsn uint64) {
	b.b.Set(stampKey(shard), binary.BigEndian.AppendUint64(nil, lsn), nil)
}

// DeleteSeries removes a series and its state. Its blocks go with retention.
func (b *Batch) DeleteSeries(id uint32) {
	b.key = seriesKey(b.key[:0], id)
	b.b.Delete(b.key, nil)
	b.key = stateKey(b.key[:0], id)
	b.b.Delete(b.key, nil)
}

// Len returns the size of the batch in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Commit applies the batch atomically. Without sync it may be lost in a
// crash until a later synced commit or Sync.
func (b *Batch) Commit(sync bool) (err error) {
	if err := b.d.Err(); err != nil {
		return err
	}
	defer b.d.trap.Recover(&err)
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.b.Commit(opts); err != nil {
		return fmt.Errorf("commit pebble batch: %w", err)
	}
	return b.b.Close()
}

// Sync makes every committed batch durable.
func (d *Disk) Sync() (err error) {
	if err := d.Err(); err != nil {
		return err
	}
	defer d.trap.Recover(&err)
	if err := d.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync pebble: %w", err)
	}
	return nil
}

// scan calls fn for every key with prefix, in order. k and v are only
// valid during the call.
func (d *Disk) scan(lower, upper []byte, fn func(k, v []byte) error) (err error) {
	if err := d.Err(); err != nil {
		return err
	}
	defer d.trap.Recover(&err)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("open iterator: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("read value: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterate: %w", err)
	}
	return nil
}

// Series calls fn with every series.
func (d *Disk) Series(fn func(id uint32, tags []byte) error) error {
	return d.scan([]byte{kindSeries}, []byte{kindSeries + 1}, func(k, v []byte) error {
		if len(k) != 5 {
			return fmt.Errorf("%w: series key of %d bytes", tsdb.ErrCorrupt, len(k))
		}
		return fn(binary.BigEndian.Uint32(k[1:]), v)
	})
}

// States calls fn with every series state.
func (d *Disk) States(fn func(id uint32, snapshot []byte) error) error {
	return d.scan([]byte{kindState}, []byte{kindState + 1}, func(k, v []byte) error {
		if len(k) != 5 {
			return fmt.Errorf("%w: state key of %d bytes", tsdb.ErrCorrupt, len(k))
		}
		return fn(binary.BigEndian.Uint32(k[1:]), v)
	})
}

// Blocks calls fn with every block of periods >= minPeriod.
func (d *Disk) Blocks(minPeriod int64, fn func(id uint32, period int64, data []byte) error) error {
	lower := blockKey(nil, minPeriod, 0)
	return d.scan(lower, []byte{kindBlock + 1}, func(k, v []byte) error {
		if len(k) != 13 {
			return fmt.Errorf("%w: block key of %d bytes", tsdb.ErrCorrupt, len(k))
		}
		period := int64(binary.BigEndian.Uint64(k[1:]) ^ (1 << 63))
		return fn(binary.BigEndian.Uint32(k[9:]), period, v)
	})
}

// BlockSeries calls fn with the id of every block of periods [minP, maxP],
// period by period, ids increasing within a period. It reads keys only:
// listing the series with data in a window needs no block's bytes.
func (d *Disk) BlockSeries(minP, maxP int64, fn func(id uint32) error) (err error) {
	if err := d.Err(); err != nil {
		return err
	}
	if maxP < minP {
		return nil
	}
	defer d.trap.Recover(&err)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: blockKey(nil, minP, 0), UpperBound: blockKey(nil, maxP+1, 0)})
	if err != nil {
		return fmt.Errorf("open iterator: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 13 {
			it.Close()
			return fmt.Errorf("%w: block key of %d bytes", tsdb.ErrCorrupt, len(k))
		}
		if err := fn(binary.BigEndian.Uint32(k[9:])); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterate: %w", err)
	}
	return nil
}

// Stamps returns the checkpoint stamp of each shard (0 when none).
func (d *Disk) Stamps(shards int) ([]uint64, error) {
	out := make([]uint64, shards)
	err := d.scan([]byte{kindStamp}, []byte{kindStamp + 1}, func(k, v []byte) error {
		if len(k) != 2 || len(v) != 8 {
			return fmt.Errorf("%w: bad stamp record", tsdb.ErrCorrupt)
		}
		if int(k[1]) < shards {
			out[k[1]] = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return out, err
}

// Block returns a copy of one block, or nil if there is none.
func (d *Disk) Block(id uint32, period int64) (_ []byte, err error) {
	if err := d.Err(); err != nil {
		return nil, err
	}
	defer d.trap.Recover(&err)
	v, closer, err := d.db.Get(blockKey(nil, period, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read block: %w", err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// DeleteBefore deletes the blocks of periods before p.
func (d *Disk) DeleteBefore(p int64) error {
	if err := d.Err(); err != nil {
		return err
	}
	if err := d.db.DeleteRange([]byte{kindBlock}, blockKey(nil, p, 0), pebble.NoSync); err != nil {
		return fmt.Errorf("delete old blocks: %w", err)
	}
	return nil
}

// OldestPeriod returns the oldest period with a block, and false if none.
func (d *Disk) OldestPeriod() (int64, bool, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindBlock}, UpperBound: []byte{kindBlock + 1}})
	if err != nil {
		return 0, false, fmt.Errorf("open iterator: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return 0, false, it.Error()
	}
	k := it.Key()
	if len(k) != 13 {
		return 0, false, fmt.Errorf("%w: block key of %d bytes", tsdb.ErrCorrupt, len(k))
	}
	return int64(binary.BigEndian.Uint64(k[1:]) ^ (1 << 63)), true, nil
}

// PeriodReader reads the blocks of one period for increasing series ids,
// reusing one iterator: a query over many series reads each period in a
// single forward pass.
type PeriodReader struct {
	it     *pebble.Iterator
	period int64
	key    []byte
}

// NewPeriodReader returns a reader of period p. Close it when done.
func (d *Disk) NewPeriodReader(p int64) (*PeriodReader, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{
		LowerBound: blockKey(nil, p, 0),
		UpperBound: blockKey(nil, p+1, 0),
	})
	if err != nil {
		return nil, fmt.Errorf("open iterator: %w", err)
	}
	return &PeriodReader{it: it, period: p}, nil
}

// Block returns the block of series id, valid until the next call, or nil.
// Ids must not decrease between calls.
func (r *PeriodReader) Block(id uint32) ([]byte, error) {
	r.key = blockKey(r.key[:0], r.period, id)
	if !r.it.SeekGE(r.key) || !bytes.Equal(r.it.Key(), r.key) {
		return nil, r.it.Error()
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("read block: %w", err)
	}
	return v, nil
}

// Close releases the reader.
func (r *PeriodReader) Close() error { return r.it.Close() }

// Size returns the bytes the store occupies on disk.
func (d *Disk) Size() uint64 {
	return d.db.Metrics().DiskSpaceUsage()
}

// Flush writes Pebble's memtable out to a table (tests use it to put data
// in tables).
func (d *Disk) Flush() (err error) {
	if err := d.Err(); err != nil {
		return err
	}
	defer d.trap.Recover(&err)
	return d.db.Flush()
}
