package db

import (
	"runtime"
	"sync"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/head"
)

// An aggregating fetch at the storage step whose range spans several
// blocks reads each batch of series by segments of time, a block or so
// each, on two goroutines: the fetch's own and a second one that reads
// for the whole fetch. A goroutine claims a segment of a batch, places
// that part of every series of the batch, in id order, and adds it
// straight into the segment's points of the series' aggregate; the other
// claims another (batchSegments says which may be claimed). Segments own disjoint points, so the two never touch the same
// value, and every point adds its series in id order, on whichever
// goroutine, so the answer is the same bits as on one core.
//
// Splitting by series instead (fetch_batch.go) leaves the aggregation of
// every series on the fetch's goroutine, after the worker's decoding, and
// the worker's lines go through a slab: on the grouped sum of `make
// bench-vs` after a fresh load, the fetch's goroutine then did two thirds
// of the work. Claims keep the fetch from waiting on a goroutine the
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

// batchSegments reads one batch of series by segments: the fetch's
// goroutine finds every series' group (the group map is its alone),
// publishes the batch to the pipeline and reads, beside the second
// goroutine, until the batch before is read whole; then it returns, so
// that the head collects the next batch while the second goroutine reads
// on (head.ScanAhead keeps vs valid until the next call returns, and the
// batch before it until this one returns).
//
// The unit of work is one segment of one batch. A segment's points take
// the batches in order, since every point adds its series in id order:
// segment s of batch b waits for segment s of batch b-1, and nothing else
// waits. There is no barrier between batches, so a goroutine that would
// wait for the other's last segment of a batch reads a segment of the
// next one instead.
func (f *fetch) batchSegments(vs []head.View) error {
	// The aggregators of two batches are in use at once, in turn; those of
	// the batch before the last are free: it was read before the last call
	// returned.
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
		// A new group's aggregator is this goroutine's until the batch is
		// published; series is not a field the readers touch.
		agg := f.group(gkey, vs[i].Tags).agg
		agg.series++
		aggs[i] = agg
	}
	p := &f.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		p.cond.L = &p.mu
		f.second.Go(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.read(f, -1, true)
		})
	}
	b := p.end
	bt := &p.batches[b%2]
	bt.vs, bt.aggs = vs, aggs
	bt.claimed = grow(bt.claimed, len(f.segs))
	bt.done = grow(bt.done, len(f.segs))
	clear(bt.claimed)
	clear(bt.done)
	bt.left = len(f.segs)
	p.end++
	f.splits++
	p.cond.Broadcast()
	p.read(f, b-1, false)
	return p.err
}

// finishSegments reads what is left of the batches published, waits for
// the second goroutine, and returns the first error of a segment.
func (f *fetch) finishSegments() error {
	p := &f.pipe
	if !p.started {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.read(f, p.end-1, false)
	err := p.err
	p.mu.Unlock()
	f.second.Wait()
	return err
}

// segPipe holds the batches of a segmented fetch being read: at most two,
// [first, end) by number, in batches[number%2]. Its fields are guarded
// by mu; cond signals a segment done or a batch published.
type segPipe struct {
	mu         sync.Mutex
	cond       sync.Cond
	batches    [2]segBatch
	first, end int
	started    bool // the second goroutine runs
	closed     bool // no batch comes after end-1
	err        error
}

// segBatch is one batch of series in a segmented fetch and the state of
// its segments.
type segBatch struct {
	vs            []head.View
	aggs          []*aggregator
	claimed, done []bool // by segment
	left          int    // segments not done
}

// read claims and reads segments, with p.mu held (released while a
// segment is read), until batch upto and those before it are read, or,
// for all (the second goroutine), until the pipeline is closed and
// empty. It returns early after an error of a segment.
func (p *segPipe) read(f *fetch, upto int, all bool) {
	for p.err == nil {
		if !all && p.first > upto || all && p.closed && p.first == p.end {
			return
		}
		b, k, ok := p.claim(len(f.segs))
		if !ok {
			p.cond.Wait()
			continue
		}
		bt := &p.batches[b%2]
		p.mu.Unlock()
		err := f.segs[k].read(bt.vs, bt.aggs)
		p.mu.Lock()
		bt.done[k] = true
		bt.left--
		if err != nil && p.err == nil {
			p.err = err
		}
		for p.first < p.end && p.batches[p.first%2].left == 0 {
			p.first++
		}
		p.cond.Broadcast()
	}
}

// claim returns a segment k of a batch b that is free to read: not
// claimed, and read in the batch before (the oldest batch first), or
// false when there is none now.
func (p *segPipe) claim(nseg int) (b, k int, ok bool) {
	for b = p.first; b < p.end; b++ {
		bt := &p.batches[b%2]
		for k = range nseg {
			if !bt.claimed[k] && (b == p.first || p.batches[(b-1)%2].done[k]) {
				bt.claimed[k] = true
				return b, k, true
			}
		}
	}
	return 0, 0, false
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
