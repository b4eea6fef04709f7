package head

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"slices"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/norm"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// appendScratch is the per-call working space of Append, pooled so that
// appending to existing series allocates nothing.
type appendScratch struct {
	enc    []byte   // canonical encodings of the points' tags
	start  []int32  // per point: offset of its encoding in enc, -1 for refs
	end    []int32  // per point: end of its encoding
	hash   []uint64 // per point: hash of its encoding
	shard  []uint8
	reason []tsdb.Reason
	order  []int32 // point indexes grouped by shard
	counts [Shards + 1]int32
	rec    []byte
	tags   []byte // a new series' canonical tags, for its WAL entry
	wrote  uint32 // the call's wall clock, as memSeries.wrote keeps it
	// lateFloor is the oldest time the call accepts (Now − MaxAge): a
	// block whose period ends after it may still get late writes.
	lateFloor int64
	late      int  // late writes (sextant.tsdb.lateWrites) of the call
	replay    bool // applying WAL records: no logging, no time checks
}

func (sc *appendScratch) reset(n int) {
	sc.enc = sc.enc[:0]
	sc.start = resize(sc.start, n)
	sc.end = resize(sc.end, n)
	sc.hash = resize(sc.hash, n)
	sc.shard = resize(sc.shard, n)
	sc.reason = resize(sc.reason, n)
	sc.order = resize(sc.order, n)
	clear(sc.reason)
	sc.counts = [Shards + 1]int32{}
	sc.late = 0
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}

// WAL record layout (FORMAT.md): one record per shard and Append call.
const (
	recSamples   = 1
	entrySeries  = 0
	entrySample  = 1
	maxRecPoints = 1 << 16 // split larger runs so records stay small
)

// Append normalizes and stores the datapoints of b, logging each shard's
// run of them through Options.Log under the shard lock. It fills b.Rejected
// and the Ref of accepted points, and returns the highest LSN logged (0 if
// nothing was). The caller makes that LSN durable before acknowledging.
func (h *Head) Append(ctx context.Context, b *tsdb.Batch) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	sc := h.scratch.Get().(*appendScratch)
	defer h.scratch.Put(sc)
	now := h.opts.Now()
	sc.wrote, sc.lateFloor = h.wallSec(now), now-h.opts.MaxAge
	lsn, err := h.append(sc, b, now-h.opts.MaxAge, now+h.opts.MaxFuture)
	b.Rejected = b.Rejected[:0]
	accepted := len(b.Points)
	for i, r := range sc.reason[:len(b.Points)] {
		if r != tsdb.Accepted {
			b.Rejected = append(b.Rejected, tsdb.Rejection{Index: i, Reason: r})
			h.m.rejected[r].Increment()
			accepted--
		}
	}
	h.m.appended.Add(float64(accepted))
	if sc.late > 0 {
		h.m.late.Add(float64(sc.late))
	}
	return lsn, err
}

func (h *Head) append(sc *appendScratch, b *tsdb.Batch, minT, maxT int64) (uint64, error) {
	sc.reset(len(b.Points))
	for i := range b.Points {
		p := &b.Points[i]
		switch {
		case sc.replay:
		case p.T < minT:
			sc.reason[i] = tsdb.TooOld
			continue
		case p.T > maxT:
			sc.reason[i] = tsdb.FromFuture
			continue
		}
		if id, ok := ID(p.Ref); ok {
			// Fast path: the caller named the series.
			sk, _ := splitID(id)
			sc.start[i], sc.shard[i] = -1, uint8(sk)
		} else {
			if _, ok := p.Tags.Get(tags.NameKey); !ok {
				sc.reason[i] = tsdb.MissingName
				continue
			}
			start := len(sc.enc)
			sc.enc = p.Tags.AppendTo(sc.enc)
			sc.start[i], sc.end[i] = int32(start), int32(len(sc.enc))
			sc.hash[i] = tagHash(sc.enc[start:])
			sc.shard[i] = uint8(sc.hash[i] & (Shards - 1))
		}
		sc.counts[sc.shard[i]+1]++
	}
	// Counting sort of the accepted points by shard, keeping their order.
	for k := 1; k <= Shards; k++ {
		sc.counts[k] += sc.counts[k-1]
	}
	pos := sc.counts
	for i := range b.Points {
		if sc.reason[i] == tsdb.Accepted {
			sc.order[pos[sc.shard[i]]] = int32(i)
			pos[sc.shard[i]]++
		}
	}
	var maxLSN uint64
	for k := 0; k < Shards; k++ {
		lo, hi := sc.counts[k], sc.counts[k+1]
		for lo < hi {
			end := min(hi, lo+maxRecPoints)
			lsn, err := h.appendShard(sc, k, b, sc.order[lo:end])
			if err != nil {
				return maxLSN, err
			}
			maxLSN = max(maxLSN, lsn)
			lo = end
		}
	}
	return maxLSN, nil
}

// appendShard applies the points idx of b, all in shard k, under its lock.
func (h *Head) appendShard(sc *appendScratch, k int, b *tsdb.Batch, idx []int32) (uint64, error) {
	s := &h.shards[k]
	logging := h.opts.Log != nil && !sc.replay
	rec := sc.rec[:0]
	if logging {
		rec = append(rec, recSamples)
		rec = binary.AppendUvarint(rec, uint64(k))
		rec = binary.AppendVarint(rec, b.Points[idx[0]].T)
	}
	base := b.Points[idx[0]].T
	logged := false

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		p := &b.Points[i]
		ms, local, created := h.resolveLocked(sc, s, k, p, int(i))
		if ms == nil {
			continue
		}
		if created && logging {
			sc.tags = s.appendTagsLocked(sc.tags[:0], ms)
			rec = append(rec, entrySeries)
			rec = binary.AppendUvarint(rec, uint64(ms.id))
			rec = binary.AppendUvarint(rec, uint64(len(sc.tags)))
			rec = append(rec, sc.tags...)
			logged = true
		}
		if r := h.applyLocked(sc, s, ms, local, p.T, p.V); r != tsdb.Accepted {
			sc.reason[i] = r
			continue
		}
		ms.wrote = sc.wrote
		p.Ref = Ref(ms.id)
		if logging {
			rec = append(rec, entrySample)
			rec = binary.AppendUvarint(rec, uint64(ms.id))
			rec = binary.AppendVarint(rec, p.T-base)
			rec = binary.LittleEndian.AppendUint64(rec, math.Float64bits(p.V))
			logged = true
		}
	}
	sc.rec = rec
	if !logged {
		return 0, nil
	}
	return h.opts.Log(rec)
}

// resolveLocked finds or creates the series of point p (index i of the
// batch) in shard s. It returns nil and sets the point's reason when the
// series cannot be created.
func (h *Head) resolveLocked(sc *appendScratch, s *shard, k int, p *tsdb.Datapoint, i int) (*memSeries, uint32, bool) {
	if sc.start[i] < 0 {
		id, _ := ID(p.Ref)
		sk, local := splitID(id)
		if sk == k {
			if ms := s.seriesLocked(local); ms != nil {
				return ms, local, false
			}
		}
		// A stale ref: fall back to the tags, which were not encoded.
		if _, ok := p.Tags.Get(tags.NameKey); !ok {
			sc.reason[i] = tsdb.MissingName
			return nil, 0, false
		}
		enc := p.Tags.AppendTo(nil)
		hash := tagHash(enc)
		if int(hash&(Shards-1)) != k {
			// The series belongs to another shard; it will be retried there
			// by the caller's next append. This only happens with forged refs.
			sc.reason[i] = tsdb.MissingName
			return nil, 0, false
		}
		return h.lookupOrCreateLocked(sc, s, k, p.Tags, enc, hash, i)
	}
	enc := sc.enc[sc.start[i]:sc.end[i]]
	return h.lookupOrCreateLocked(sc, s, k, p.Tags, enc, sc.hash[i], i)
}

func (h *Head) lookupOrCreateLocked(sc *appendScratch, s *shard, k int, ts tags.Set, enc []byte, hash uint64, i int) (*memSeries, uint32, bool) {
	// Fast path: the series exists.
	if local, ok := s.mu.byHash.find(hash, func(l uint32) bool {
		ms := s.seriesLocked(l)
		return ms != nil && s.tagsEqualLocked(ms, enc)
	}); ok {
		return s.mu.series[local], local, false
	}
	// Slow path: a new series.
	if r := h.admit(ts.Name()); r != tsdb.Accepted {
		sc.reason[i] = r
		return nil, 0, false
	}
	local := uint32(len(s.mu.series))
	if local > maxLocal {
		h.release(ts.Name())
		sc.reason[i] = tsdb.SeriesLimit
		return nil, 0, false
	}
	ms := h.newSeriesLocked(s, k, local, enc, ts, hash)
	return ms, local, true
}

// newSeriesLocked adds a series with the given local index and tags, enc
// their canonical encoding (not kept).
func (h *Head) newSeriesLocked(s *shard, k int, local uint32, enc []byte, ts tags.Set, hash uint64) *memSeries {
	dst, _ := ts.Get(tsdb.DSTypeKey)
	ids, ok := h.pairs.intern(s.mu.ids[:0], enc)
	if !ok {
		// Callers encode the set themselves or restore one that decoded.
		panic("BUG: head: malformed canonical tag encoding")
	}
	s.mu.ids = ids
	ms := s.allocSeriesLocked()
	*ms = memSeries{tags: s.mu.tags.add(ids), id: makeID(k, local), dstype: tsdb.ParseDSType(dst)}
	for int(local) >= len(s.mu.series) {
		s.mu.series = append(s.mu.series, nil)
	}
	s.mu.series[local] = ms
	s.mu.byHash.insert(hash, local)
	if s.persist {
		s.mu.created = append(s.mu.created, local)
	}
	s.markDirtyLocked(ms, local)
	h.index.Add(ms.id, ts)
	h.m.created.Increment()
	return ms
}

// admit reserves room for a new series named name under the cardinality
// limits.
func (h *Head) admit(name string) tsdb.Reason {
	for {
		n := h.numSeries.Load()
		if n >= int64(h.opts.MaxSeries) {
			return tsdb.SeriesLimit
		}
		if h.numSeries.CompareAndSwap(n, n+1) {
			break
		}
	}
	h.names.Lock()
	defer h.names.Unlock()
	c := h.names.counts[name]
	if c >= h.opts.MaxSeriesPerName {
		h.numSeries.Add(-1)
		return tsdb.NameLimit
	}
	if c == 0 {
		name = string([]byte(name)) // the caller's string may alias a request buffer
	}
	h.names.counts[name] = c + 1
	return tsdb.Accepted
}

// release undoes admit, for a series that was not created or is deleted.
func (h *Head) release(name string) {
	h.numSeries.Add(-1)
	h.names.Lock()
	defer h.names.Unlock()
	if c := h.names.counts[name]; c <= 1 {
		delete(h.names.counts, name)
	} else {
		h.names.counts[name] = c - 1
	}
}

// applyLocked normalizes one datapoint into series ms.
func (h *Head) applyLocked(sc *appendScratch, s *shard, ms *memSeries, local uint32, t int64, v float64) tsdb.Reason {
	step := h.opts.Step
	w := seriesWrite{sc: sc, s: s, ms: ms, local: local}
	switch ms.dstype {
	case tsdb.Gauge:
		h.writeLocked(w, norm.Boundary(t, step), v, chunk.OpMax)
	case tsdb.MinGauge:
		h.writeLocked(w, norm.Boundary(t, step), v, chunk.OpMin)
	case tsdb.Sum:
		h.writeLocked(w, norm.Boundary(t, step), v, chunk.OpAdd)
	case tsdb.Counter:
		in, res := ms.norm.Counter(step, t, v)
		if res == norm.Late {
			return tsdb.OutOfOrder
		}
		// Each step the interval overlaps gets its part, added: the step of
		// the newest sample is partial until a later sample or the step's
		// end, and is written now, not when a later sample arrives.
		first, n := in.Steps(step)
		for i := range n {
			b := first + int64(i)*step
			h.writeLocked(w, b, in.At(step, b), chunk.OpAdd)
		}
	default:
		e, res := ms.norm.Rate(step, norm.RateHeartbeat(step), t, v)
		if res == norm.Late {
			// Out of order: the sample cannot be spread over the interval
			// since the previous one, so it stands for the step it falls in.
			h.writeLocked(w, norm.Boundary(t, step), v, chunk.OpSet)
		}
		h.emitLocked(w, e)
	}
	// Every applied sample keeps the series alive, even one that emitted no
	// step yet (a counter's first sample, a rate's partial step).
	ms.lastT = max(ms.lastT, t)
	s.markDirtyLocked(ms, local)
	return tsdb.Accepted
}

func (h *Head) emitLocked(w seriesWrite, e norm.Emission) {
	for i := 0; i < e.N; i++ {
		v := e.Fill
		if i == 0 {
			v = e.First0
		}
		h.writeLocked(w, e.First+int64(i)*h.opts.Step, v, chunk.OpSet)
	}
}

// seriesWrite is what writeLocked needs to know of the write at hand: the
// call's scratch (its clock), the series and its shard.
type seriesWrite struct {
	sc    *appendScratch
	s     *shard
	ms    *memSeries
	local uint32
}

// writeLocked combines v into the step boundary t of the series of w.
func (h *Head) writeLocked(w seriesWrite, t int64, v float64, op chunk.Op) {
	ms := w.ms
	p, slot := h.period(t)
	switch {
	case ms.hasOpen && p == ms.period:
		// Fast path: the open block.
		ms.open.Write(slot, v, op)
	case ms.hasOpen && p > ms.period:
		h.closeOpenLocked(w)
		ms.period, ms.hasOpen = p, true
		ms.open.Write(slot, v, op)
	case ms.late&lateOpen != 0 && w.s.mu.late[w.local].period == p:
		// A late write into the series' late block (head_late.go).
		h.writeLateLocked(w, w.s.mu.late[w.local], slot, v, op)
	case !ms.hasOpen && p > ms.lastSealed() && p >= h.minPeriod.Load():
		// A period after every block of the series: nothing to merge with.
		// (Below minPeriod a block may exist on disk only.)
		ms.period, ms.hasOpen = p, true
		ms.open.Write(slot, v, op)
	case !ms.hasOpen && p == ms.lastSealed() && p >= h.minPeriod.Load() && h.reopenLocked(ms, p):
		// The newest block was sealed while its period still gets data (an
		// idle seal during a backfill): the writes that follow go to the
		// reopened block instead of re-encoding it each.
		ms.open.Write(slot, v, op)
	case p >= h.minPeriod.Load() && h.openLateLocked(w, p):
		// A period older than the series' newest block, in memory: it
		// becomes the series' late block, where this write and the next
		// ones of the period land as open-block writes.
		h.writeLateLocked(w, w.s.mu.late[w.local], slot, v, op)
	default:
		h.lateLocked(w.s, ms, p, slot, v, op)
	}
	ms.lastT = max(ms.lastT, t)
}

// reopenLocked makes the newest sealed block of ms, of period p, its open
// block again. Readers hold its bytes unlocked, so they are left alone.
func (h *Head) reopenLocked(ms *memSeries, p int64) bool {
	n := len(ms.sealed)
	if err := ms.open.Load(ms.sealed[n-1].data); err != nil {
		return false
	}
	ms.sealed = ms.sealed[: n-1 : n-1]
	if n == 1 {
		ms.sealed = nil
	}
	ms.period, ms.hasOpen = p, true
	ms.late |= reopened
	return true
}

// lastSealed returns the newest sealed period in memory.
func (ms *memSeries) lastSealed() int64 {
	if n := len(ms.sealed); n > 0 {
		return ms.sealed[n-1].period()
	}
	return math.MinInt64
}

// sealLocked encodes the open block of ms and keeps it as a sealed block.
func (h *Head) sealLocked(s *shard, ms *memSeries) {
	ms.hasOpen = false
	again := ms.late&reopened != 0
	ms.late &^= reopened
	if ms.open.Empty() {
		ms.open.Reset()
		return
	}
	s.mu.buf = s.mu.enc.Seal(s.mu.buf[:0], &ms.open, h.opts.BlockSteps)
	ms.open.Reset()
	ms.putSealed(sealedBlock{per: int32(ms.period), data: bytes.Clone(s.mu.buf)})
	h.m.sealed.Increment()
	if again {
		h.m.reencoded.Increment()
	}
}

// lateLocked writes into a sealed period by decoding and re-encoding its
// block, one datapoint at a time: for periods older than the memory window,
// whose blocks are on disk (only a replay after a long stop writes there:
// MaxAge is within the window), and should a block in memory not load as a
// late block (head_late.go).
func (h *Head) lateLocked(s *shard, ms *memSeries, p int64, slot int, v float64, op chunk.Op) {
	h.m.late.Increment()
	vals := s.mu.vals[:0]
	var base []byte
	if i, found := ms.findSealed(p); found {
		base = ms.sealed[i].data
	} else if p < h.minPeriod.Load() && h.opts.LoadBlock != nil {
		// Only on disk (a replay after a long stop): merge into that block
		// rather than replace it.
		data, err := h.opts.LoadBlock(ms.id, p)
		if err != nil {
			h.opts.Logger.Error("late write: read block from disk", "series", ms.id, "block", p, "err", err)
		}
		base = data
	}
	if base != nil {
		var err error
		if vals, err = chunk.Decode(vals, base); err != nil || len(vals) != h.opts.BlockSteps {
			// Memory blocks are ours and always decode; a disk block may be
			// corrupt, and the write then starts the block over.
			h.opts.Logger.Error("late write: undecodable block, starting it over", "series", ms.id, "block", p, "err", err)
			vals = vals[:0]
			base = nil
		}
	}
	if base == nil {
		for range h.opts.BlockSteps {
			vals = append(vals, chunk.Missing)
		}
	}
	s.mu.vals = vals
	vals[slot] = op.Apply(vals[slot], v)
	s.mu.buf = s.mu.enc.Encode(s.mu.buf[:0], vals)
	if base != nil {
		h.m.reencoded.Increment()
	}
	ms.putSealed(sealedBlock{per: int32(p), data: bytes.Clone(s.mu.buf)})
}

// findSealed returns the index of period p in ms.sealed, or where to insert it.
func (ms *memSeries) findSealed(p int64) (int, bool) {
	return slices.BinarySearchFunc(ms.sealed, p, func(b sealedBlock, p int64) int {
		switch {
		case b.period() < p:
			return -1
		case b.period() > p:
			return 1
		}
		return 0
	})
}

// putSealed stores b, replacing a block of the same period.
func (ms *memSeries) putSealed(b sealedBlock) {
	// Fast path: sealing appends the newest period. The slice grows one at
	// a time rather than doubling: a seal happens once per block, and the
	// spare capacity would cost every series memory for nothing.
	if n := len(ms.sealed); n == 0 || ms.sealed[n-1].period() < b.period() {
		ms.sealed = append(slices.Clip(ms.sealed), b)
		return
	}
	i, found := ms.findSealed(b.period())
	if found {
		ms.sealed[i] = b
		return
	}
	ms.sealed = slices.Insert(ms.sealed, i, b)
}
