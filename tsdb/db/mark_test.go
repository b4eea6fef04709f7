package db

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// markSeries is the number of sum series a marked batch adds 1 to, at
// markT: enough to touch several shards, so that a batch is several WAL
// records.
const (
	markSeries = 16
	markT      = crashT0 + 500
)

func markOptions(fs vfs.FS) Options {
	o := faultOptions(fs)
	o.Marks = true
	return o
}

// markBatch adds 1 to every marked series at markT.
func markBatch() *tsdb.Batch {
	b := &tsdb.Batch{}
	for j := range markSeries {
		b.Points = append(b.Points, tsdb.Datapoint{
			Tags: tags.New("name", "m", "j", strconv.Itoa(j), "atlas.dstype", "sum"), T: markT, V: 1})
	}
	return b
}

func mark(next int64) tsdb.Mark { return tsdb.Mark{Log: "metrics", Partition: 3, Next: next} }

// sums returns the value of every marked series at markT's step (NaN
// when it has none).
func sums(t *testing.T, db *DB) []float64 {
	t.Helper()
	// The step ending after markT holds it: a point at T covers (T-step, T].
	start := int64(markT/crashStep*crashStep + crashStep)
	set, err := db.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "m"), Start: start, End: start + crashStep, Step: crashStep})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, markSeries)
	for i := range out {
		out[i] = math.NaN()
	}
	for _, s := range set.Series {
		v, _ := s.Tags.Get("j")
		j, _ := strconv.Atoi(v)
		out[j] = s.Values[0]
	}
	return out
}

// checkMarked fails unless the store's mark is want and every marked
// series holds exactly want (the number of batches applied).
func checkMarked(t *testing.T, db *DB, want int64, what string) {
	t.Helper()
	next, ok := db.Marked("metrics", 3)
	if want == 0 && ok || want > 0 && (!ok || next != want) {
		t.Fatalf("%s: Marked = %d, %v; want %d", what, next, ok, want)
	}
	for j, v := range sums(t, db) {
		if want == 0 && !math.IsNaN(v) || want > 0 && v != float64(want) {
			t.Fatalf("%s: series j=%d holds %v after %d marked batches", what, j, v, want)
		}
	}
}

func TestMarkedAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	db, err := Open("d", markOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := db.Marked("metrics", 3); ok {
		t.Errorf("a new store holds a mark")
	}
	for i := range 3 {
		if err := db.AppendMarked(ctx, markBatch(), mark(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	checkMarked(t, db, 3, "after 3 batches")
	if _, ok := db.Marked("metrics", 4); ok {
		t.Errorf("Marked of another partition is set")
	}
	for _, m := range []tsdb.Mark{{Partition: 1}, {Log: "l", Partition: -1}, {Log: "l", Next: -1}} {
		if err := db.AppendMarked(ctx, markBatch(), m); err == nil {
			t.Errorf("AppendMarked with mark %+v succeeded", m)
		}
	}

	// A crash: the WAL alone holds the marks.
	db2, err := Open("d", markOptions(fs.CrashClone(vfs.CrashCloneCfg{})))
	if err != nil {
		t.Fatal(err)
	}
	checkMarked(t, db2, 3, "reopened from the WAL")
	db2.Close()

	// A checkpoint truncates the WAL: the marks are on disk.
	for i := 3; i < 5; i++ {
		if err := db.AppendMarked(ctx, markBatch(), mark(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Without the WAL (as if the checkpoint had truncated all of it), the
	// marks come from the checkpoint alone.
	img := fs.CrashClone(vfs.CrashCloneCfg{})
	for _, name := range ls(t, img, "d/wal") {
		if err := img.Remove(path.Join("d/wal", name)); err != nil {
			t.Fatal(err)
		}
	}
	db3, err := Open("d", markOptions(img))
	if err != nil {
		t.Fatal(err)
	}
	checkMarked(t, db3, 5, "reopened from the checkpoint")
	db3.Close()

	// A store on disk without Options.Marks refuses marked appends.
	plain, err := Open("p", faultOptions(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.AppendMarked(ctx, markBatch(), mark(1)); !errors.Is(err, errNoMarks) {
		t.Errorf("AppendMarked without Options.Marks = %v, want errNoMarks", err)
	}
	// In memory a mark needs no ordering.
	mem, err := Open("", faultOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if err := mem.AppendMarked(ctx, markBatch(), mark(7)); err != nil {
		t.Fatal(err)
	}
	if next, _ := mem.Marked("metrics", 3); next != 7 {
		t.Errorf("in memory: Marked = %d, want 7", next)
	}
	for j, v := range sums(t, mem) {
		if v != 1 {
			t.Errorf("in memory: series j=%d holds %v, want 1", j, v)
		}
	}
}

// TestMarkCutBeforeItsMark: a WAL that ends inside a marked batch (the
// process died after some of its records reached the file, before its
// mark) holds neither the batch nor its mark after a restart, and the
// writes after the restart are kept, whatever follows.
func TestMarkCutBeforeItsMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	db, err := Open("d", markOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := db.AppendMarked(ctx, markBatch(), mark(int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	img := fs.CrashClone(vfs.CrashCloneCfg{})
	db.Close()
	// Cut the last record, batch 2's mark, off the WAL.
	segs := ls(t, img, "d/wal")
	seg := path.Join("d/wal", segs[len(segs)-1])
	data := readAll(t, img, seg)
	last := 0
	for p := 0; p+8 <= len(data); p += 8 + int(binary.LittleEndian.Uint32(data[p:])) {
		last = p
	}
	if data[last+8] != recMark {
		t.Fatalf("the last WAL record is of type %d, want a mark", data[last+8])
	}
	writeAll(t, img, seg, data[:last])

	db, err = Open("d", markOptions(img))
	if err != nil {
		t.Fatal(err)
	}
	checkMarked(t, db, 1, "after a crash before batch 2's mark")
	// The store goes on: a plain write, then batch 2 again (a consumer
	// resumes after mark 1).
	if err := db.Append(ctx, faultBatch(5)); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendMarked(ctx, markBatch(), mark(2)); err != nil {
		t.Fatal(err)
	}
	checkMarked(t, db, 2, "batch 2 applied again")
	img2 := img.CrashClone(vfs.CrashCloneCfg{})
	db.Close()

	db, err = Open("d", markOptions(img2))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkMarked(t, db, 2, "after a second crash")
	set, err := db.Fetch(ctx, tsdb.FetchRequest{Query: tags.Eq("name", "f"), Start: crashT0, End: crashT0 + 10*crashStep, Step: crashStep})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Series) != 1 || set.Series[0].Values[5] != 5 {
		t.Errorf("the plain write after the first restart is lost: %+v", set.Series)
	}
}

// TestMarksUnderCrash: marked batches, plain appends and checkpoints run
// together, and images of the disk are taken as a crash would leave it
// (only what was synced, or everything written: a killed process). In
// every image the mark equals the number of marked batches the series
// hold, and every plain write acknowledged before the image is there.
func TestMarksUnderCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	db, err := Open("d", markOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	var marked, plain atomic.Int64 // batches acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.AppendMarked(ctx, markBatch(), mark(i)); err != nil {
				t.Error(err)
				return
			}
			marked.Store(i)
		}
	})
	wg.Go(func() {
		for i := 0; i < faultBatches*50; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := &tsdb.Batch{Points: []tsdb.Datapoint{{Tags: tags.New("name", "p", "atlas.dstype", "gauge"), T: crashT0 + int64(i)*crashStep, V: float64(i)}}}
			if err := db.Append(ctx, b); err != nil {
				t.Error(err)
				return
			}
			plain.Store(int64(i + 1))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.Checkpoint(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	type image struct {
		fs            *vfs.MemFS
		marked, plain int64 // acknowledged before the image
		killed        bool
	}
	var images []image
	for i := range 40 {
		time.Sleep(3 * time.Millisecond) // let the writers run between images
		m, p := marked.Load(), plain.Load()
		cfg := vfs.CrashCloneCfg{}
		if i%2 == 1 {
			cfg.UnsyncedDataPercent = 100 // a killed process: what was written stays
			cfg.RNG = rand.New(rand.NewPCG(1, 2))
		}
		images = append(images, image{fs.CrashClone(cfg), m, p, i%2 == 1})
	}
	close(stop)
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for i, img := range images {
		db, err := Open("d", markOptions(img.fs))
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		next, _ := db.Marked("metrics", 3)
		what := "image " + strconv.Itoa(i)
		if next < img.marked {
			t.Errorf("%s: mark %d, but %d marked batches were acknowledged", what, next, img.marked)
		}
		checkMarked(t, db, next, what)
		set, err := db.Fetch(ctx, tsdb.FetchRequest{Query: tags.Eq("name", "p"), Start: crashT0, End: crashT0 + faultBatches*50*crashStep, Step: crashStep})
		if err != nil {
			t.Fatal(err)
		}
		for j := range img.plain {
			if len(set.Series) != 1 || set.Series[0].Values[j] != float64(j) {
				t.Fatalf("%s: plain write %d of %d acknowledged is lost", what, j, img.plain)
			}
		}
		t.Logf("%s (killed %v): %d marked batches, %d plain writes acknowledged; mark %d", what, img.killed, img.marked, img.plain, next)
		db.Close()
	}
}

func ls(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			out = append(out, n)
		}
	}
	// Segment names are fixed-width hex: sorted by name is sorted by LSN.
	slices.Sort(out)
	return out
}

// FuzzMarkRecord: the mark record decoder never panics, and what it
// accepts encodes back to the same bytes.
func FuzzMarkRecord(f *testing.F) {
	for _, m := range []tsdb.Mark{mark(0), mark(1 << 40), {Log: "sextant-metrics", Partition: 63, Next: 12345}} {
		f.Add(appendMarkRecord(nil, m))
	}
	f.Add([]byte{recMark, markVersion, 0})
	f.Add([]byte{recMark, 2, 1, 'x', 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		m, err := decodeMarkRecord(rec)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid mark %+v: %v", m, err)
		}
		if got := appendMarkRecord(nil, m); string(got) != string(rec) {
			t.Fatalf("decode %x = %+v, which encodes to %x", rec, m, got)
		}
	})
}
