package head

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/chunk"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	minute = 60_000
	hour   = 60 * minute
	t0     = 1_700_000_000_000 / (2 * hour) * (2 * hour) // a block boundary
)

// clock is a settable test clock.
type clock struct{ t int64 }

func (c *clock) now() int64 { return c.t }

func newHead(t testing.TB, c *clock, mod func(*Options)) *Head {
	t.Helper()
	opts := Options{Step: minute, Now: c.now, MaxAge: 24 * hour}
	if mod != nil {
		mod(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func pt(ts tags.Set, t int64, v float64) tsdb.Datapoint { return tsdb.Datapoint{Tags: ts, T: t, V: v} }

func appendOK(t testing.TB, h *Head, pts ...tsdb.Datapoint) *tsdb.Batch {
	t.Helper()
	b := &tsdb.Batch{Points: pts}
	if _, err := h.Append(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// values returns every stored step of the series with tags ts.
func values(t testing.TB, h *Head, ts tags.Set) map[int64]float64 {
	t.Helper()
	ids := h.Index().Select(queryFor(ts))
	if ids.GetCardinality() != 1 {
		t.Fatalf("%d series match %v", ids.GetCardinality(), ts)
	}
	out := map[int64]float64{}
	h.Scan(ids, math.MinInt64, math.MaxInt64, func(v *View) bool {
		for _, b := range v.Blocks {
			var vals []float64
			if b.Open != nil {
				vals = b.Open.Values(nil, h.BlockSteps())
			} else {
				var err error
				if vals, err = chunk.Decode(nil, b.Data); err != nil {
					t.Fatal(err)
				}
			}
			for i, x := range vals {
				if !chunk.IsMissing(x) {
					out[(b.Period*int64(h.BlockSteps())+int64(i))*h.Step()] = x
				}
			}
		}
		return true
	})
	return out
}

func queryFor(ts tags.Set) *tags.Query {
	q := tags.True()
	for _, t := range ts {
		q = tags.And(q, tags.Eq(t.Key, t.Value))
	}
	return q
}

func TestNormalizationByDSType(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 10*minute}
	h := newHead(t, c, nil)
	gauge := tags.New("name", "g", "atlas.dstype", "gauge")
	sum := tags.New("name", "s", "atlas.dstype", "sum")
	rate := tags.New("name", "r")
	counter := tags.New("name", "c", "atlas.dstype", "counter")
	appendOK(t, h,
		pt(gauge, t0+10_000, 3), pt(gauge, t0+50_000, 7), pt(gauge, t0+59_000, 5), pt(gauge, t0+60_001, 1),
		pt(sum, t0+10_000, 3), pt(sum, t0+50_000, 7), pt(sum, t0+60_000, 5),
		pt(rate, t0+73_000, 1), pt(rate, t0+133_000, 1),
		pt(counter, t0+minute, 100), pt(counter, t0+2*minute, 160), pt(counter, t0+3*minute, 100),
	)
	f := func(ts tags.Set, want map[int64]float64) {
		t.Helper()
		if diff := cmp.Diff(want, values(t, h, ts)); diff != "" {
			t.Errorf("%v mismatch (-want +got):\n%s", ts, diff)
		}
	}
	f(gauge, map[int64]float64{t0 + minute: 7, t0 + 2*minute: 1})
	f(sum, map[int64]float64{t0 + minute: 15})
	f(rate, map[int64]float64{t0 + minute: 47.0 / 60, t0 + 2*minute: 1})
	f(counter, map[int64]float64{t0 + 2*minute: 1, t0 + 3*minute: 100.0 / 60})
}

func TestRejections(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 2*hour}
	h := newHead(t, c, func(o *Options) { o.MaxAge = hour })
	a := tags.New("name", "a", "k", "1")
	cnt := tags.New("name", "c", "atlas.dstype", "counter")
	b := appendOK(t, h,
		pt(a, t0+2*hour, 1),                  // 0 ok
		pt(a, t0, 1),                         // 1 too old
		pt(a, t0+3*hour, 1),                  // 2 from the future
		pt(tags.New("k", "v"), t0+2*hour, 1), // 3 no name
		pt(cnt, t0+2*hour, 1),                // 4 ok
		pt(cnt, t0+2*hour-minute, 1),         // 5 counter out of order
		pt(cnt, t0+2*hour, 1),                // 6 counter duplicate: accepted, no effect
	)
	want := []tsdb.Rejection{
		{Index: 1, Reason: tsdb.TooOld}, {Index: 2, Reason: tsdb.FromFuture},
		{Index: 3, Reason: tsdb.MissingName}, {Index: 5, Reason: tsdb.OutOfOrder},
	}
	if diff := cmp.Diff(want, b.Rejected); diff != "" {
		t.Errorf("Rejected mismatch (-want +got):\n%s", diff)
	}
	if b.Points[0].Ref == 0 || b.Points[4].Ref == 0 || b.Points[1].Ref != 0 {
		t.Errorf("refs %d, %d, %d; want set only for accepted points", b.Points[0].Ref, b.Points[4].Ref, b.Points[1].Ref)
	}
}

func TestCardinalityLimits(t *testing.T) {
	t.Parallel()
	c := &clock{t0}
	h := newHead(t, c, func(o *Options) {
		o.MaxSeries = 3
		o.MaxSeriesPerName = 2
	})
	a1, a2, a3 := tags.New("name", "a", "k", "1"), tags.New("name", "a", "k", "2"), tags.New("name", "a", "k", "3")
	appendOK(t, h, pt(a1, t0, 1), pt(a2, t0, 1))
	b := appendOK(t, h, pt(a3, t0, 1))
	if len(b.Rejected) != 1 || b.Rejected[0].Reason != tsdb.NameLimit {
		t.Errorf("third series named a: %v, want NameSeriesLimitExceeded", b.Rejected)
	}
	b = appendOK(t, h, pt(tags.New("name", "b"), t0, 1))
	if len(b.Rejected) != 0 {
		t.Errorf("third series: %v, want accepted", b.Rejected)
	}
	b = appendOK(t, h, pt(tags.New("name", "c"), t0, 1), pt(a1, t0+minute, 2))
	if len(b.Rejected) != 1 || b.Rejected[0] != (tsdb.Rejection{Index: 0, Reason: tsdb.SeriesLimit}) {
		t.Errorf("fourth series: %v, want only it rejected with SeriesLimitExceeded", b.Rejected)
	}
	if h.NumSeries() != 3 {
		t.Errorf("NumSeries() = %d, want 3", h.NumSeries())
	}
}

func TestRefFastPath(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + hour}
	h := newHead(t, c, nil)
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	b := appendOK(t, h, pt(g, t0+minute, 1))
	ref := b.Points[0].Ref
	appendOK(t, h, tsdb.Datapoint{Ref: ref, T: t0 + 2*minute, V: 2})
	// A stale or forged ref falls back to the tags.
	appendOK(t, h, tsdb.Datapoint{Ref: ref + 12345, Tags: g, T: t0 + 3*minute, V: 3})
	want := map[int64]float64{t0 + minute: 1, t0 + 2*minute: 2, t0 + 3*minute: 3}
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("values mismatch (-want +got):\n%s", diff)
	}
}

func TestSealingAndLateWrites(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 10*hour}
	h := newHead(t, c, nil)
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	want := map[int64]float64{}
	// Four blocks (2 h each at 60 s), written in order, then late writes into
	// sealed blocks and into the open one.
	for i := int64(0); i < 8*60; i++ {
		ts := t0 + i*minute
		appendOK(t, h, pt(g, ts, float64(i)))
		want[ts] = float64(i)
	}
	appendOK(t, h, pt(g, t0+5*minute, 1000), pt(g, t0+7*hour, -5), pt(g, t0+3*hour+30_000, 500))
	want[t0+5*minute] = 1000
	want[t0+3*hour+minute] = 500
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("values mismatch (-want +got):\n%s", diff)
	}
	// The late writes made the first period, then the second, the late
	// block (head_late.go): the first was sealed again for the second.
	st := h.MemoryStats()
	if st.SealedSlots != 2*120 {
		t.Errorf("sealed slots = %d, want 240 (the second period is the late block)", st.SealedSlots)
	}
	if n, re := h.m.late.Count(), h.m.reencoded.Count(); n != 2 || re != 1 {
		t.Errorf("late writes, re-encodes = %v, %v, want 2, 1", n, re)
	}
	// The last block's period ended at 8 h, but the series was written at
	// 10 h (the clock's time): not idle yet, nor is the late block.
	if n := h.SealIdle(c.t); n != 0 {
		t.Errorf("SealIdle sealed %d blocks of a series just written, want 0", n)
	}
	c.t = t0 + 10*hour + 2*minute
	if n := h.SealIdle(c.t); n != 2 {
		t.Errorf("SealIdle sealed %d, want 2 (the open and the late block)", n)
	}
	if st := h.MemoryStats(); st.SealedSlots != 4*120 {
		t.Errorf("sealed slots = %d after SealIdle, want 480", st.SealedSlots)
	}
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("after SealIdle mismatch (-want +got):\n%s", diff)
	}
	// A write to a sealed period of a series without an open block merges.
	appendOK(t, h, pt(g, t0+minute, 42))
	want[t0+minute] = 42
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("after late write to idle series mismatch (-want +got):\n%s", diff)
	}
}

func TestDropAndDelete(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 24*hour}
	h := newHead(t, c, func(o *Options) {
		o.MaxAge = 48 * hour
		o.Log = func([]byte) (uint64, error) { return 1, nil }
	})
	old := tags.New("name", "old", "atlas.dstype", "gauge")
	cur := tags.New("name", "cur", "atlas.dstype", "gauge")
	appendOK(t, h, pt(old, t0, 1), pt(cur, t0, 1), pt(cur, t0+20*hour, 2))
	h.SealIdle(c.t)
	p, _ := h.period(t0 + 10*hour)
	// Unpersisted blocks survive a drop that requires persistence.
	if n := h.DropBefore(p, true); n != 0 {
		t.Errorf("DropBefore dropped %d unpersisted blocks", n)
	}
	var cp Capture
	for k := range Shards {
		h.CaptureShard(k, func() uint64 { return 0 }, &cp)
	}
	if n := h.DropBefore(p, true); n != 2 {
		t.Errorf("DropBefore dropped %d, want 2", n)
	}
	if ids := h.DeleteStale(t0 + 10*hour); len(ids) != 1 {
		t.Errorf("DeleteStale deleted %d series, want 1", len(ids))
	}
	if h.NumSeries() != 1 || h.Index().Len() != 1 {
		t.Errorf("after delete: %d series, %d indexed", h.NumSeries(), h.Index().Len())
	}
	// The deleted series can come back as a new one.
	appendOK(t, h, pt(old, t0+24*hour, 3))
	if got := values(t, h, old); len(got) != 1 {
		t.Errorf("recreated series values = %v", got)
	}
}

// randomLoad appends a random mix of dstypes, including late samples, and
// returns the series.
func randomLoad(t testing.TB, h *Head, c *clock, seed uint64, n int) []tags.Set {
	rng := rand.New(rand.NewPCG(seed, 1))
	var series []tags.Set
	for i := range 40 {
		series = append(series, tags.New("name", fmt.Sprint("m", i%5), "i", fmt.Sprint(i),
			"atlas.dstype", []string{"gauge", "sum", "rate", "counter"}[i%4]))
	}
	cum := make([]float64, len(series))
	for j := range n {
		var pts []tsdb.Datapoint
		for range 20 {
			i := rng.IntN(len(series))
			ts := c.t - int64(rng.IntN(30))*minute - int64(rng.IntN(60_000))
			if j%3 == 0 {
				ts = c.t
			}
			cum[i] += float64(rng.IntN(100))
			v := cum[i]
			if i%4 != 3 {
				v = rng.NormFloat64()
			}
			pts = append(pts, pt(series[i], ts, v))
		}
		appendOK(t, h, pts...)
		c.t += 7 * minute
	}
	return series
}

func TestCaptureRestore(t *testing.T) {
	t.Parallel()
	c := &clock{t0}
	var recs [][]byte
	var lsn uint64
	h := newHead(t, c, func(o *Options) {
		o.Log = func(rec []byte) (uint64, error) {
			recs = append(recs, append([]byte(nil), rec...))
			lsn++
			return lsn, nil
		}
	})
	series := randomLoad(t, h, c, 1, 200)

	// Checkpoint halfway through: the rest is replayed from the log.
	var caps []Capture
	for k := range Shards {
		var cp Capture
		h.CaptureShard(k, func() uint64 { return lsn }, &cp)
		caps = append(caps, cp)
	}
	series = append(series, randomLoad(t, h, c, 2, 200)...)

	c2 := &clock{c.t}
	h2 := newHead(t, c2, func(o *Options) { o.Log = func([]byte) (uint64, error) { return 0, nil } })
	stamps := [Shards]uint64{}
	for _, cp := range caps {
		stamps[cp.Shard] = cp.Stamp
		for _, d := range cp.Created {
			if err := h2.RestoreSeries(d.ID, d.Tags); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, cp := range caps {
		for _, st := range cp.States {
			if err := h2.RestoreState(st.ID, st.Snapshot); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range cp.Blocks {
			if err := h2.RestoreBlock(b.ID, b.Period, b.Data); err != nil {
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
		if err := h2.Replay(rec); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, s := range series {
		if seen[s.String()] {
			continue
		}
		seen[s.String()] = true
		if diff := cmp.Diff(values(t, h, s), values(t, h2, s)); diff != "" {
			t.Errorf("%v after restore mismatch (-want +got):\n%s", s, diff)
		}
	}
	if h.NumSeries() != h2.NumSeries() {
		t.Errorf("restored %d series, want %d", h2.NumSeries(), h.NumSeries())
	}
}

func TestConcurrentAppendAndScan(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + hour}
	h := newHead(t, c, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				var pts []tsdb.Datapoint
				for j := range 50 {
					pts = append(pts, pt(tags.New("name", "m", "g", fmt.Sprint(g), "j", fmt.Sprint(j), "atlas.dstype", "gauge"),
						t0+int64(i%60)*minute, float64(i)))
				}
				appendOK(t, h, pts...)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			ids := h.Index().Select(tags.Eq("name", "m"))
			h.Scan(ids, math.MinInt64, math.MaxInt64, func(v *View) bool { return true })
		}
	})
	wg.Wait()
	if h.NumSeries() != 200 {
		t.Errorf("NumSeries() = %d, want 200", h.NumSeries())
	}
}

func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	c := &clock{t0 + hour}
	h := newHead(t, c, func(o *Options) { o.Log = func([]byte) (uint64, error) { return 1, nil } })
	var pts []tsdb.Datapoint
	for i := range 1000 {
		pts = append(pts, pt(tags.New("name", "m", "i", fmt.Sprint(i)), t0, 1))
	}
	b := &tsdb.Batch{Points: pts}
	ts := int64(t0)
	step := func() {
		ts += minute
		for i := range b.Points {
			b.Points[i].T = ts
		}
		if _, err := h.Append(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	for range 130 { // warm up past a block: later blocks reuse its stream
		step()
	}
	// Appending to existing series, by tags and by ref, allocates nothing.
	if a := testing.AllocsPerRun(20, step); a != 0 {
		t.Errorf("Append by tags: %.1f allocs per 1000-point batch, want 0", a)
	}
	for i := range b.Points {
		b.Points[i].Tags = nil
	}
	if a := testing.AllocsPerRun(20, step); a != 0 {
		t.Errorf("Append by ref: %.1f allocs per 1000-point batch, want 0", a)
	}
}

// TestSealIdleBackfill: a backfill writes periods that ended long ago;
// maintenance between its requests must not seal the blocks its senders
// are still filling (each later datapoint would become a late write, a
// decode and re-encode of the block). Once the series go quiet for
// SealDelay of wall time, their blocks are sealed.
func TestSealIdleBackfill(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 20*hour}
	h := newHead(t, c, func(o *Options) { o.Registry = lib.NewRegistry(lib.RegistryOptions{}) })
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	want := map[int64]float64{}
	for i := int64(0); i < 5*60; i++ { // 5 h: two sealed blocks and one half full
		ts := t0 + i*minute
		appendOK(t, h, pt(g, ts, float64(i)))
		want[ts] = float64(i)
		c.t += 100 // a request every 100 ms of wall time
		h.SealIdle(c.t)
	}
	if n := h.m.late.Count(); n != 0 {
		t.Errorf("%v late writes during the backfill, want 0", n)
	}
	if st := h.MemoryStats(); st.SealedSlots != 2*120 {
		t.Errorf("sealed slots = %d after the backfill, want 240 (its last block still open)", st.SealedSlots)
	}
	c.t += h.opts.SealDelay
	if n := h.SealIdle(c.t); n != 1 {
		t.Errorf("SealIdle after the backfill sealed %d, want 1", n)
	}
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("values mismatch (-want +got):\n%s", diff)
	}
}
