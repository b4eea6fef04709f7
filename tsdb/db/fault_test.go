package db

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/wal"
)

// The fault-injection suite of issue #17: random byte damage and
// truncation of WAL segments, Pebble tables and manifests, on an in-memory
// FS, for many seeds. For each, Open either succeeds with every record
// before the damage intact (and no wrong value anywhere), or refuses with
// an error; it never panics. SEXTANT_FAULT_SEEDS raises the number of
// seeds (20 by default, for CI).

const (
	faultBatches = 60
	faultSeries  = 10
)

func faultOptions(fs vfs.FS) Options {
	o := crashOptions(wal.SyncBatch)
	o.FS = fs
	o.CheckpointInterval = 1 << 40
	o.MaintenanceInterval = 1 << 40
	return o
}

// faultBatch i writes one datapoint, value i at step i, of series i%10: one
// WAL record per batch.
func faultBatch(i int) *tsdb.Batch {
	return &tsdb.Batch{Points: []tsdb.Datapoint{{
		Tags: tags.New("name", "f", "j", strconv.Itoa(i%faultSeries), "atlas.dstype", "gauge"),
		T:    crashT0 + int64(i)*crashStep, V: float64(i)}}}
}

// faultImage builds a store: the first half of the batches checkpointed
// into Pebble, the rest in the WAL only; it returns an image of exactly
// what was synced (a crash).
func faultImage(t *testing.T) *vfs.MemFS {
	t.Helper()
	fs := vfs.NewCrashableMem()
	db, err := Open("d", faultOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range faultBatches {
		if err := db.Append(context.Background(), faultBatch(i)); err != nil {
			t.Fatal(err)
		}
		if i == faultBatches/2-1 {
			if err := db.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if err := db.disk.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	img := fs.CrashClone(vfs.CrashCloneCfg{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFaultInjection(t *testing.T) {
	t.Parallel()
	seeds := 20
	if s, err := strconv.Atoi(os.Getenv("SEXTANT_FAULT_SEEDS")); err == nil {
		seeds = s
	}
	img := faultImage(t)
	for _, target := range []string{"wal", "sst", "manifest", "pebble-log"} {
		for seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", target, seed), func(t *testing.T) {
				t.Parallel()
				faultOnce(t, img.CrashClone(vfs.CrashCloneCfg{}), target, uint64(seed))
			})
		}
	}
}

func faultOnce(t *testing.T, fs *vfs.MemFS, target string, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 17))
	var files []string
	for _, dir := range []string{"d/wal", "d/pebble"} {
		names, _ := fs.List(dir)
		for _, n := range names {
			switch {
			case target == "wal" && strings.HasSuffix(n, ".wal"),
				target == "sst" && strings.HasSuffix(n, ".sst"),
				target == "manifest" && strings.HasPrefix(n, "MANIFEST-"),
				target == "pebble-log" && strings.HasSuffix(n, ".log"):
				if st, err := fs.Stat(path.Join(dir, n)); err == nil && st.Size() > 0 {
					files = append(files, path.Join(dir, n))
				}
			}
		}
	}
	if len(files) == 0 {
		t.Fatalf("no %s file in the image", target)
	}
	file := files[rng.IntN(len(files))]
	data := readAll(t, fs, file)
	orig := append([]byte(nil), data...)
	var damage int64
	if rng.IntN(3) == 0 {
		damage = rng.Int64N(int64(len(data)))
		data = data[:damage]
	} else {
		damage = rng.Int64N(int64(len(data)))
		for k := range 1 + rng.IntN(4) {
			if int(damage)+k < len(data) {
				data[int(damage)+k] ^= byte(1 + rng.IntN(255))
			}
		}
	}
	writeAll(t, fs, file, data)
	what := fmt.Sprintf("%s damaged at byte %d of %d (truncated: %v)", file, damage, len(orig), len(data) < len(orig))

	var db *DB
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Open panicked after %s: %v", what, r)
			}
		}()
		db, err = Open("d", faultOptions(fs))
		return err
	}()
	if err != nil {
		if !strings.Contains(err.Error(), path.Base(file)) && !strings.Contains(strings.ToLower(err.Error()), "corrupt") {
			t.Errorf("Open after %s refused with an unclear error: %v", what, err)
		}
		t.Logf("refused after %s: %v", what, err)
		return
	}
	defer db.Close()
	// The records wholly before the damage must all be there. For the WAL,
	// only records before the damaged one; for Pebble's files, all.
	need := faultBatches
	if target == "wal" {
		need = walRecordsBefore(orig, damage) + walFirstLSN(file) - 1
	}
	set, err := func() (_ *tsdb.SeriesSet, err error) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Fetch panicked after %s: %v", what, r)
			}
		}()
		return db.Fetch(context.Background(), tsdb.FetchRequest{
			Query: tags.Eq("name", "f"), Start: crashT0, End: crashT0 + faultBatches*crashStep, Step: crashStep})
	}()
	if err != nil {
		if target == "wal" {
			t.Fatalf("Fetch after %s: %v", what, err)
		}
		return // a read of a damaged table fails with an error: acceptable
	}
	defer func() { t.Logf("started after %s", what) }()
	got := map[int]bool{}
	for _, s := range set.Series {
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			if j, _ := s.Tags.Get("j"); int(v) != i || strconv.Itoa(i%faultSeries) != j {
				t.Fatalf("after %s: series %v step %d = %v: a wrong value", what, s.Tags, i, v)
			}
			got[i] = true
		}
	}
	for i := range min(need, faultBatches) {
		if !got[i] {
			t.Fatalf("after %s: batch %d (of %d before the damage) lost; have %d", what, i, need, len(got))
		}
	}
}

// walRecordsBefore counts the records of a segment that end before off.
func walRecordsBefore(seg []byte, off int64) int {
	n, p := 0, int64(0)
	for p+8 <= int64(len(seg)) {
		end := p + 8 + int64(binary.LittleEndian.Uint32(seg[p:]))
		if end > off {
			break
		}
		n++
		p = end
	}
	return n
}

func walFirstLSN(file string) int {
	lsn, _ := strconv.ParseUint(strings.TrimSuffix(path.Base(file), ".wal"), 16, 64)
	return int(lsn)
}

func readAll(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAll(t *testing.T, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
