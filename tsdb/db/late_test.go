package db

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestLateBlockMaintenance: senders in real time around a block boundary,
// in a testing/synctest bubble whose clock is the store's and its
// maintenance loop's. After one sender opened the next period, another's
// datapoints of the period that ended are late writes: nothing is encoded
// again, reads see them, and the maintenance loop seals the late block
// once the seal delay has passed and its sender went quiet.
func TestLateBlockMaintenance(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		reg := lib.NewRegistry(lib.RegistryOptions{})
		store, err := Open("", Options{IngestMaxAge: hour, MaintenanceInterval: 30 * second, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		start := time.Now().UnixMilli()
		bnd := (start/(2*hour) + 1) * 2 * hour // the next block boundary
		g := tags.New("name", "g", "atlas.dstype", "gauge")
		s := tags.New("name", "s", "atlas.dstype", "sum")
		want := map[string]map[int64]float64{"g": {}, "s": {}}
		write := func(ts int64, v float64) {
			t.Helper()
			b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: g, T: ts, V: v}, {Tags: s, T: ts, V: v}}}
			if err := store.Append(context.Background(), b); err != nil || len(b.Rejected) > 0 {
				t.Fatalf("append at %d: %v %v", ts, err, b.Rejected)
			}
			step := (ts + minute - 1) / minute * minute
			want["g"][step] = max(want["g"][step], v)
			want["s"][step] += v
		}
		check := func(when string) {
			t.Helper()
			for name, ts := range map[string]tags.Set{"g": g, "s": s} {
				set, err := store.Fetch(context.Background(), tsdb.FetchRequest{
					Query: tags.Eq("name", name), Start: bnd - hour, End: bnd + hour, Step: minute})
				if err != nil || len(set.Series) != 1 {
					t.Fatalf("%s: fetch %v: %v, %v", when, ts, set, err)
				}
				for i, v := range set.Series[0].Values {
					step := bnd - hour + int64(i)*minute
					if w, ok := want[name][step]; ok && v != w || !ok && v == v {
						t.Errorf("%s: %s at step %d = %v, want %v", when, name, step, v, w)
					}
				}
			}
		}
		count := func(name string) float64 { return reg.Counter(name).Count() }
		// A sender in real time: a datapoint a minute up to the boundary.
		for now := time.Now().UnixMilli(); now < bnd-3*minute; now = time.Now().UnixMilli() {
			write(now, float64(now/minute%7))
			time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		}
		time.Sleep(time.Duration(bnd+20*second-time.Now().UnixMilli()) * time.Millisecond) // synctest: advances the bubble's fake clock
		write(time.Now().UnixMilli(), 1)                                                   // one sender ran ahead: the next period
		sealed := count("sextant.tsdb.blocksSealed")
		// The others' last datapoints of the period that ended, out of order.
		for _, back := range []int64{70, 190, 130, 80} {
			write(bnd-back*second, float64(back))
		}
		if n, re := count("sextant.tsdb.lateWrites"), count("sextant.tsdb.blocksReencoded"); n != 8 || re != 0 {
			t.Errorf("late writes, re-encodes = %v, %v, want 8, 0", n, re)
		}
		check("after the late writes")
		// The maintenance loop leaves the late blocks alone within the
		// seal delay (two steps after the period's end)...
		time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if n := count("sextant.tsdb.blocksSealed") - sealed; n != 0 {
			t.Errorf("%v blocks sealed within the seal delay, want 0", n)
		}
		// ...and seals them after it: one re-encode per series for the
		// boundary (the late block was loaded from its sealed block).
		time.Sleep(3 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if n, re := count("sextant.tsdb.blocksSealed")-sealed, count("sextant.tsdb.blocksReencoded"); n != 2 || re != 2 {
			t.Errorf("after the seal delay: %v blocks sealed, %v re-encoded, want 2, 2", n, re)
		}
		check("after the seal")
	})
}
