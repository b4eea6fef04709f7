package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/disk"
	"github.com/sextant-dev/sextant/tsdb/head"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Fetch implements tsdb.Querier.
func (db *DB) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	if err := req.Validate(db.opts.Step); err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() { db.m.fetchLatency.Record(time.Since(start)) }()
	lo, hi, err := db.dataPeriods()
	if err != nil {
		return nil, err
	}
	f := newFetch(db, &req, lo, hi)
	ids, err := db.selectFor(ctx, &req)
	if err != nil {
		return nil, err
	}
	if req.Partitions != nil {
		ids = &selected{bm: db.inPartitions(ids.bitmap(), req.Partitions)}
	}
	cost := f.cost(ids.card())
	if req.Admit != nil {
		if err := req.Admit(cost); err != nil {
			return nil, err
		}
	}
	if err := cost.Exceeds(tsdb.Cost{Series: db.opts.MaxSeriesPerQuery, Datapoints: db.opts.MaxDatapointsPerQuery,
		Bytes: db.opts.MaxBytesPerQuery}); err != nil {
		return nil, err
	}
	if err := f.run(ctx, ids); err != nil {
		return nil, err
	}
	return f.result(), nil
}

// selectIDs returns the series matching q. Backtracking regexes run
// outside the index lock within RegexBudget; running out is a LimitError.
func (db *DB) selectIDs(ctx context.Context, q *tags.Query) (*roaring.Bitmap, error) {
	ids, err := db.head.Index().SelectContext(ctx, q, db.opts.RegexBudget)
	var be *tags.RegexBudgetError
	if errors.As(err, &be) {
		return nil, &tsdb.LimitError{Limit: "max-regex-time-per-query", Max: int(db.opts.RegexBudget.Milliseconds()),
			Got: int(db.opts.RegexBudget.Milliseconds()) + 1, Detail: be.Error()}
	}
	return ids, err
}

// inPartitions returns the series of ids in the wanted partitions. It
// hashes each series' tags, once per query: cheap next to reading the
// series' blocks.
func (db *DB) inPartitions(ids *roaring.Bitmap, p *tsdb.Partitions) *roaring.Bitmap {
	mask := p.Mask()
	out := roaring.New()
	it := ids.Iterator()
	var enc []byte
	for it.HasNext() {
		id := it.Next()
		var ok bool
		if enc, ok = db.head.AppendSeriesTags(enc[:0], id); ok && mask[tags.PartitionOfEncoded(enc, p.N)] {
			out.Add(id)
		}
	}
	return out
}

// dataPeriods returns the oldest and newest periods that may hold data:
// the oldest block on disk or in memory, and the period of now plus the
// allowed future skew. A fetch spends nothing on periods outside them, so a
// range starting in 1970 costs what the data costs.
func (db *DB) dataPeriods() (lo, hi int64, err error) {
	bs := int64(db.head.BlockSteps())
	lo = db.head.MinPeriod()
	if db.disk != nil {
		p, ok, err := db.disk.OldestPeriod()
		if err != nil {
			return 0, 0, fmt.Errorf("find the oldest block: %w", err)
		}
		if ok {
			lo = min(lo, p)
		}
	}
	hi = floorDiv(floorDiv(db.opts.Now()+db.opts.MaxFuture, db.opts.Step), bs) + 1
	return lo, hi, nil
}

// cost is what the fetch needs for n matched series, by the measures of
// the query limits; the datapoints (series × primaries) saturate at the
// largest int rather than overflow.
func (f *fetch) cost(n int) tsdb.Cost {
	dp := n * len(f.prim)
	if len(f.prim) > 0 && dp/len(f.prim) != n {
		dp = math.MaxInt
	}
	return tsdb.Cost{Series: n, Datapoints: dp, Bytes: int(min(f.bytesNeeded(n), math.MaxInt))}
}

// bytesNeeded estimates the memory the fetch holds at most for n matched
// series: the scratch arrays, and one output line per series (or per
// group, at most one per series).
func (f *fetch) bytesNeeded(n int) int64 {
	lines := int64(n)
	if f.req.Aggregation != tsdb.AggNone && len(f.req.GroupBy) == 0 {
		lines = min(lines, 1)
	}
	per := int64(f.n) * 8
	if f.req.Aggregation != tsdb.AggNone {
		per += int64(f.cnt) * 12 // the aggregator's values and counts
	}
	return int64(len(f.prim)+len(f.out))*8 + lines*per
}

// fetch is the state of one Fetch.
type fetch struct {
	db  *DB
	req *tsdb.FetchRequest
	m   int   // primaries per output point
	n   int   // output points of the request
	off int   // output points before the first that can have data
	cnt int   // output points that can have data, from off
	k0  int64 // global step index of the first primary (of output point off)
	// pmin..pmax are the periods the primaries span.
	pmin, pmax int64
	prim       []float64 // primaries of the current series (dec's)
	out        []float64 // consolidated values of the current series
	dec        decoder   // places the blocks of series read on this goroutine
	work       *worker   // decodes part of each batch on a second goroutine; nil until needed
	splits     int       // batches split with the worker, or read by segments on two goroutines
	// segs, when set, are the parts of the range each batch is read in,
	// by time (fetch_segment.go); aggs holds the aggregator of each series
	// of the last two batches (flip says which is the newer), and pipe the
	// batches being read and the second goroutine reading them.
	segs   []segment
	aggs   [2][]*aggregator
	flip   int
	pipe   segPipe
	second sync.WaitGroup

	readers map[int64]*disk.PeriodReader // disk periods, older than memory

	series []tsdb.Series          // AggNone
	groups map[string]*fetchGroup // aggregates, by group key
	keyBuf []byte
	stats  tsdb.Stats
}

type fetchGroup struct {
	tags tags.Set
	agg  *aggregator
}

func newFetch(db *DB, req *tsdb.FetchRequest, lo, hi int64) *fetch {
	step := db.opts.Step
	f := &fetch{db: db, req: req, m: int(req.Step / step), n: req.Points()}
	bs := int64(db.head.BlockSteps())
	m := int64(f.m)
	// Output point T covers the primaries (T-Step, T]: the first primary is
	// Start-Step+step. Output point i covers primaries k0+i*m ... k0+i*m+m-1.
	k0 := floorDiv(req.Start-req.Step+step, step)
	// Only the output points whose primaries meet periods lo..hi can have
	// data; the others stay NaN and cost nothing.
	iLo := max(0, floorDiv(lo*bs-k0, m))
	iHi := min(int64(f.n)-1, floorDiv((hi+1)*bs-1-k0, m))
	if iHi >= iLo {
		f.off, f.cnt = int(iLo), int(iHi-iLo+1)
	}
	f.k0 = k0 + int64(f.off)*m
	f.prim = make([]float64, f.cnt*f.m)
	f.out = make([]float64, f.cnt)
	f.pmin = floorDiv(f.k0, bs)
	f.pmax = floorDiv(f.k0+int64(len(f.prim))-1, bs)
	f.dec = f.newDecoder(f.prim)
	if req.Aggregation != tsdb.AggNone {
		f.groups = make(map[string]*fetchGroup)
	}
	return f
}

// full returns vals (the output points off ... off+cnt-1) as a line of all
// n output points, NaN outside.
func (f *fetch) full(vals []float64) []float64 {
	out := make([]float64, f.n)
	for i := range out[:f.off] {
		out[i] = math.NaN()
	}
	copy(out[f.off:], vals)
	for i := f.off + len(vals); i < f.n; i++ {
		out[i] = math.NaN()
	}
	return out
}

func (f *fetch) run(ctx context.Context, sel *selected) (err error) {
	if len(f.prim) == 0 || sel.card() == 0 {
		return nil
	}
	if f.m == 1 && len(f.prim) == 1 && f.pmin >= f.db.head.MinPeriod() {
		// Fast path: one storage step in memory, such as the step the live
		// evaluator asks for when it closes: read its point, not blocks.
		if ok, err := f.runPoint(ctx, sel.array()); ok || err != nil {
			return err
		}
	}
	ids := sel.bitmap()
	// Periods older than the memory window are read from disk.
	if f.db.disk != nil {
		// Close what was opened, also when a later period fails to open.
		defer func() {
			for _, r := range f.readers {
				if cerr := r.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}
		}()
		minMem := f.db.head.MinPeriod()
		for p := f.pmin; p <= f.pmax && p < minMem; p++ {
			r, err := f.db.disk.NewPeriodReader(p)
			if err != nil {
				return err
			}
			if f.readers == nil {
				f.readers = make(map[int64]*disk.PeriodReader)
			}
			f.readers[p] = r
		}
	}
	if len(f.readers) == 0 {
		f.segs = f.segments(int(ids.GetCardinality()))
	}
	// Series are visited in id order even when grouping: ids follow
	// creation order within a shard, and so does memory; visiting them group
	// by group instead costs more in cache misses than the group lookup.
	// Each batch is read on up to two goroutines, split by time (see
	// batchSegments, which reads a batch while the head collects the next)
	// or by series (see batch); either way every point of an aggregate adds
	// its series in id order, so sums add in the same order whichever way
	// a batch was split.
	i := 0
	f.db.head.ScanAhead(ids, f.pmin, f.pmax, func(vs []head.View) bool {
		if i += len(vs); i >= 1024 {
			i = 0
			if err = ctx.Err(); err != nil {
				return false
			}
		}
		err = f.batch(vs)
		return err == nil
	}, func() {
		if ferr := f.finishSegments(); err == nil {
			err = ferr
		}
	})
	f.stats.DatapointsScanned += f.dec.points
	for i := range f.segs {
		f.stats.DatapointsScanned += f.segs[i].dec.points
	}
	f.db.putWorker(f)
	return err
}

// series1 reads, consolidates and aggregates or keeps one series on this
// goroutine.
func (f *fetch) series1(v *head.View) error {
	gkey, ok := f.groupKey(v.Tags)
	if !ok {
		return nil // lacks a group-by key
	}
	f.stats.SeriesScanned++
	dense, err := f.dec.placeSeries(v)
	if err != nil {
		return err
	}
	return f.emit(f.prim, v.Tags, v.DSType, gkey, dense)
}

// decoder is the scratch of one goroutine that places series' blocks into
// primaries: the fetch's own, or its worker's. It reads f and never writes
// it.
type decoder struct {
	f       *fetch
	k0      int64     // global step index of prim[0]
	pmin    int64     // the period of prim[0]; covered[0] is its
	prim    []float64 // primaries of the current series
	blk     []float64 // one decoded block
	covered []bool    // per period from pmin: the series has a block placed
	points  int       // datapoints scanned, for Stats
}

func (f *fetch) newDecoder(prim []float64) decoder {
	return decoder{f: f, k0: f.k0, pmin: f.pmin, prim: prim, blk: make([]float64, 0, f.db.head.BlockSteps()),
		covered: make([]bool, max(0, f.pmax-f.pmin+1))}
}

// placeSeries fills the primaries with the blocks of one series, from
// memory and disk, and reports whether every primary has a value.
func (d *decoder) placeSeries(v *head.View) (bool, error) {
	f := d.f
	clear(d.covered)
	dense := true // every primary has a value
	for _, b := range v.Blocks {
		if b.Period < d.pmin || b.Period-d.pmin >= int64(len(d.covered)) {
			continue // another segment's (fetch_segment.go)
		}
		ok, err := d.place(b.Period, b.Open, b.Data)
		if err != nil {
			return false, fmt.Errorf("series %d block %d: %w", v.ID, b.Period, err)
		}
		dense = dense && ok
		d.covered[b.Period-d.pmin] = true
	}
	for p, r := range f.readers {
		if d.covered[p-d.pmin] {
			continue // a block still in memory is at least as new
		}
		data, err := r.Block(v.ID)
		if err != nil {
			return false, err
		}
		if data != nil {
			ok, err := d.place(p, nil, data)
			if err != nil {
				return false, fmt.Errorf("series %d block %d on disk: %w", v.ID, p, err)
			}
			dense = dense && ok
			d.covered[p-d.pmin] = true
		}
	}
	// Periods without a block have no data: fill them with Missing rather
	// than filling everything up front, as blocks usually cover the range.
	bs := int64(f.db.head.BlockSteps())
	for i, ok := range d.covered {
		if !ok {
			dense = false
			first := (d.pmin + int64(i)) * bs
			lo, hi := max(first, d.k0), min(first+bs, d.k0+int64(len(d.prim)))
			for j := lo - d.k0; j < hi-d.k0; j++ {
				d.prim[j] = chunk.Missing
			}
		}
	}
	return dense, nil
}

// emit keeps or aggregates the primaries prim of one series (tags in
// canonical encoding); gkey names its group when grouping, dense says that
// every primary has a value.
func (f *fetch) emit(prim []float64, tagsEnc []byte, dstype tsdb.DSType, gkey []byte, dense bool) error {
	if f.groups == nil && !anyData(prim) {
		// Nothing in range: the series is not part of the answer, as if it
		// were not matched. (Aggregates need no check: such a series adds
		// nothing to them.)
		f.stats.SeriesScanned--
		return nil
	}
	vals := prim
	if f.m > 1 {
		consolidate(f.out, prim, f.m, f.req.CF, dstype.IsGauge())
		vals = f.out
	}
	if f.groups == nil {
		ts, err := tags.Decode(tagsEnc)
		if err != nil {
			return err
		}
		f.series = append(f.series, tsdb.Series{Tags: ts, DSType: dstype, Values: f.full(vals)})
		return nil
	}
	agg := f.group(gkey, tagsEnc).agg
	agg.series++
	// Consolidation may make NaNs: only primaries are known dense.
	agg.add(vals, 0, dense && f.m == 1)
	return nil
}

// group returns the group of key gkey, made from tagsEnc (a series of
// it, tags in canonical encoding) if it is new.
func (f *fetch) group(gkey, tagsEnc []byte) *fetchGroup {
	g := f.groups[string(gkey)]
	if g == nil {
		g = &fetchGroup{agg: newAggregator(f.req.Aggregation, f.cnt)}
		if len(f.req.GroupBy) > 0 {
			g.tags = f.groupTags(tagsEnc)
		}
		f.groups[string(gkey)] = g
	}
	return g
}

func anyData(vals []float64) bool {
	for _, v := range vals {
		if v == v {
			return true
		}
	}
	return false
}

// place copies the part of one block (an open block, or encoded data) that
// falls into the primaries. It reports whether that part has no gap.
func (d *decoder) place(period int64, open *chunk.Open, data []byte) (dense bool, err error) {
	f := d.f
	bs := int64(f.db.head.BlockSteps())
	first := period * bs // global step index of the block's slot 0
	lo, hi := max(first, d.k0), min(first+bs, d.k0+int64(len(d.prim)))
	if lo >= hi {
		return true, nil
	}
	dst := d.prim[lo-d.k0 : hi-d.k0]
	d.points += len(dst)
	whole := lo == first && hi == first+bs
	var values []float64
	var h chunk.Header
	switch {
	case open != nil && whole:
		// Fast path: the whole block lies in range; decode in place (dst's
		// capacity reaches at least to the block's end).
		open.Values(dst[:0], int(bs))
		return open.Dense(int(bs)), nil
	case open != nil:
		d.blk = open.Values(d.blk[:0], int(bs))
		values, dense = d.blk, open.Dense(int(hi-first))
	case whole:
		_, h, err = chunk.DecodeHeader(dst[:0], data)
		return h.Present == h.Points, err
	default:
		if d.blk, h, err = chunk.DecodeHeader(d.blk[:0], data); err != nil {
			return false, err
		}
		values, dense = d.blk, h.Present == h.Points
	}
	if int64(len(values)) < hi-first {
		return false, fmt.Errorf("%w: block of %d steps, want %d", tsdb.ErrCorrupt, len(values), bs)
	}
	copy(dst, values[lo-first:hi-first])
	return dense, nil
}

// groupKey returns the values of the group-by keys joined by 0 bytes, and
// false if the series lacks one (nil, true when not grouping).
func (f *fetch) groupKey(enc []byte) ([]byte, bool) {
	if f.groups == nil || len(f.req.GroupBy) == 0 {
		return nil, true
	}
	f.keyBuf = f.keyBuf[:0]
	for _, k := range f.req.GroupBy {
		v, ok := tags.ValueEncoded(enc, k)
		if !ok {
			return nil, false
		}
		f.keyBuf = append(f.keyBuf, v...)
		f.keyBuf = append(f.keyBuf, 0)
	}
	return f.keyBuf, true
}

func (f *fetch) groupTags(enc []byte) tags.Set {
	ts := make(tags.Set, 0, len(f.req.GroupBy))
	for _, k := range f.req.GroupBy {
		v, _ := tags.ValueEncoded(enc, k)
		ts = append(ts, tags.Tag{Key: k, Value: string(v)})
	}
	return ts.Normalize()
}

// result assembles the SeriesSet in a stable order.
func (f *fetch) result() *tsdb.SeriesSet {
	out := &tsdb.SeriesSet{Stats: f.stats}
	if f.groups == nil {
		out.Series = f.series
		slices.SortFunc(out.Series, func(a, b tsdb.Series) int { return compareTags(a.Tags, b.Tags) })
		return out
	}
	keys := make([]string, 0, len(f.groups))
	for k := range f.groups {
		keys = append(keys, k)
	}
	// Group keys are the values in GroupBy order, 0-separated: sorting them
	// orders groups by (k1=v1 k2=v2 ...), as Atlas labels them.
	slices.SortFunc(keys, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) })
	for _, k := range keys {
		g := f.groups[k]
		vals := g.agg.result()
		if f.off > 0 || len(vals) < f.n {
			vals = f.full(vals)
		} // else the aggregate is the whole line already, and f's to give
		out.Series = append(out.Series, tsdb.Series{Tags: g.tags, Values: vals})
	}
	return out
}

func compareTags(a, b tags.Set) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Key, b[i].Key); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
