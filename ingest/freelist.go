package ingest

import "sync"

// freeList is a bounded stack of reusable per-request workspaces, for
// those large enough that how many stay allocated matters: a remote-write
// workspace of a 10 000-series request holds about 7 MB. A sync.Pool keeps
// the items it held at a collection in its victim cache until the next
// one, and with a collection every second or two under load that doubled
// what the workspaces held (8 alive for 4 concurrent senders, 59 MB at the
// end of a million-series load; docs/benchmarks.md, "Memory per series at
// a million series"). A freeList holds at most as many as were in use at
// once, up to freeListMax, until Trim. Safe for concurrent use.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

// freeListMax bounds the items a freeList keeps.
const freeListMax = 16

// get returns a free item, or a new one.
func (f *freeList[T]) get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.free); n > 0 {
		w := f.free[n-1]
		f.free[n-1] = nil
		f.free = f.free[:n-1]
		return w
	}
	return new(T)
}

// put gives w back for reuse; it is dropped when the list is full.
func (f *freeList[T]) put(w *T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.free) < freeListMax {
		f.free = append(f.free, w)
	}
}

// trim drops every free item.
func (f *freeList[T]) trim() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.free)
	f.free = f.free[:0]
}
