package spanstore

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb/fatal"
)

// Options configure a Store.
type Options struct {
	// Retention is how long spans are kept (by end time); default 7 days.
	Retention time.Duration
	// MaxBytes caps the store's size on disk: past it, the oldest hours
	// go early. Default 10 GiB; negative for no cap.
	MaxBytes int64
	// CacheSize is Pebble's block cache; default 64 MiB.
	CacheSize int64
	// FS is the file system; nil means the OS. Tests pass vfs.NewMem().
	FS vfs.FS
	// Now is the clock; default (nil) the system clock.
	Now      lib.Clock
	Logger   *slog.Logger
	Registry *lib.Registry
	// RetentionEvery is how often retention runs; default 1 minute.
	RetentionEvery time.Duration
	// MaxEdgeSpans bounds the spans remembered to pair parents with
	// children across writes (dependencies); default 1 M.
	MaxEdgeSpans int
	// OnFail is called once when Pebble reports a fatal error or corrupt
	// data: the store has failed and refuses every operation (Err).
	OnFail func(error)
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 10 << 30
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = time.Minute
	}
	if o.MaxEdgeSpans <= 0 {
		o.MaxEdgeSpans = 1 << 20
	}
	return o
}

// Store is the span store. Safe for concurrent use.
type Store struct {
	opts    Options
	db      *pebble.DB
	trap    *fatal.Trap
	seq     atomic.Uint64 // last block sequence number
	closed  atomic.Bool
	writers sync.Pool // *blockWriter
	edges   *edgeTracker
	dict    dictTracker
	// partitions is the partition count of the cluster span log the store
	// is fed from (SetPartitions); 0 on a single node.
	partitions atomic.Int64

	mu struct {
		sync.Mutex
		ops   map[opID]uint32 // catalog: every (service, kind, operation) seen, and the latest hour of its spans
		hours map[uint32]bool // hours that have search entries
	}
	// marks are the newest marks of the log partitions the store applies
	// (tracing.MarkedWriter), as in its `p` keys; a lock of their own,
	// taken only after a commit and by Marked.
	marks struct {
		sync.Mutex
		m map[markID]int64
	}

	stop chan struct{}
	done chan struct{}

	m struct {
		spans, writes *lib.Counter
		writeLatency  *lib.PercentileTimer
		expired       *lib.Counter
	}
}

type opID struct {
	service, name string
	kind          tracing.SpanKind
}

var (
	_ tracing.Writer                    = (*Store)(nil)
	_ tracing.Reader                    = (*Store)(nil)
	_ tracing.Catalog                   = (*Store)(nil)
	_ tracing.DependencyReader          = (*Store)(nil)
	_ tracing.DependencyPartitionReader = (*Store)(nil)
	_ tracing.ExemplarStore             = (*Store)(nil)
	_ tracing.MarkedWriter              = (*Store)(nil)
)

// Open opens or creates the store in dir and starts its retention.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	trap := fatal.New("spanstore", opts.Logger, opts.OnFail)
	po := &pebble.Options{
		FS: opts.FS, Cache: cache, Logger: trap,
		EventListener: &pebble.EventListener{
			DataCorruption: func(info pebble.DataCorruptionInfo) { trap.Corruption(info.Path, info.Details) },
		},
		// Span blocks are large and written once: bigger memtables mean
		// fewer, larger L0 files and less compaction work per byte.
		MemTableSize: 32 << 20,
	}
	db, err := openPebble(dir, po, trap)
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", dir, err)
	}
	s := &Store{opts: opts, db: db, trap: trap, edges: newEdgeTracker(opts.MaxEdgeSpans), stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.ops = map[opID]uint32{}
	s.mu.hours = map[uint32]bool{}
	s.marks.m = map[markID]int64{}
	s.writers.New = func() any { return new(blockWriter) }
	if err := s.guarded(s.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("load span store in %s: %w", dir, err)
	}
	reg := opts.Registry
	s.m.spans = reg.Counter("sextant.traces.spansStored")
	s.m.writes = reg.Counter("sextant.traces.writes")
	s.m.writeLatency = reg.PercentileTimer("sextant.traces.writeLatency")
	s.m.expired = reg.Counter("sextant.traces.blocksExpired")
	reg.FuncGauge(func() float64 { return float64(s.diskSize()) }, "sextant.traces.diskBytes")
	go s.retentionLoop()
	return s, nil
}

// openPebble opens Pebble, turning a fatal error during the open (a
// corrupt manifest or table) into an error.
func openPebble(dir string, po *pebble.Options, trap *fatal.Trap) (_ *pebble.DB, err error) {
	defer trap.Recover(&err)
	return pebble.Open(dir, po)
}

// guarded runs fn, turning a fatal Pebble error into its error.
func (s *Store) guarded(fn func() error) (err error) {
	defer s.trap.Recover(&err)
	return fn()
}

// Err returns the error that failed the store (a fatal Pebble error or
// corrupt data), or nil.
func (s *Store) Err() error { return s.trap.Err() }

// load checks the format version and reads the catalog, the last
// sequence number and the marks.
func (s *Store) load() error {
	key := []byte{kindMeta}
	v, closer, err := s.db.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(key, []byte{FormatVersion}, pebble.Sync); err != nil {
			return fmt.Errorf("write meta: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read meta: %w", err)
	default:
		ok := len(v) == 1 && v[0] == FormatVersion
		closer.Close()
		if !ok {
			return fmt.Errorf("spanstore: data format %v, this build reads version %d", v, FormatVersion)
		}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindBlock}, UpperBound: []byte{kindBlock + 1}})
	if err != nil {
		return err
	}
	if it.Last() && len(it.Key()) == 9 {
		s.seq.Store(binary.BigEndian.Uint64(it.Key()[1:]))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read last block: %w", err)
	}
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindOp}, UpperBound: []byte{kindOp + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		if id, ok := parseOpKey(it.Key()); ok {
			h := uint32(0)
			if v := it.Value(); len(v) == 4 {
				h = binary.BigEndian.Uint32(v)
			}
			s.mu.ops[id] = h
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read operations: %w", err)
	}
	// The hours with search entries: one seek per hour present.
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindSearch}, UpperBound: []byte{kindSearch + 1}})
	if err != nil {
		return err
	}
	for ok := it.First(); ok && len(it.Key()) >= 5; {
		h := binary.BigEndian.Uint32(it.Key()[1:5])
		s.mu.hours[h] = true
		if h == math.MaxUint32 {
			break
		}
		ok = it.SeekGE(binary.BigEndian.AppendUint32([]byte{kindSearch}, h+1))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("read search hours: %w", err)
	}
	return s.loadMarks()
}

// searchHours returns the hours in [lo, hi] that have search entries,
// newest first.
func (s *Store) searchHours(lo, hi uint32) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint32
	for h := range s.mu.hours {
		if h >= lo && h <= hi {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b uint32) int { return cmp.Compare(b, a) })
	return out
}

func parseOpKey(k []byte) (opID, bool) {
	k = k[1:]
	i := slices.Index(k, 0)
	if i < 0 || i+2 > len(k) {
		return opID{}, false
	}
	return opID{service: string(k[:i]), kind: tracing.SpanKind(k[i+1]), name: string(k[i+2:])}, true
}

// Close stops retention and closes the store. Writes after Close fail
// with tracing.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.done
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// WriteTraces implements tracing.Writer: the spans, their index entries
// and the dependency edges they complete go into one Pebble batch,
// committed with a sync (Pebble groups the syncs of concurrent commits).
func (s *Store) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	return s.writeTraces(ctx, td, nil)
}

// writeTraces writes td's spans and, when m is not nil, the mark m in
// the same batch (mark.go).
func (s *Store) writeTraces(ctx context.Context, td ptrace.Traces, m *tracing.Mark) (err error) {
	if s.closed.Load() {
		return tracing.ErrClosed
	}
	if err := s.trap.Err(); err != nil {
		return err
	}
	defer s.trap.Recover(&err)
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	w := s.writers.Get().(*blockWriter)
	defer s.writers.Put(w)
	w.reset()
	w.encode(td)
	if len(w.meta) == 0 {
		if m != nil {
			return s.commitMark(*m)
		}
		return nil
	}
	seq := s.seq.Add(1)
	b := s.db.NewBatchWithSize(len(w.spans) + len(w.procs) + 64*len(w.meta))
	defer b.Close()
	if m != nil {
		b.Set(markKey(m.Log, m.Partition), appendMarkValue(nil, m.Next), nil)
	}
	blk := w.assemble()
	b.Set(blockKey(seq), blk, nil)
	maxEnd, hours := s.indexEntries(b, w, seq)
	b.Set(expiryKey(hourOf(maxEnd), seq), nil, nil)
	s.catalog(b, w)
	parts := int(s.partitions.Load())
	for e, n := range s.edges.observe(w.meta, parts) {
		var cnt [binary.MaxVarintLen64]byte
		b.Set(depKey(e.minute, seq, e.parent, e.child, parts, e.part), cnt[:binary.PutUvarint(cnt[:], uint64(n))], nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit spans: %w", err)
	}
	if m != nil {
		s.setMark(*m)
	}
	s.mu.Lock()
	for _, h := range hours {
		s.mu.hours[h] = true
	}
	s.mu.Unlock()
	s.m.spans.Add(float64(len(w.meta)))
	s.m.writes.Increment()
	s.m.writeLatency.Record(time.Since(start))
	return nil
}

// indexEntries adds the trace and search entries of a block's spans and
// returns the latest span end and the hours of the search entries.
func (s *Store) indexEntries(b *pebble.Batch, w *blockWriter, seq uint64) (maxEnd int64, hours []uint32) {
	// Spans of one trace, then of one service, are adjacent after sorting
	// their indexes; the block's order stays as it was.
	idx := make([]int32, len(w.meta))
	for i := range idx {
		idx[i] = int32(i)
	}
	meta := w.meta
	slices.SortFunc(idx, func(a, c int32) int {
		ma, mc := &meta[a], &meta[c]
		if r := compareIDs(ma.trace, mc.trace); r != 0 {
			return r
		}
		if ma.service != mc.service {
			if ma.service < mc.service {
				return -1
			}
			return 1
		}
		return int(a - c)
	})
	var key, val []byte
	for i := 0; i < len(idx); {
		j := i
		tr := meta[idx[i]].trace
		minStart, tmax := meta[idx[i]].start, meta[idx[i]].end
		for j < len(idx) && meta[idx[j]].trace == tr {
			m := &meta[idx[j]]
			minStart, tmax = min(minStart, m.start), max(tmax, m.end)
			j++
		}
		maxEnd = max(maxEnd, tmax)
		// t traceID seq → minStart, span, the block's span indexes.
		val = binary.AppendUvarint(val[:0], uint64(minStart))
		val = binary.AppendUvarint(val, uint64(tmax-minStart))
		val = binary.AppendUvarint(val, uint64(j-i))
		for _, x := range idx[i:j] {
			val = binary.AppendUvarint(val, uint64(x))
		}
		key = traceKey(key[:0], tr, seq)
		b.Set(key, val, nil)
		// One search entry per service of the trace.
		for k := i; k < j; {
			l := k
			svc := meta[idx[k]].service
			sMin := meta[idx[k]].start
			for l < j && meta[idx[l]].service == svc {
				sMin = min(sMin, meta[idx[l]].start)
				l++
			}
			val = appendDigests(val[:0], w, idx[k:l], sMin)
			s.dict.add(b, hourOf(sMin), w, idx[k:l])
			if h := hourOf(sMin); !slices.Contains(hours, h) {
				hours = append(hours, h)
			}
			key = searchKey(key[:0], hourOf(sMin), svc, sMin, tr, seq)
			b.Set(key, val, nil)
			k = l
		}
		i = j
	}
	return maxEnd, hours
}

func compareIDs(a, b tracing.TraceID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// catalog records operations not seen before, and the latest hour of
// each operation's spans (retention drops operations with no spans left),
// writing at most once per operation and hour.
func (s *Store) catalog(b *pebble.Batch, w *blockWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range w.meta {
		m := &w.meta[i]
		id := opID{service: m.service, name: m.name, kind: m.kind}
		h := hourOf(m.end)
		if last, ok := s.mu.ops[id]; ok && last >= h {
			continue
		}
		// Recorded before the commit: if the commit fails, the operation
		// is listed a while without spans.
		s.mu.ops[id] = h
		b.Set(opKey(m.service, m.kind, m.name), binary.BigEndian.AppendUint32(nil, h), nil)
	}
}

// diskSize is Pebble's estimate of the store's bytes on disk.
func (s *Store) diskSize() int64 {
	if s.closed.Load() {
		return 0
	}
	return int64(s.db.Metrics().DiskSpaceUsage())
}
