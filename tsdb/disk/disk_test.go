package disk

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"
)

func openMem(t *testing.T, fs vfs.FS) *Disk {
	t.Helper()
	d, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type block struct {
	id     uint32
	period int64
	data   string
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	d := openMem(t, vfs.NewMem())
	if err := d.CheckMeta(Meta{Step: 60000, BlockSteps: 120}); err != nil {
		t.Fatal(err)
	}
	if err := d.CheckMeta(Meta{Step: 60000, BlockSteps: 120}); err != nil {
		t.Fatalf("same meta refused: %v", err)
	}
	if err := d.CheckMeta(Meta{Step: 10000, BlockSteps: 120}); err == nil {
		t.Fatal("a different step was accepted")
	}
	b := d.NewBatch()
	b.SetSeries(7, []byte("seven"))
	b.SetSeries(1<<26|3, []byte("other shard"))
	b.SetState(7, []byte("state"))
	for _, bl := range []block{{7, -2, "neg"}, {7, 5, "a"}, {9, 5, "b"}, {7, 6, "c"}} {
		b.SetBlock(bl.id, bl.period, []byte(bl.data))
	}
	b.SetStamp(0, 42)
	b.SetStamp(63, 7)
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	var series []string
	d.Series(func(id uint32, tags []byte) error { series = append(series, string(tags)); return nil })
	if !slices.Equal(series, []string{"seven", "other shard"}) {
		t.Errorf("Series = %v", series)
	}
	var blocks []block
	d.Blocks(5, func(id uint32, p int64, data []byte) error {
		blocks = append(blocks, block{id, p, string(data)})
		return nil
	})
	if diff := cmp.Diff([]block{{7, 5, "a"}, {9, 5, "b"}, {7, 6, "c"}}, blocks, cmp.AllowUnexported(block{})); diff != "" {
		t.Errorf("Blocks(5) mismatch (-want +got):\n%s", diff)
	}
	stamps, err := d.Stamps(64)
	if err != nil || stamps[0] != 42 || stamps[63] != 7 || stamps[1] != 0 {
		t.Errorf("Stamps = %v, %v", stamps, err)
	}
	if got, _ := d.Block(9, 5); string(got) != "b" {
		t.Errorf("Block(9, 5) = %q", got)
	}
	if got, _ := d.Block(9, 6); got != nil {
		t.Errorf("Block(9, 6) = %q, want nil", got)
	}
	r, err := d.NewPeriodReader(5)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   uint32
		want string
	}{{1, ""}, {7, "a"}, {8, ""}, {9, "b"}, {10, ""}} {
		got, err := r.Block(tc.id)
		if err != nil || string(got) != tc.want {
			t.Errorf("PeriodReader(5).Block(%d) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
	r.Close()
	if p, ok, _ := d.OldestPeriod(); !ok || p != -2 {
		t.Errorf("OldestPeriod = %d, %v; want -2", p, ok)
	}
	if err := d.DeleteBefore(6); err != nil {
		t.Fatal(err)
	}
	if p, ok, _ := d.OldestPeriod(); !ok || p != 6 {
		t.Errorf("after DeleteBefore(6): OldestPeriod = %d, %v", p, ok)
	}
	b = d.NewBatch()
	b.DeleteSeries(7)
	b.Commit(true)
	n := 0
	d.States(func(uint32, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d states after DeleteSeries", n)
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMem()
	d, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBatch()
	b.SetBlock(1, 1, []byte("x"))
	b.Commit(false)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openMem(t, fs)
	if got, _ := d.Block(1, 1); string(got) != "x" {
		t.Errorf("after reopen Block = %q", got)
	}
}

func TestWriteFaults(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})
	d := openMem(t, errorfs.Wrap(vfs.NewMem(), inj))
	b := d.NewBatch()
	b.SetSeries(1, []byte("ok"))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	b = d.NewBatch()
	b.SetSeries(2, []byte("lost"))
	err := b.Commit(true)
	if err == nil {
		err = d.Sync()
	}
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("commit on a failing disk: %v, want ErrFailed", err)
	}
	// The disk stays failed, even when writes would work again.
	failing.Store(false)
	b = d.NewBatch()
	b.SetSeries(3, []byte("after"))
	if err := b.Commit(true); !errors.Is(err, ErrFailed) || d.Err() == nil {
		t.Fatalf("commit after a failure: %v, want ErrFailed", err)
	}
}
