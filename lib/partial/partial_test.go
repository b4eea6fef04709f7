package partial

import (
	"context"
	"sync"
	"testing"
)

func TestTracker(t *testing.T) {
	t.Parallel()
	bare := context.Background()
	Mark(bare) // no tracker: nothing to mark, and no panic
	if Is(bare) {
		t.Fatal("Is(context without tracker) = true, want false")
	}
	var nilTracker *Tracker
	if nilTracker.Is() {
		t.Fatal("(*Tracker)(nil).Is() = true, want false")
	}

	ctx, p := With(bare)
	if Is(ctx) || p.Is() {
		t.Fatal("a new tracker is marked")
	}
	inner, q := With(ctx)
	if q != p || inner != ctx {
		t.Fatal("With on a context that carries a tracker made a second one")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { Mark(inner) })
	}
	wg.Wait()
	if !Is(ctx) || !p.Is() {
		t.Fatal("a mark under the inner context did not reach the outer tracker")
	}
}
