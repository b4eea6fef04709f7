package ingest

import (
	"sync"
	"testing"
)

func TestFreeList(t *testing.T) {
	t.Parallel()
	var f freeList[[64]byte]
	a, b := f.get(), f.get()
	if a == b {
		t.Fatal("two gets returned one item")
	}
	f.put(a)
	f.put(b)
	if got := f.get(); got != b {
		t.Errorf("get after put = %p, want the last one put (%p)", got, b)
	}
	f.put(b)
	// At most freeListMax are kept: the rest are dropped.
	var items []*[64]byte
	for range freeListMax + 5 {
		items = append(items, f.get())
	}
	for _, w := range items {
		f.put(w)
	}
	if n := len(f.free); n != freeListMax {
		t.Errorf("%d kept, want %d", n, freeListMax)
	}
	f.trim()
	if n := len(f.free); n != 0 {
		t.Errorf("%d kept after trim, want 0", n)
	}
	// Concurrent use (for the race detector).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				w := f.get()
				w[0]++
				f.put(w)
			}
		})
	}
	wg.Wait()
}
