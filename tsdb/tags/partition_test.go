package tags

import (
	"strings"
	"testing"
)

func TestPartitionOf(t *testing.T) {
	t.Parallel()
	sets := []Set{
		New("name", "cpu"),
		New("name", "cpu", "node", "i-1"),
		New("name", "req", "k", strings.Repeat("v", 300)), // a two-byte length
		nil,
	}
	seen := map[int]bool{}
	for _, s := range sets {
		for _, n := range []int{1, 3, 64} {
			p := PartitionOf(s, n)
			if p < 0 || p >= n {
				t.Fatalf("PartitionOf(%v, %d) = %d, out of range", s, n, p)
			}
			if q := PartitionOfEncoded(s.AppendTo(nil), n); q != p {
				t.Errorf("PartitionOfEncoded(%v, %d) = %d, PartitionOf = %d", s, n, q, p)
			}
			if n == 64 {
				seen[p] = true
			}
		}
	}
	// Fixed values: the hash is part of the cluster's wire contract, a
	// change would move every series to another partition.
	if got := PartitionOf(New("name", "cpu"), 1<<20); got != 0x33515 {
		t.Errorf("PartitionOf(name=cpu, 2^20) = %#x, want 0x33515", got)
	}
	if len(seen) < 2 {
		t.Errorf("every set hashed to one partition of 64: %v", seen)
	}
}
