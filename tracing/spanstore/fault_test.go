package spanstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sextant-dev/sextant/tsdb/fatal"
)

// TestDiskFailureFailsCleanly is issue #9 item 3 / #17 item 6 for the
// span store: a write the disk refuses used to panic the process from
// Pebble's fatal logger. Now the write returns an error, the store is
// failed (Err, OnFail) and every later operation says so.
func TestDiskFailureFailsCleanly(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failing.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	})
	var failed atomic.Int32
	s, err := Open("", Options{FS: errorfs.Wrap(vfs.NewMem(), inj), OnFail: func(error) { failed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.WriteTraces(ctx, build(spec{trace: 1, span: 1, service: "svc", name: "ok", dur: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	err = s.WriteTraces(ctx, build(spec{trace: 2, span: 1, service: "svc", name: "lost", dur: time.Millisecond}))
	if err == nil {
		t.Fatal("a write the disk refused succeeded")
	}
	failing.Store(false)
	if !errors.Is(s.Err(), fatal.ErrFailed) || failed.Load() != 1 {
		t.Fatalf("after a refused write: Err = %v, OnFail called %d times", s.Err(), failed.Load())
	}
	if _, err := s.GetTrace(ctx, tid(1)); !errors.Is(err, fatal.ErrFailed) {
		t.Errorf("GetTrace on a failed store = %v, want ErrFailed", err)
	}
	if err := s.WriteTraces(ctx, build(spec{trace: 3, span: 1, service: "svc", name: "after", dur: time.Millisecond})); !errors.Is(err, fatal.ErrFailed) {
		t.Errorf("WriteTraces on a failed store = %v, want ErrFailed", err)
	}
}
