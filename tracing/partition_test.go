package tracing

import (
	"hash/fnv"
	"testing"
)

func TestTracePartition(t *testing.T) {
	t.Parallel()
	for _, id := range []TraceID{{}, {1}, {0xc7, 0xa5, 15: 9}, {0: 0xff, 15: 0xff}} {
		h := fnv.New64a()
		h.Write(id[:])
		for _, n := range []int{0, 1, 2, 64, 1000} {
			want := 0
			if n > 1 {
				want = int(h.Sum64() % uint64(n))
			}
			if got := TracePartition(id, n); got != want {
				t.Errorf("TracePartition(%v, %d) = %d, want %d", id, n, got, want)
			}
		}
	}
}
