package head

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// TestReopenAfterIdleSeal: a backfill whose blocks an idle seal closes
// while their period still gets data reopens the block once, and the
// writes that follow cost an open write each, not a re-encode (they are
// not counted as late writes). The values stay whole throughout.
func TestReopenAfterIdleSeal(t *testing.T) {
	t.Parallel()
	c := &clock{t0 + 10*hour} // the data is hours old: a backfill
	h := newHead(t, c, nil)
	g := tags.New("name", "g", "atlas.dstype", "gauge")
	want := map[int64]float64{}
	write := func(from, to int64) {
		t.Helper()
		for i := from; i < to; i++ {
			ts := t0 + i*minute
			appendOK(t, h, pt(g, ts, float64(i)/4))
			want[ts] = float64(i) / 4
		}
	}
	write(0, 30)
	// The seal comes once the series has been quiet for SealDelay (the
	// sender paused), as SealIdle requires.
	quiet := c.t + h.opts.SealDelay + 1000
	if n := h.SealIdle(quiet); n != 1 {
		t.Fatalf("SealIdle sealed %d, want 1", n)
	}
	write(30, 100)
	if n := h.m.late.Count(); n != 0 {
		t.Errorf("%v late writes after a reopen, want 0", n)
	}
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("after reopen mismatch (-want +got):\n%s", diff)
	}
	// Again mid-block, then into the next period: the reopened block seals
	// as usual and holds every value.
	h.SealIdle(quiet)
	write(100, 130)
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("after the next period mismatch (-want +got):\n%s", diff)
	}
	if st := h.MemoryStats(); st.SealedSlots != 120 {
		t.Errorf("sealed slots = %d, want 120", st.SealedSlots)
	}
	// A write into an older sealed period goes to a late block.
	appendOK(t, h, pt(g, t0+minute, 42))
	want[t0+minute] = 42
	if n := h.m.late.Count(); n != 1 {
		t.Errorf("%v late writes, want 1", n)
	}
	if diff := cmp.Diff(want, values(t, h, g)); diff != "" {
		t.Errorf("after a late write mismatch (-want +got):\n%s", diff)
	}
}
