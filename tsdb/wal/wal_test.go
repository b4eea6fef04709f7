package wal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dir string, opts Options) (*WAL, []string) {
	t.Helper()
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	var recs []string
	var lsns []uint64
	if err := w.Replay(func(lsn uint64, rec []byte) error {
		recs = append(recs, string(rec))
		lsns = append(lsns, lsn)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(lsns); i++ {
		if lsns[i] != lsns[i-1]+1 {
			t.Fatalf("replayed LSNs not consecutive: %v", lsns)
		}
	}
	return w, recs
}

func logSync(t *testing.T, w *WAL, rec string) uint64 {
	t.Helper()
	lsn, err := w.Log([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(context.Background(), lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

func TestLogReplay(t *testing.T) {
	t.Parallel()
	for _, mode := range []SyncMode{SyncBatch, SyncAlways, SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			w, recs := open(t, dir, Options{Sync: mode, SegmentSize: 64})
			if len(recs) != 0 {
				t.Fatalf("new wal replayed %v", recs)
			}
			var want []string
			for i := range 50 {
				rec := fmt.Sprintf("record-%02d", i)
				if lsn := logSync(t, w, rec); lsn != uint64(i+1) {
					t.Fatalf("LSN %d, want %d", lsn, i+1)
				}
				want = append(want, rec)
			}
			if w.Segments() < 5 {
				t.Errorf("%d segments with a 64-byte segment size", w.Segments())
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w, recs = open(t, dir, Options{Sync: mode})
			if !slices.Equal(recs, want) {
				t.Fatalf("replay = %v, want %v", recs, want)
			}
			if lsn := logSync(t, w, "after"); lsn != 51 {
				t.Errorf("LSN after reopen = %d, want 51", lsn)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{})
	logSync(t, w, "one")
	logSync(t, w, "two")
	w.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{9, 0, 0, 0, 1, 2}) // half a header of a third record
	f.Close()
	w, recs := open(t, dir, Options{})
	if !slices.Equal(recs, []string{"one", "two"}) {
		t.Fatalf("replay after torn tail = %v", recs)
	}
	if lsn := logSync(t, w, "three"); lsn != 3 {
		t.Errorf("LSN = %d, want 3", lsn)
	}
	w.Close()
	_, recs = open(t, dir, Options{})
	if !slices.Equal(recs, []string{"one", "two", "three"}) {
		t.Fatalf("replay = %v", recs)
	}
}

func TestCorruptMiddleSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 1})
	logSync(t, w, "one")
	logSync(t, w, "two")
	logSync(t, w, "three")
	w.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	b, _ := os.ReadFile(segs[0])
	b[len(b)-1] ^= 0xff
	os.WriteFile(segs[0], b, 0o644)
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Replay(func(uint64, []byte) error { return nil }); err == nil {
		t.Fatal("Replay of a corrupt middle segment succeeded")
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := open(t, dir, Options{SegmentSize: 1})
	for i := range 10 {
		logSync(t, w, fmt.Sprint(i))
	}
	if err := w.Truncate(4); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, recs := open(t, dir, Options{})
	defer w.Close()
	if !slices.Equal(recs, []string{"4", "5", "6", "7", "8", "9"}) {
		t.Fatalf("after Truncate(4) replay = %v", recs)
	}
}

func TestLogBeforeReplay(t *testing.T) {
	t.Parallel()
	w, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Log([]byte("x")); err == nil {
		t.Fatal("Log before Replay succeeded")
	}
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	for _, mode := range []SyncMode{SyncBatch, SyncAlways, SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			w, _ := open(t, dir, Options{Sync: mode, SegmentSize: 4096})
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						logSync(t, w, fmt.Sprintf("%d-%d", g, i))
					}
				})
			}
			wg.Wait()
			w.Close()
			_, recs := open(t, dir, Options{})
			if len(recs) != 1600 {
				t.Fatalf("replayed %d records, want 1600", len(recs))
			}
			// Per writer, records keep their order.
			next := map[string]int{}
			for _, r := range recs {
				var g, i int
				fmt.Sscanf(r, "%d-%d", &g, &i)
				if i != next[fmt.Sprint(g)] {
					t.Fatalf("writer %d: record %d after %d", g, i, next[fmt.Sprint(g)]-1)
				}
				next[fmt.Sprint(g)]++
			}
		})
	}
}

func TestParseSyncMode(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"always", "batch", "interval"} {
		m, err := ParseSyncMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseSyncMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Error("ParseSyncMode(sometimes) succeeded")
	}
}

// TestSpareTrimmed checks that a burst's large buffer is let go once the
// writes after it need a quarter of it, and that small ones are kept.
func TestSpareTrimmed(t *testing.T) {
	t.Parallel()
	w, _ := open(t, t.TempDir(), Options{Sync: SyncBatch})
	big := make([]byte, 2*spareKeep)
	for i := 0; i < 3; i++ { // pending and spare both grow to the burst
		lsn, err := w.Log(big)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(context.Background(), lsn); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ { // then small writes: each flush drops the big buffer it wrote
		lsn, err := w.Log([]byte("small"))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(context.Background(), lsn); err != nil {
			t.Fatal(err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := cap(w.mu.spare) + cap(w.mu.pending); c > spareKeep {
		t.Errorf("buffers of %d bytes kept after small writes, want at most %d", c, spareKeep)
	}
}
