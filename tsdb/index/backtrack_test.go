package index

import (
	"context"
	"errors"
	"strconv"
	"strings"
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
func TestBacktrackingOutsideLock(t *testing.T) {
	t.Parallel()
	ix := hostileIndex(200)
	q, _ := tags.Re("v", `(?=a)(a+)+x`)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		_, err := ix.SelectContext(context.Background(), q, 1500*time.Millisecond)
		done <- err
	}()
	<-started
	time.Sleep(50 * time.Millisecond) // let the regex get going
	t0 := time.Now()
	ix.Add(100_000, tags.New("name", "new", "v", "c"))
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("Add waited %v behind a regex query", d)
	}
	if err := <-done; err == nil {
		t.Error("hostile regex finished within its budget")
	}
}
