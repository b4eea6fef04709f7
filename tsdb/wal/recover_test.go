package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/tsdb"
)

// replayAll opens dir and replays it, returning the records with their LSNs
// or the Replay error.
func replayAll(t *testing.T, dir string) (map[string]uint64, []string, error) {
	t.Helper()
	w, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	lsns := map[string]uint64{}
	var recs []string
	err = w.Replay(func(lsn uint64, rec []byte) error {
		lsns[string(rec)] = lsn
		recs = append(recs, string(rec))
		return nil
	})
	return lsns, recs, err
}

func writeRecords(t *testing.T, dir string, n int, opts Options) []string {
	t.Helper()
	w, _ := open(t, dir, opts)
	var want []string
	for i := range n {
		rec := fmt.Sprintf("record-%03d-payload", i)
		logSync(t, w, rec)
		want = append(want, rec)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestDamageBeforeValidRecords is issue #17 item 5: bytes changed in the
// middle of the last segment used to be cut off as a torn tail, losing
// every acknowledged record after them.
func TestDamageBeforeValidRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := writeRecords(t, dir, 20, Options{})
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("%d segments, want 1", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	recLen := int64(len(b) / 20)
	damageAt := 5*recLen + headerSize + 3 // inside the payload of record 5
	b[damageAt] ^= 0x5a
	if err := os.WriteFile(segs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	_, _, err := replayAll(t, dir)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, tsdb.ErrCorrupt) {
		t.Fatalf("Replay = %v, want a *CorruptError", err)
	}
	if ce.File != segs[0] || ce.Offset != 5*recLen {
		t.Errorf("CorruptError names %s at %d, want %s at %d", ce.File, ce.Offset, segs[0], 5*recLen)
	}
	if after, _ := os.ReadFile(segs[0]); len(after) != len(b) {
		t.Fatalf("Replay changed the damaged segment: %d bytes, was %d", len(after), len(b))
	}

	dmg, err := Repair(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dmg) != 1 || dmg[0].Offset != 5*recLen || dmg[0].Length != recLen {
		t.Fatalf("Repair = %+v, want one region at %d of %d bytes", dmg, 5*recLen, recLen)
	}
	q, err := os.ReadFile(dmg[0].Quarantine)
	if err != nil || int64(len(q)) != recLen {
		t.Fatalf("quarantine file: %d bytes, %v", len(q), err)
	}
	lsns, recs, err := replayAll(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	wantAfter := slices.Delete(slices.Clone(want), 5, 6)
	if !slices.Equal(recs, wantAfter) {
		t.Fatalf("after repair replay = %v, want %v", recs, wantAfter)
	}
	for i, rec := range want {
		if lsn, ok := lsns[rec]; ok && lsn < uint64(i+1) {
			t.Errorf("record %d has LSN %d after repair, below its own %d", i, lsn, i+1)
		}
	}
}

// TestRepairMiddleSegmentKeepsLSNs: with a later segment, the fillers are
// exact and every record keeps its LSN.
func TestRepairMiddleSegmentKeepsLSNs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	want := writeRecords(t, dir, 30, Options{SegmentSize: 200})
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	b, _ := os.ReadFile(segs[1])
	b[headerSize+1] ^= 0xff // the first record of the second segment
	os.WriteFile(segs[1], b, 0o644)
	if _, _, err := replayAll(t, dir); !errors.Is(err, tsdb.ErrCorrupt) {
		t.Fatalf("Replay = %v, want corruption", err)
	}
	if _, err := Repair(dir, nil); err != nil {
		t.Fatal(err)
	}
	lsns, recs, err := replayAll(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want)-1 {
		t.Fatalf("replayed %d records after repair, want %d", len(recs), len(want)-1)
	}
	for i, rec := range want {
		if lsn, ok := lsns[rec]; ok && lsn != uint64(i+1) {
			t.Errorf("record %d has LSN %d after repair, want %d", i, lsn, i+1)
		}
	}
}

// TestWALOnFS: the WAL runs on the FS it is given (faults can be injected).
func TestWALOnFS(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMem()
	w, err := Open("wal", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Replay(func(uint64, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	logSync(t, w, "in memory")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List("wal")
	if len(names) != 1 {
		t.Fatalf("MemFS holds %v", names)
	}
	if _, err := os.Stat("wal"); err == nil {
		t.Fatal("the WAL wrote to the OS file system")
	}
}
