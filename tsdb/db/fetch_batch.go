package db

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sextant-dev/sextant/tsdb/head"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// A fetch decodes part of each batch of series on a second goroutine, the
// worker, while its own goroutine decodes and aggregates the rest: decoding
// blocks is about two thirds of a grouped fetch's CPU, aggregating a fifth
// (profile of the graph and query_range benchmarks: 2 000 series × 360
// points). The worker only
// decodes, into a slab of its own; its series are aggregated afterwards on
// the fetch's goroutine in id order, so an aggregate adds its series in the
// same order, and gives the same bits, however a batch was split.
const (
	// workerSlabPoints bounds the worker's slab (8 bytes a point): a
	// batch's worker share shrinks for long ranges, down to none.
	workerSlabPoints = 1 << 16
	// workerMinPoints is the least work worth handing over: below it the
	// hand-over costs more than it saves.
	workerMinPoints = 8 << 10
)

// worker is the second goroutine's share of a batch and its scratch. The
// share's series are claimed one at a time (next), so that the fetch's
// goroutine, done with its own part, decodes what the worker has not
// started: on a loaded machine the worker may be scheduled late, and the
// batch then costs what it costs on one goroutine, not a wait for it.
type worker struct {
	dec   decoder
	slab  []float64 // primaries of the share's series, one after another
	dense []bool    // per series of the share
	skip  []bool    // per series: lacks a group-by key, not decoded
	next  atomic.Int32
	err   error // the worker goroutine's
}

// batch reads one batch of series (views valid until it returns).
func (f *fetch) batch(vs []head.View) error {
	if f.segs != nil {
		return f.batchSegments(vs)
	}
	n := f.workerShare(len(vs))
	if n == 0 {
		for i := range vs {
			if err := f.series1(&vs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	f.splits++
	own, theirs := vs[:len(vs)-n], vs[len(vs)-n:]
	w := f.work
	w.next.Store(0)
	w.err = nil
	var wg sync.WaitGroup
	wg.Go(func() { w.err = w.decode(&w.dec, f, theirs) })
	var err error
	for i := range own {
		if err = f.series1(&own[i]); err != nil {
			break
		}
	}
	if err == nil {
		// Take over what the worker has not claimed yet, with this
		// goroutine's decoder pointed at the slab.
		err = w.decode(&f.dec, f, theirs)
		f.dec.prim = f.prim
	}
	wg.Wait()
	if err == nil {
		err = w.err
	}
	if err != nil {
		return err
	}
	f.stats.DatapointsScanned += w.dec.points
	w.dec.points = 0
	p := len(f.prim)
	for i := range theirs {
		if w.skip[i] {
			continue
		}
		v := &theirs[i]
		gkey, _ := f.groupKey(v.Tags)
		f.stats.SeriesScanned++
		if err := f.emit(w.slab[i*p:(i+1)*p], v.Tags, v.DSType, gkey, w.dense[i]); err != nil {
			return err
		}
	}
	return nil
}

// workerShare returns how many series of a batch of n the worker decodes
// (the last ones):
// none when the fetch reads disk (its period readers serve one goroutine),
// when there is one core, or when the share is too small to pay.
func (f *fetch) workerShare(n int) int {
	p := len(f.prim)
	if len(f.readers) > 0 || p == 0 || runtime.GOMAXPROCS(0) < 2 {
		return 0
	}
	// The fetch's goroutine also aggregates every series of the batch,
	// about a third of what decoding one costs (profile): the worker takes
	// five eighths of the series so that both finish together.
	share := min(n*5/8, workerSlabPoints/p)
	if share*p < workerMinPoints {
		return 0
	}
	if f.work == nil {
		f.work = f.db.getWorker(f)
	}
	w := f.work
	w.slab = grow(w.slab, share*p)
	w.dense, w.skip = grow(w.dense, share), grow(w.skip, share)
	return share
}

// getWorker returns a worker for f from the pool, or a new one.
func (db *DB) getWorker(f *fetch) *worker {
	w, _ := db.workers.Get().(*worker)
	if w == nil {
		w = &worker{}
	}
	w.dec = decoder{f: f, k0: f.k0, pmin: f.pmin, blk: w.dec.blk[:0], covered: grow(w.dec.covered, max(0, int(f.pmax-f.pmin+1)))}
	return w
}

// putWorker returns f's worker, if it had one, to the pool.
func (db *DB) putWorker(f *fetch) {
	if w := f.work; w != nil {
		f.work = nil
		w.dec.f, w.dec.prim, w.err = nil, nil, nil
		db.workers.Put(w)
	}
}

// decode places the blocks of the series of vs it claims into their slots
// of the slab, with dec (the worker's, or the fetch's when it takes over),
// until none is left. Claims make the slots of two callers disjoint.
func (w *worker) decode(dec *decoder, f *fetch, vs []head.View) error {
	p := len(f.prim)
	for {
		i := int(w.next.Add(1)) - 1
		if i >= len(vs) {
			return nil
		}
		v := &vs[i]
		if w.skip[i] = !hasKeys(v.Tags, f); w.skip[i] {
			continue
		}
		// The full slice expression keeps a whole-block decode, which writes
		// through dst's capacity up to the block's end, inside this series.
		dec.prim = w.slab[i*p : (i+1)*p : (i+1)*p]
		var err error
		if w.dense[i], err = dec.placeSeries(v); err != nil {
			return err
		}
	}
}

// hasKeys reports whether a series (tags in canonical encoding) has every
// group-by key of f, as groupKey does without building the key: it is safe
// on the worker's goroutine.
func hasKeys(enc []byte, f *fetch) bool {
	if f.groups == nil {
		return true
	}
	for _, k := range f.req.GroupBy {
		if _, ok := tags.ValueEncoded(enc, k); !ok {
			return false
		}
	}
	return true
}

// grow returns s resliced to n elements, reallocated if too short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
