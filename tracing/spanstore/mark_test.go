package spanstore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tracing"
)

// markedOptions is a store on fs whose clock keeps the fixtures within
// retention.
func markedOptions(fs vfs.FS) Options {
	return Options{FS: fs, Now: func() time.Time { return base.Add(time.Hour) }}
}

// call is trace i: a span of service "a" calling one of service "b", in
// one write.
func call(i int) ptrace.Traces {
	return build(spec{trace: i, span: 1, service: "a", name: "a.op", start: time.Duration(i) * time.Millisecond, dur: time.Millisecond},
		spec{trace: i, span: 2, parent: 1, service: "b", name: "b.op", start: time.Duration(i) * time.Millisecond, dur: time.Millisecond})
}

// TestMarks: marked writes of spans, of exemplars and of nothing keep
// their partition's mark, which reads back after a close and reopen; a
// plain write leaves it; an invalid mark is refused with nothing stored.
func TestMarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewMem()
	s, err := Open("d", markedOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Marked("spans", 3); ok {
		t.Errorf("a new store holds a mark")
	}
	ex := []tracing.Exemplar{{Tags: map[string]string{"service.name": "a"}, T: base.UnixMilli(), TraceID: tid(1), SpanID: sid(1, 1), Duration: time.Millisecond}}
	writes := []struct {
		name string
		do   func() error
	}{
		{"spans", func() error {
			return s.WriteTracesMarked(ctx, call(1), tracing.Mark{Log: "spans", Partition: 3, Next: 5})
		}},
		{"exemplars", func() error {
			return s.WriteExemplarsMarked(ctx, ex, tracing.Mark{Log: "spans", Partition: 3, Next: 7})
		}},
		{"no spans", func() error {
			return s.WriteTracesMarked(ctx, ptrace.NewTraces(), tracing.Mark{Log: "spans", Partition: 4, Next: 2})
		}},
		{"no exemplars", func() error {
			return s.WriteExemplarsMarked(ctx, nil, tracing.Mark{Log: "other", Partition: 0, Next: 1})
		}},
		{"plain", func() error { return s.WriteTraces(ctx, call(2)) }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
	}
	for _, m := range []tracing.Mark{{Log: "", Partition: 1, Next: 1}, {Log: "spans", Partition: -1, Next: 9}, {Log: "spans", Partition: 3, Next: -1}, {Log: "sp\x00ans", Partition: 3, Next: 9}} {
		if err := s.WriteTracesMarked(ctx, call(9), m); err == nil {
			t.Errorf("WriteTracesMarked with mark %+v succeeded", m)
		}
		if err := s.WriteExemplarsMarked(ctx, ex, m); err == nil {
			t.Errorf("WriteExemplarsMarked with mark %+v succeeded", m)
		}
	}
	if _, err := s.GetTrace(ctx, tid(9)); err == nil {
		t.Errorf("a write with an invalid mark stored its spans")
	}
	want := map[markID]int64{{"spans", 3}: 7, {"spans", 4}: 2, {"other", 0}: 1}
	check := func(what string, s *Store) {
		t.Helper()
		for id, next := range want {
			if got, ok := s.Marked(id.log, id.partition); !ok || got != next {
				t.Errorf("%s: Marked(%q, %d) = %d, %v; want %d", what, id.log, id.partition, got, ok, next)
			}
		}
		if _, ok := s.Marked("spans", 5); ok {
			t.Errorf("%s: a mark of a partition never written", what)
		}
	}
	check("written", s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("d", markedOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check("reopened", s)
	for i := 1; i <= 2; i++ {
		if tr, err := s.GetTrace(ctx, tid(i)); err != nil || len(tr.Spans) != 2 {
			t.Errorf("trace %d after reopening: %d spans, %v", i, len(tr.Spans), err)
		}
	}
}

// TestMarksUnderCrash: marked span writes run, beside plain exemplar
// writes, while images of the disk are taken, as a crash (power lost:
// what was not synced is gone) or a kill (what was written stays) leaves
// it. In every image the store opens, and its mark says exactly which
// writes it holds: trace i is written with mark i+1, so a mark of k means
// traces 0..k-1 and no later one, and a dependency count of k calls;
// every write acknowledged before the image is there.
func TestMarksUnderCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fs := vfs.NewCrashableMem()
	s, err := Open("d", markedOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64 // marked writes acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	written := make(chan struct{}) // closed when the marked writer stops
	wg.Go(func() {
		defer close(written)
		for i := 0; i < 5000; i++ { // trace ids stay distinct
			select {
			case <-stop:
				return
			default:
			}
			if err := s.WriteTracesMarked(ctx, call(i), tracing.Mark{Log: "spans", Partition: 1, Next: int64(i + 1)}); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
		}
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ex := []tracing.Exemplar{{Tags: map[string]string{"n": fmt.Sprint(i % 7)}, T: base.UnixMilli() + int64(i), TraceID: tid(i), Duration: time.Millisecond}}
			if err := s.WriteExemplars(ctx, ex); err != nil {
				t.Error(err)
				return
			}
		}
	})
	type image struct {
		fs     *vfs.MemFS
		acked  int64
		killed bool
	}
	var images []image
	rng := rand.New(rand.NewPCG(16, 1))
	for i := range 16 {
		time.Sleep(3 * time.Millisecond) // let the writers run between images
		// And at least one more marked write since the last image, however
		// busy the machine.
		for last := acked.Load(); acked.Load() == last; runtime.Gosched() {
			if chanClosed(written) {
				break
			}
		}
		a := acked.Load()
		cfg := vfs.CrashCloneCfg{}
		if i%2 == 1 {
			cfg.UnsyncedDataPercent = 100 // a killed process: what was written stays
			cfg.RNG = rng
		}
		images = append(images, image{fs.CrashClone(cfg), a, i%2 == 1})
	}
	close(stop)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if acked.Load() < 16 {
		t.Fatalf("only %d marked writes in the test", acked.Load())
	}
	for i, img := range images {
		what := fmt.Sprintf("image %d (killed %v, %d writes acknowledged before it)", i, img.killed, img.acked)
		s, err := Open("d", markedOptions(img.fs))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		next, ok := s.Marked("spans", 1)
		if !ok {
			next = 0
		}
		if next < img.acked {
			t.Errorf("%s: mark %d, behind the writes acknowledged", what, next)
		}
		for tr := range int(next) + 2 {
			got, err := s.GetTrace(ctx, tid(tr))
			if held := err == nil && len(got.Spans) == 2; held != (tr < int(next)) {
				t.Errorf("%s: mark %d, and trace %d held: %v (%d spans, %v)", what, next, tr, held, len(got.Spans), err)
			}
		}
		deps, err := s.Dependencies(ctx, base.Add(-time.Hour).UnixNano(), base.Add(time.Hour).UnixNano())
		var want []tracing.Dependency
		if next > 0 {
			want = []tracing.Dependency{{Parent: "a", Child: "b", CallCount: next}}
		}
		if diff := cmp.Diff(want, deps, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("%s: mark %d, dependencies (-want +got) %v:\n%s", what, next, err, diff)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// chanClosed says whether c is closed.
func chanClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestMarkUnreadable: a mark value of another version, or damaged, is
// skipped when the store opens (the consumer then resumes at its KV
// offset): the store opens and its other marks read back.
func TestMarkUnreadable(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMem()
	s, err := Open("d", markedOptions(fs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteTracesMarked(context.Background(), call(1), tracing.Mark{Log: "spans", Partition: 0, Next: 3}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string][]byte{
		string(markKey("spans", 1)): {2, 9},          // a later version
		string(markKey("spans", 2)): {markVersion},   // no offset
		string(markKey("spans", 3)): {1, 0x80, 0x00}, // not minimal
		"p\x00\x00":                 {1, 1},          // a malformed key
	} {
		if err := s.db.Set([]byte(k), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("d", markedOptions(fs))
	if err != nil {
		t.Fatalf("open with unreadable marks: %v", err)
	}
	defer s.Close()
	if next, ok := s.Marked("spans", 0); !ok || next != 3 {
		t.Errorf("Marked(spans, 0) = %d, %v; want 3", next, ok)
	}
	for p := 1; p <= 3; p++ {
		if next, ok := s.Marked("spans", p); ok {
			t.Errorf("an unreadable mark of partition %d read as %d", p, next)
		}
	}
}

// FuzzMark: any key or value reads as a mark or is refused without
// panicking; what reads is what writing it again gives back.
func FuzzMark(f *testing.F) {
	f.Add(markKey("sextant.spans", 7), appendMarkValue(nil, 12345))
	f.Add(markKey("s", 0), appendMarkValue(nil, 0))
	f.Add(markKey("x", 1<<31-1), appendMarkValue(nil, math.MaxInt64))
	f.Add([]byte{kindMark, 0, 0, 0, 0, 0}, []byte{markVersion})
	f.Add([]byte("p\x00\x00\x00\x00\x00\x00"), []byte{markVersion, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{}, []byte{2, 1})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if log, p, ok := parseMarkKey(k); ok {
			if again := markKey(log, p); !bytes.Equal(again, k) {
				t.Fatalf("key %q reads as %q/%d, which writes as %q", k, log, p, again)
			}
			if err := (tracing.Mark{Log: log, Partition: p}).Validate(); err != nil {
				t.Fatalf("key %q reads as an invalid mark: %v", k, err)
			}
		}
		if next, err := decodeMarkValue(v); err == nil {
			if again := appendMarkValue(nil, next); !bytes.Equal(again, v) || next < 0 {
				t.Fatalf("value %x reads as %d, which writes as %x", v, next, again)
			}
		}
	})
}
