package head

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/norm"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestLateWriteNoReencode: senders around a block boundary. One sender
// opens the next period; the others' datapoints of the period that just
// ended are late writes, which land in a late block: no sealed block is
// encoded again, reads see them at once, and the late block is sealed once
// the seal delay has passed and its senders went quiet. The series is then
// late-prone: at its next boundary the ended block is not sealed until the
// delay has passed, and its late writes encode nothing twice.
func TestLateWriteNoReencode(t *testing.T) {
	t.Parallel()
	bnd := int64(t0 + 2*hour)
	c := &clock{bnd - 5*minute}
	h := newHead(t, c, func(o *Options) { o.MaxAge = 3 * hour })
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	s := tags.New("name", "s", "atlas.dstype", "sum")
	want := map[string]map[int64]float64{"g": {}, "s": {}}
	write := func(ts int64, v float64) {
		t.Helper()
		if b := appendOK(t, h, pt(g, ts, v), pt(s, ts, v)); len(b.Rejected) > 0 {
			t.Fatalf("write at %d rejected: %v", ts, b.Rejected)
		}
		step := norm.Boundary(ts, minute)
		want["g"][step] = max(want["g"][step], v)
		want["s"][step] += v
	}
	check := func(when string) {
		t.Helper()
		for name, ts := range map[string]tags.Set{"g": g, "s": s} {
			if diff := cmp.Diff(want[name], values(t, h, ts)); diff != "" {
				t.Errorf("%s: %s mismatch (-want +got):\n%s", when, name, diff)
			}
		}
	}
	counts := func(when string, late, reencoded float64) {
		t.Helper()
		if l, r := h.m.late.Count(), h.m.reencoded.Count(); l != late || r != reencoded {
			t.Errorf("%s: late writes, re-encodes = %v, %v, want %v, %v", when, l, r, late, reencoded)
		}
	}
	// fill writes steps [from, to) of the period starting at start, in
	// time: the clock follows.
	fill := func(start, from, to int64, v func(i int64) float64) {
		t.Helper()
		for i := from; i < to; i++ {
			c.t = start + i*minute + 10_000
			write(start+i*minute, v(i))
		}
	}
	fill(t0, 0, 115, func(i int64) float64 { return float64(i % 7) })
	// The sender that runs ahead opens the next period: the first is sealed.
	c.t = bnd + 30_000
	write(bnd+10_000, 1)
	if st := h.MemoryStats(); st.SealedSlots != 2*120 {
		t.Fatalf("sealed slots = %d, want 240", st.SealedSlots)
	}
	// The others, late, out of order: into a late block.
	for _, k := range []int64{3, 1, 4, 1, 5, 2, 5} {
		write(bnd-k*minute, float64(10+k))
	}
	counts("after the late writes", 14, 0)
	check("after the late writes")
	// Not sealed before the delay, nor while its senders write.
	if n := h.SealIdle(c.t); n != 0 {
		t.Errorf("SealIdle sealed %d at once, want 0", n)
	}
	c.t = bnd + h.opts.SealDelay + 10*minute
	write(bnd-2*minute, 30) // written just now: not idle
	if n := h.SealIdle(c.t); n != 0 {
		t.Errorf("SealIdle sealed %d blocks just written, want 0", n)
	}
	c.t += h.opts.SealDelay
	if n := h.SealIdle(c.t); n != 2 {
		t.Errorf("SealIdle sealed %d late blocks, want 2", n)
	}
	// Loaded once from its sealed block, sealed once more: one re-encode
	// per series for the whole boundary, not one per datapoint.
	counts("after the seal", 16, 2)
	check("after the seal")
	for _, ms := range []tags.Set{g, s} {
		if p := lateOf(t, h, ms); p != nil {
			t.Errorf("%v keeps a late block of period %d after the seal", ms, p.period)
		}
	}

	// The next boundary: the series are late-prone, so the block that
	// ends is kept open and the late writes re-encode nothing.
	bnd2 := bnd + 2*hour
	fill(bnd, 1, 115, func(i int64) float64 { return float64(i % 5) })
	sealed := h.m.sealed.Count()
	c.t = bnd2 + 30_000
	write(bnd2+10_000, 2)
	if n := h.m.sealed.Count() - sealed; n != 0 {
		t.Errorf("%v blocks sealed at the boundary of late-prone series, want 0", n)
	}
	for _, k := range []int64{2, 4, 1, 3, 5, 1} {
		write(bnd2-k*minute, float64(20+k))
	}
	check("after the second boundary's late writes")
	c.t = bnd2 + h.opts.SealDelay + 10*minute
	if n := h.SealIdle(c.t); n != 2 {
		t.Errorf("SealIdle sealed %d deferred blocks, want 2", n)
	}
	counts("after the second boundary", 28, 2)
	check("after the second boundary")

	// A boundary with no late write: the deferred blocks are sealed
	// unwritten, and the series are prone no more.
	bnd3 := bnd2 + 2*hour
	fill(bnd2, 1, 120, func(int64) float64 { return 1 })
	c.t = bnd3 + 30_000
	write(bnd3+10_000, 3)
	c.t = bnd3 + h.opts.SealDelay + 10*minute
	if n := h.SealIdle(c.t); n != 2 {
		t.Errorf("SealIdle sealed %d deferred blocks, want 2", n)
	}
	for _, ms := range []tags.Set{g, s} {
		if prone := seriesOf(t, h, ms).late&lateProne != 0; prone {
			t.Errorf("%v still late-prone after a boundary without late writes", ms)
		}
	}
	sealed = h.m.sealed.Count()
	bnd4 := bnd3 + 2*hour
	c.t = bnd4 + 30_000
	write(bnd4+10_000, 4)
	if n := h.m.sealed.Count() - sealed; n != 2 {
		t.Errorf("%v blocks sealed at the boundary, want 2 (prone no more)", n)
	}
	check("at the end")
}

// seriesOf returns the series with tags ts.
func seriesOf(t *testing.T, h *Head, ts tags.Set) *memSeries {
	t.Helper()
	ids := h.Index().Select(queryFor(ts)).ToArray()
	if len(ids) != 1 {
		t.Fatalf("%d series match %v", len(ids), ts)
	}
	k, local := splitID(ids[0])
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seriesLocked(local)
}

// lateOf returns the late block of the series with tags ts, or nil.
func lateOf(t *testing.T, h *Head, ts tags.Set) *lateBlock {
	t.Helper()
	ms := seriesOf(t, h, ts)
	k, local := splitID(ms.id)
	s := &h.shards[k]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.late[local]
}

// checkLate checks the invariants of late blocks: each is in its series'
// sealed list as the one late entry, with no data, for a period older
// than the open block's.
func checkLate(t *testing.T, h *Head) {
	t.Helper()
	for k := range h.shards {
		s := &h.shards[k]
		s.mu.Lock()
		for local, ms := range s.mu.series {
			if ms == nil {
				continue
			}
			lb, has := s.mu.late[uint32(local)]
			if has != (ms.late&lateOpen != 0) {
				t.Errorf("series %d: late block %v, flag %v", ms.id, has, ms.late&lateOpen != 0)
			}
			entries := 0
			for _, b := range ms.sealed {
				if b.late {
					entries++
					if !has || lb.period != b.period() || b.data != nil {
						t.Errorf("series %d: late entry of period %d, block %v", ms.id, b.period(), lb)
					}
				}
			}
			if has && (entries != 1 || ms.hasOpen && lb.period >= ms.period) {
				t.Errorf("series %d: %d late entries, late period %d, open %v %d", ms.id, entries, lb.period, ms.hasOpen, ms.period)
			}
		}
		if len(s.mu.late) > 0 && len(s.mu.late) > len(s.mu.series) {
			t.Errorf("shard %d: %d late blocks for %d series", k, len(s.mu.late), len(s.mu.series))
		}
		s.mu.Unlock()
	}
}

// TestLateBlockModel writes random datapoints, most of them late (up to
// MaxAge old, in any order), to gauges and sums while the clock advances
// over several block boundaries, with idle seals and memory drops between
// them, and checks every read against a model of the steps' values, then
// a restore from a checkpoint taken halfway and the rest of the log.
func TestLateBlockModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			lateBlockModel(t, seed)
		})
	}
}

func lateBlockModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	c := &clock{t0 + 3*hour}
	var recs [][]byte
	var lsn uint64
	h := newHead(t, c, func(o *Options) {
		o.MaxAge = 3 * hour
		o.Log = func(rec []byte) (uint64, error) {
			recs = append(recs, append([]byte(nil), rec...))
			lsn++
			return lsn, nil
		}
	})
	var series []tags.Set
	for i := range 8 {
		series = append(series, tags.New("name", "m", "i", fmt.Sprint(i), "atlas.dstype", []string{"gauge", "sum"}[i%2]))
	}
	model := make([]map[int64]float64, len(series))
	for i := range model {
		model[i] = map[int64]float64{}
	}
	dropBefore := int64(-1 << 62) // steps before it are out of memory
	dropP := int64(-1 << 62)      // the period DropBefore was last given
	check := func(when string, h *Head) {
		t.Helper()
		for i, ts := range series {
			want := map[int64]float64{}
			for step, v := range model[i] {
				if step >= dropBefore {
					want[step] = v
				}
			}
			if h.Index().Select(queryFor(ts)).IsEmpty() {
				if len(want) > 0 {
					t.Fatalf("%s: %v missing", when, ts)
				}
				continue
			}
			// maps.Equal first: cmp.Diff sorts the maps, the test's cost.
			if got := values(t, h, ts); !maps.Equal(want, got) {
				t.Fatalf("%s: %v mismatch (-want +got):\n%s", when, ts, cmp.Diff(want, got))
			}
		}
		checkLate(t, h)
	}
	var caps []Capture
	for op := range 4000 {
		switch r := rng.IntN(100); {
		case r < 70:
			var pts []tsdb.Datapoint
			var which []int
			for range 1 + rng.IntN(6) {
				i := rng.IntN(len(series))
				age := int64(rng.IntN(10 * minute))
				if rng.IntN(3) == 0 {
					age = int64(rng.IntN(3 * hour))
				}
				pts = append(pts, pt(series[i], c.t-age, float64(rng.IntN(100))))
				which = append(which, i)
			}
			b := appendOK(t, h, pts...)
			rejected := map[int]bool{}
			for _, rj := range b.Rejected {
				rejected[rj.Index] = true
			}
			for k, p := range pts {
				if rejected[k] {
					continue
				}
				step := norm.Boundary(p.T, minute)
				m := model[which[k]]
				if cur, ok := m[step]; !ok {
					m[step] = p.V
				} else if which[k]%2 == 0 {
					m[step] = max(cur, p.V)
				} else {
					m[step] = cur + p.V
				}
			}
		case r < 85:
			c.t += int64(rng.IntN(5 * minute))
		case r < 92:
			h.SealIdle(c.t)
		case r < 94:
			// Memory retention: periods that ended more than MaxAge ago.
			p, _ := h.period(c.t - h.opts.MaxAge - h.blockDur)
			h.DropBefore(p, false)
			dropP = max(dropP, p)
			dropBefore = max(dropBefore, p*h.blockDur)
		default:
			check(fmt.Sprintf("op %d", op), h)
		}
		if op == 2000 {
			for k := range Shards {
				var cp Capture
				h.CaptureShard(k, func() uint64 { return lsn }, &cp)
				caps = append(caps, cp)
			}
		}
	}
	check("at the end", h)
	if h.m.late.Count() == 0 || h.m.reencoded.Count() == 0 || h.m.sealed.Count() == 0 {
		t.Errorf("late writes %v, re-encodes %v, seals %v: the test exercises too little",
			h.m.late.Count(), h.m.reencoded.Count(), h.m.sealed.Count())
	}

	// A restore: the halfway checkpoint, then the log after it.
	h2 := newHead(t, &clock{c.t}, func(o *Options) { o.MaxAge = 3 * hour })
	restore(t, h2, caps, recs)
	h2.DropBefore(dropP, false)
	check("after the restore", h2)
}

// restore fills h from captures and replays the records after them.
func restore(t *testing.T, h *Head, caps []Capture, recs [][]byte) {
	t.Helper()
	stamps := [Shards]uint64{}
	for _, cp := range caps {
		stamps[cp.Shard] = cp.Stamp
		for _, d := range cp.Created {
			if err := h.RestoreSeries(d.ID, d.Tags); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, cp := range caps {
		for _, st := range cp.States {
			if err := h.RestoreState(st.ID, st.Snapshot); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range cp.Blocks {
			if err := h.RestoreBlock(b.ID, b.Period, b.Data); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, rec := range recs {
		k, err := RecordShard(rec)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(i+1) <= stamps[k] {
			continue
		}
		if err := h.Replay(rec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLateBlockWrites checks a late block's writes (in order, into the
// newest slot, and before it, waiting until a flush) against the plain
// values, for every op, from loaded blocks of random values.
func TestLateBlockWrites(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	ops := []chunk.Op{chunk.OpSet, chunk.OpAdd, chunk.OpMax, chunk.OpMin}
	const steps = 120
	for round := range 300 {
		want := make([]float64, steps)
		var o chunk.Open
		for slot := range want {
			want[slot] = chunk.Missing
			if rng.IntN(4) > 0 && slot < steps-rng.IntN(40) {
				want[slot] = float64(rng.IntN(1000)) / 8
				o.Write(slot, want[slot], chunk.OpSet)
			}
		}
		lb := newLateBlock(5, o, 0)
		for range rng.IntN(200) {
			slot, op := rng.IntN(steps), ops[rng.IntN(len(ops))]
			v := float64(rng.IntN(1000)) / 4
			if rng.IntN(10) == 0 {
				v = rng.NormFloat64()
			}
			lb.write(slot, v, op)
			want[slot] = op.Apply(want[slot], v)
		}
		lb.flush()
		got := lb.open.Values(nil, steps)
		for slot := range want {
			if math.Float64bits(got[slot]) != math.Float64bits(want[slot]) {
				t.Fatalf("round %d slot %d = %v, want %v", round, slot, got[slot], want[slot])
			}
		}
	}
}

// TestLateWriteAllocs: a late write into a late block allocates nothing,
// at its newest slot, and before it once the pending writes' buffer has
// grown (to maxLatePending, when they are first flushed).
func TestLateWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	bnd := int64(t0 + 2*hour)
	c := &clock{bnd + minute}
	h := newHead(t, c, func(o *Options) { o.Log = func([]byte) (uint64, error) { return 1, nil } })
	var pts []tsdb.Datapoint
	for i := range 1000 {
		pts = append(pts, pt(tags.New("name", "m", "i", fmt.Sprint(i), "atlas.dstype", "sum"), bnd-10*minute, 1))
	}
	b := &tsdb.Batch{Points: pts}
	at := func(ts int64) {
		for i := range b.Points {
			b.Points[i].T = ts
		}
		if _, err := h.Append(context.Background(), b); err != nil || len(b.Rejected) > 0 {
			t.Fatal(err, b.Rejected)
		}
	}
	at(bnd - 10*minute)
	at(bnd)            // the next period: the first is sealed
	at(bnd - 2*minute) // late: the late blocks load
	at(bnd - 3*minute) // and get pending writes
	at(bnd - minute)   // a newer slot
	for i := range b.Points {
		b.Points[i].Tags = nil // by ref
	}
	if a := testing.AllocsPerRun(20, func() { at(bnd - minute) }); a != 0 {
		t.Errorf("late write at the newest slot: %.1f allocs per 1000-point batch, want 0", a)
	}
	for range maxLatePending {
		at(bnd - 3*minute)
	}
	if a := testing.AllocsPerRun(50, func() { at(bnd - 3*minute) }); a != 0 {
		t.Errorf("late write before the newest slot: %.1f allocs per 1000-point batch, want 0", a)
	}
}
