package head

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/index"
	"github.com/sextant-dev/sextant/tsdb/norm"
)

// Shards is the number of series map stripes. A series' shard is chosen by
// its tag hash; every write to a series happens under its shard's lock.
const (
	shardBits = 6
	Shards    = 1 << shardBits
	localBits = 32 - shardBits
	maxLocal  = 1<<localBits - 1
)

// Options configure a Head.
type Options struct {
	Step       int64 // storage step, ms
	BlockSteps int   // steps per block; default 120, at most chunk.MaxOpenSlots
	// MaxAge and MaxFuture bound accepted timestamps relative to Now.
	MaxAge    int64 // ms; default 1h
	MaxFuture int64 // ms; default 5m
	// MaxSeries and MaxSeriesPerName are the cardinality guard: new series
	// beyond them are rejected; existing series keep working.
	MaxSeries        int // default 10 000 000
	MaxSeriesPerName int // default 1 000 000
	// SealDelay is how long after its period ends a block that got no newer
	// data is sealed anyway. Default two steps.
	SealDelay int64
	// Log, when set, receives every shard's WAL record while the shard is
	// locked, so that the log order of a shard's records is their apply
	// order. It returns the record's LSN.
	Log func(rec []byte) (uint64, error)
	// LoadBlock, when set, reads a persisted block of a period older than
	// MinPeriod, so that a late write there (only replay makes them) merges
	// into it. It returns nil when there is none.
	LoadBlock func(id uint32, period int64) ([]byte, error)
	Now       func() int64 // Unix ms; injected so tests control time
	Logger    *slog.Logger
	Registry  *lib.Registry
}

func (o Options) withDefaults() Options {
	if o.BlockSteps <= 0 {
		o.BlockSteps = 120
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 3600_000
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = 300_000
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = 10_000_000
	}
	if o.MaxSeriesPerName <= 0 {
		o.MaxSeriesPerName = 1_000_000
	}
	if o.SealDelay <= 0 {
		o.SealDelay = 2 * o.Step
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Step <= 0:
		return fmt.Errorf("head: step %dms must be positive", o.Step)
	case o.BlockSteps <= 0 || o.BlockSteps > chunk.MaxOpenSlots:
		return fmt.Errorf("head: block steps %d out of 1..%d", o.BlockSteps, chunk.MaxOpenSlots)
	case o.Now == nil:
		return errors.New("head: no clock")
	case o.Step*int64(o.BlockSteps) < 60_000:
		// Periods are stored in 32 bits; one-minute blocks reach year 6000.
		return fmt.Errorf("head: blocks of %d steps of %dms are shorter than a minute", o.BlockSteps, o.Step)
	}
	return nil
}

// Head is the in-memory part of the store: the series, their normalization
// state, the open block of each series and its recent sealed blocks, and the
// tag index. It is safe for concurrent use.
type Head struct {
	opts     Options
	blockDur int64 // ms per block
	index    *index.Index
	pairs    *pairTable // the tags of the series (head_tags.go)
	shards   [Shards]shard

	numSeries atomic.Int64
	names     struct {
		sync.Mutex
		counts map[string]int
	}
	// epoch is Options.Now at New, in ms: memSeries.wrote counts seconds
	// from it.
	epoch int64
	// minPeriod is the oldest period kept in memory; older blocks live only
	// on disk. Late writes never reach below it (MaxAge is validated against
	// the memory retention).
	minPeriod atomic.Int64

	// tagCompactMin is the dead bytes of a shard's tag slab below which it
	// is not compacted: tagCompactMin, lowered by tests.
	tagCompactMin int

	scratch  sync.Pool // *appendScratch
	scanPool sync.Pool // *scanScratch

	m metrics
}

// shard is one stripe of the series map. Its fields are guarded by mu,
// which the append path holds across a run of datapoints (never across I/O
// other than the WAL's in-memory Log).
type shard struct {
	mu struct {
		sync.Mutex
		series  []*memSeries // by local index; nil once deleted
		arena   []memSeries  // where new series are allocated (allocSeriesLocked)
		byHash  seriesTable  // tag hash → local index (head_table.go)
		tags    tagSlab      // the series' tag ids (head_table.go, head_tags.go)
		ids     []byte       // scratch of newSeriesLocked
		dirty   []uint32     // series changed since the last checkpoint
		created []uint32     // series created since the last checkpoint
		enc     chunk.Encoder
		vals    []float64
		buf     []byte
		// late holds the late blocks (head_late.go) by local index: the
		// open blocks of older periods of the few series written there.
		late  map[uint32]*lateBlock
		spare []*lateBlock // sealed late blocks kept for reuse
	}
	persist bool       // checkpoints happen: track what they must write
	pairs   *pairTable // the head's, where the series' tags are (head_tags.go)
	_       [64]byte   // keep shards' locks on separate cache lines
}

// memSeries is one series. Guarded by its shard's lock, except id and
// dstype, which never change.
//
// It is 144 bytes, a size class of Go's allocator, and every series holds
// one: the fields are ordered so that the small ones share words, and the
// tags are a ref into the shard's slab rather than a slice
// (TestSeriesSize).
type memSeries struct {
	tags   uint32 // ref in the shard's tagSlab of the ids of its tags (head_tags.go)
	id     uint32
	dstype tsdb.DSType
	// hasOpen: the open block holds period's data.
	hasOpen bool
	dirty   bool  // in shard.dirty
	late    uint8 // lateOpen, lateProne and reopened bits (head_late.go)
	// wrote is when the series last got a write, in wall-clock seconds
	// since the head's epoch (Options.Now at New): SealIdle leaves alone
	// the open blocks of series written within SealDelay, however old
	// their period (a backfill).
	wrote uint32

	norm   norm.State
	open   chunk.Open
	period int64 // the open block's period, valid if hasOpen
	// sealed blocks in memory, oldest first. Their data is immutable: a late
	// write re-encodes into a new slice, so readers may use it unlocked.
	sealed []sealedBlock
	lastT  int64
}

// sealedBlock is kept small (32 bytes): every series holds a dozen of them
// with the default 24 h memory window.
type sealedBlock struct {
	data      []byte
	per       int32 // the period; fits: blocks are at least a minute long
	persisted bool
	// late: the period's values are in the shard's late block of the
	// series (head_late.go), and data is nil. It fits in the padding.
	late bool
}

func (b sealedBlock) period() int64 { return int64(b.per) }

type metrics struct {
	appended *lib.Counter
	rejected [tsdb.NumReasons]*lib.Counter
	created  *lib.Counter
	sealed   *lib.Counter
	late     *lib.Counter
	// reencoded counts the blocks of a period sealed before that were
	// encoded again (see head_late.go).
	reencoded *lib.Counter
}

// New returns an empty head.
func New(opts Options) (*Head, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := &Head{
		opts:     opts,
		blockDur: opts.Step * int64(opts.BlockSteps),
		index:    index.New(),
		pairs:    newPairTable(),
		epoch:    opts.Now(),

		tagCompactMin: tagCompactMin,
	}
	h.minPeriod.Store(-1 << 62)
	h.names.counts = make(map[string]int)
	for i := range h.shards {
		h.shards[i].persist = opts.Log != nil
		h.shards[i].pairs = h.pairs
		h.shards[i].mu.late = make(map[uint32]*lateBlock)
	}
	h.scratch.New = func() any { return &appendScratch{} }
	r := opts.Registry
	h.m.appended = r.Counter("sextant.tsdb.datapointsAppended")
	for reason := tsdb.Reason(1); reason < tsdb.NumReasons; reason++ {
		h.m.rejected[reason] = r.Counter("sextant.tsdb.datapointsRejected", "reason", reason.String())
	}
	h.m.created = r.Counter("sextant.tsdb.seriesCreated")
	h.m.sealed = r.Counter("sextant.tsdb.blocksSealed")
	h.m.late = r.Counter("sextant.tsdb.lateWrites")
	h.m.reencoded = r.Counter("sextant.tsdb.blocksReencoded")
	r.FuncGauge(func() float64 { return float64(h.numSeries.Load()) }, "sextant.tsdb.series")
	return h, nil
}

// Step returns the storage step in ms.
func (h *Head) Step() int64 { return h.opts.Step }

// BlockDuration returns the time span of one block in ms.
func (h *Head) BlockDuration() int64 { return h.blockDur }

// BlockSteps returns the steps per block.
func (h *Head) BlockSteps() int { return h.opts.BlockSteps }

// Index returns the tag index. Callers must not modify it.
func (h *Head) Index() *index.Index { return h.index }

// NumSeries returns the number of series.
func (h *Head) NumSeries() int { return int(h.numSeries.Load()) }

// SetMinPeriod sets the oldest period kept in memory (see DropBefore).
func (h *Head) SetMinPeriod(p int64) { h.minPeriod.Store(p) }

// MinPeriod returns the oldest period kept in memory.
func (h *Head) MinPeriod() int64 { return h.minPeriod.Load() }

// tagHash hashes a canonical tag encoding. It must not change across
// restarts: a series' shard, which its id encodes, is chosen by it. (A
// random per-process seed, as hash/maphash uses, would send lookups for
// restored series to the wrong shard.)
func tagHash(enc []byte) uint64 { return xxhash.Sum64(enc) }

// id layout: the shard in the top shardBits bits, the index within the
// shard below. Refs are ids + 1 so that the zero ref is invalid.
func makeID(shard int, local uint32) uint32 { return uint32(shard)<<localBits | local }

func splitID(id uint32) (shard int, local uint32) {
	return int(id >> localBits), id & maxLocal
}

// Ref returns the SeriesRef of an id.
func Ref(id uint32) tsdb.SeriesRef { return tsdb.SeriesRef(id) + 1 }

// ID returns the id of a SeriesRef, and false for refs that cannot be ids.
func ID(ref tsdb.SeriesRef) (uint32, bool) {
	if ref == 0 || ref > 1<<32 {
		return 0, false
	}
	return uint32(ref - 1), true
}

// period returns the block period of a step boundary t and its slot.
func (h *Head) period(t int64) (int64, int) {
	k := floorDiv(t, h.opts.Step)
	p := floorDiv(k, int64(h.opts.BlockSteps))
	return p, int(k - p*int64(h.opts.BlockSteps))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// wallSec returns the wall-clock time now (ms) in seconds since the
// head's epoch, as memSeries.wrote keeps it; 0 before the epoch (a clock
// set back).
func (h *Head) wallSec(now int64) uint32 {
	d := (now - h.epoch) / 1000
	switch {
	case d <= 0:
		return 0
	case d > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(d)
}

// seriesChunk is how many series allocSeriesLocked allocates at once: 128
// of 144 bytes, 18 KiB, one of Go's size classes.
const seriesChunk = 128

// allocSeriesLocked returns a zero memSeries for a new series of s. Series
// are allocated seriesChunk at a time: at a million series, a million
// objects of their own made each collection's marking pass one object at a
// time over them (docs/benchmarks.md, "Memory per series at a million
// series"); in chunks it is 8 000 objects. A chunk stays allocated while
// any of its series lives (s.mu.series points into it): series created
// together mostly go stale together.
func (s *shard) allocSeriesLocked() *memSeries {
	if len(s.mu.arena) == cap(s.mu.arena) {
		s.mu.arena = make([]memSeries, 0, seriesChunk)
	}
	s.mu.arena = s.mu.arena[:len(s.mu.arena)+1]
	return &s.mu.arena[len(s.mu.arena)-1]
}

// appendTagsLocked appends the canonical tag encoding of ms, a series of
// s, to dst.
func (s *shard) appendTagsLocked(dst []byte, ms *memSeries) []byte {
	return s.pairs.appendTags(dst, s.mu.tags.get(ms.tags))
}

// tagsEqualLocked reports whether enc is the canonical tag encoding of ms,
// a series of s.
func (s *shard) tagsEqualLocked(ms *memSeries, enc []byte) bool {
	return s.pairs.equal(s.mu.tags.get(ms.tags), enc)
}

// seriesLocked returns the series with local index l of shard s, or nil.
func (s *shard) seriesLocked(l uint32) *memSeries {
	if int(l) < len(s.mu.series) {
		return s.mu.series[l]
	}
	return nil
}

// markDirtyLocked records that ms changed since the last checkpoint. A
// store in memory only never checkpoints and keeps no such list.
func (s *shard) markDirtyLocked(ms *memSeries, local uint32) {
	if !s.persist {
		return
	}
	if !ms.dirty {
		ms.dirty = true
		s.mu.dirty = append(s.mu.dirty, local)
	}
}
