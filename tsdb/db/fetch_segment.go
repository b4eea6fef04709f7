package db

import (
	"runtime"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/head"
)

// An aggregating fetch at the storage step whose range spans several
// blocks reads each batch of series by segments of time, a block or so
// each, on two goroutines: the fetch's own and one it starts for the
// batch and waits for. A goroutine claims a segment, places that part of
// every series of the batch, in id order, and adds it straight into the
// segment's points of the series' aggregate; the other claims the next
// segment. Segments own disjoint points, so the two never touch the same
// value, and every point adds its series in id order, on whichever
// goroutine, so the answer is the same bits as on one core.
//
// Splitting by series instead (fetch_batch.go) leaves the aggregation of
// every series on the fetch's goroutine, after the worker's decoding, and
// the worker's lines go through a slab: on the grouped sum of `make
// bench-vs` after a fresh load, the fetch's goroutine then did two thirds
// of the work. Claims keep the batch from waiting on a goroutine the
// machine has not scheduled yet: what it has not claimed, the fetch's
// goroutine reads itself.
//
// Consolidated fetches (a step of several storage steps) are not split by
// time: an output point that straddles a block boundary would make both
// segments decode that block. Nor are fetches that read disk (a period
// reader serves one goroutine) or that keep series (AggNone).

// segment is one part of a segmented fetch's range: its output points,
// which are its primaries (the step is the storage step), and the decoder
// that places them, used by one goroutine at a time.
type segment struct {
	a, b int // points [a, b) from the fetch's off
	dec  decoder
	err  error
}

// segments returns the segments of f for n selected series, or nil when
// f is read whole: split at block boundaries, a block or so each, and
// only when a second goroutine can pay.
func (f *fetch) segments(n int) []segment {
	p := len(f.prim)
	if f.req.Aggregation == tsdb.AggNone || f.m != 1 || n*p < workerMinPoints*2 || runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	bs := int64(f.db.head.BlockSteps())
	// Cut at every block boundary, leaving out cuts that would make a
	// segment shorter than half a block: its per-series cost would then
	// outweigh its points.
	var cuts []int
	last := 0
	for per := f.pmin + 1; per <= f.pmax; per++ {
		c := int(per*bs - f.k0)
		if c-last >= int(bs/2) && p-c >= int(bs/2) {
			cuts = append(cuts, c)
			last = c
		}
	}
	if len(cuts) == 0 {
		return nil
	}
	segs := make([]segment, len(cuts)+1)
	for i := range segs {
		s := &segs[i]
		if i > 0 {
			s.a = cuts[i-1]
		}
		s.b = p
		if i < len(cuts) {
			s.b = cuts[i]
		}
		k0 := f.k0 + int64(s.a)
		pmin, pmax := floorDiv(k0, bs), floorDiv(k0+int64(s.b-s.a)-1, bs)
		// The full slice expression keeps a whole-block decode, which
		// writes through dst's capacity, inside the segment.
		s.dec = decoder{f: f, k0: k0, pmin: pmin, prim: f.prim[s.a:s.b:s.b],
			blk: make([]float64, 0, bs), covered: make([]bool, pmax-pmin+1)}
	}
	return segs
}

// batchSegments starts reading one batch of series by segments: the
// fetch's goroutine finds every series' group (the group map is its
// alone) while the second goroutine may still read the batch before,
// reads what is left of that one (finishSegments), starts a second
// goroutine on this one and returns, so that the head collects the next
// batch while the second goroutine reads this one (head.ScanAhead keeps vs
// valid until then). Back with the next batch, the fetch's goroutine reads
// the segments not claimed yet.
func (f *fetch) batchSegments(vs []head.View) error {
	// The aggregators of two batches are in use at once, in turn.
	f.flip ^= 1
	aggs := grow(f.aggs[f.flip], len(vs))
	f.aggs[f.flip] = aggs
	for i := range vs {
		aggs[i] = nil
		gkey, ok := f.groupKey(vs[i].Tags)
		if !ok {
			continue // lacks a group-by key
		}
		f.stats.SeriesScanned++
		// A new group's aggregator is this goroutine's until the batch
		// starts; series is not a field the readers touch.
		agg := f.group(gkey, vs[i].Tags).agg
		agg.series++
		aggs[i] = agg
	}
	if err := f.finishSegments(); err != nil {
		return err
	}
	f.next.Store(0)
	f.reading, f.readingAggs = vs, aggs
	if len(vs)*len(f.prim) >= workerMinPoints {
		f.splits++
		f.second.Go(func() { f.readSegments(vs, aggs) })
	}
	return nil
}

// finishSegments reads the segments of the batch being read that no
// goroutine claimed yet, waits for the second goroutine, and returns the
// first error of a segment.
func (f *fetch) finishSegments() error {
	if f.reading == nil {
		return nil
	}
	f.readSegments(f.reading, f.readingAggs)
	f.second.Wait()
	f.reading, f.readingAggs = nil, nil
	for i := range f.segs {
		if err := f.segs[i].err; err != nil {
			return err
		}
	}
	return nil
}

// readSegments reads the segments it claims of the batch vs, whose
// series' aggregators are aggs (nil: skip), until none is left.
func (f *fetch) readSegments(vs []head.View, aggs []*aggregator) {
	for {
		k := int(f.next.Add(1)) - 1
		if k >= len(f.segs) {
			return
		}
		s := &f.segs[k]
		s.err = s.read(vs, aggs)
	}
}

// read places its part of every series of vs and adds it to the series'
// aggregator.
func (s *segment) read(vs []head.View, aggs []*aggregator) error {
	for i := range vs {
		agg := aggs[i]
		if agg == nil {
			continue
		}
		dense, err := s.dec.placeSeries(&vs[i])
		if err != nil {
			return err
		}
		agg.add(s.dec.prim, s.a, dense)
	}
	return nil
}
