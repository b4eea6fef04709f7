package index

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// hostileIndex holds n series whose v values make `(?=a)(a+)+x`
// backtrack exponentially, and one series with v=b1 that the pattern's
// other alternative matches at once.
func hostileIndex(n int) *Index {
	ix := New()
	for i := range n {
		ix.Add(uint32(i), tags.New("name", "x", "v", strings.Repeat("a", 28)+strconv.Itoa(i)))
	}
	ix.Add(uint32(n), tags.New("name", "x", "v", "b1"))
	return ix
}

// TestBacktrackingBudget is issue #17 item 2: a backtracking match that
// ran out of time counted as "no match", so a series the other alternative
// matches plainly could be left out with no notice. Now the query fails.
func TestBacktrackingBudget(t *testing.T) {
	t.Parallel()
	ix := hostileIndex(50)
	q, err := tags.Re("v", `(?=a)(a+)+x|b1`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ix.SelectContext(context.Background(), q, 100*time.Millisecond)
	var be *tags.RegexBudgetError
	if !errors.As(err, &be) {
		t.Fatalf("SelectContext = %v, want a RegexBudgetError", err)
	}
	// Within budget the answer is complete.
	q2, _ := tags.Re("v", `(?=b)b1|(?=a)a{28}1$`)
	ids, err := ix.SelectContext(context.Background(), q2, time.Second)
	if err != nil || ids.GetCardinality() != 2 {
		t.Fatalf("SelectContext(%v) = %v, %v; want 2 series", q2, ids, err)
	}
	// A cancelled context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.SelectContext(ctx, q, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("SelectContext with a cancelled context = %v", err)
	}
}

// TestBacktrackingOutsideLock is issue #17 item 1: the backtracking
// engine used to run under the index read lock, so adding a series (a
// publish that creates one) waited for the whole regex query.
//
// The query's context parks the matcher at its first check (made once the
// values are copied, before the first match) until the series is added:
// Add can only return if the matcher runs outside the lock. No clock is
// involved; the generous timeout only turns the deadlock of a regression
// into a failure.
func TestBacktrackingOutsideLock(t *testing.T) {
	t.Parallel()
	ix := hostileIndex(200)
	q, _ := tags.Re("v", `(?=a)(a+)+x`)
	ctx := &gateCtx{Context: context.Background(), entered: make(chan struct{}), release: make(chan struct{})}
	release := sync.OnceFunc(func() { close(ctx.release) })
	defer release() // a failure below must not leave the query parked
	done := make(chan error, 1)
	go func() {
		_, err := ix.SelectContext(ctx, q, time.Minute)
		done <- err
	}()
	<-ctx.entered // the matcher is running, the values copied
	added := make(chan struct{})
	go func() {
		ix.Add(100_000, tags.New("name", "new", "v", "c"))
		close(added)
	}()
	select {
	case <-added:
	case err := <-done:
		t.Fatalf("the query returned (%v) while its matcher was parked", err)
	case <-time.After(time.Minute):
		t.Fatal("Add waits behind a running regex query: the matcher holds the index lock")
	}
	release()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("SelectContext after its context was cancelled = %v, want context.Canceled", err)
	}
}

// gateCtx is a context whose first Err call announces itself (entered)
// and waits for release; from then on it answers context.Canceled.
type gateCtx struct {
	context.Context
	entered, release chan struct{}
	once             sync.Once
}

// Err implements context.Context.
func (c *gateCtx) Err() error {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	return context.Canceled
}
