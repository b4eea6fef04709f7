package tags

import (
	"fmt"
	"hash/fnv"
	"testing"
)

func TestPartitionOf(t *testing.T) {
	t.Parallel()
	f := func(s Set, n int) {
		t.Helper()
		// The hash is FNV-1a of the canonical encoding: the format
		// documents it, so other implementations can compute it too.
		h := fnv.New64a()
		h.Write(s.AppendTo(nil))
		want := 0
		if n > 1 {
			want = int(h.Sum64() % uint64(n))
		}
		if got := Hash(s); got != h.Sum64() {
			t.Errorf("Hash(%v) = %#x, want %#x", s, got, h.Sum64())
		}
		if got := PartitionOf(s, n); got != want {
			t.Errorf("PartitionOf(%v, %d) = %d, want %d", s, n, got, want)
		}
	}
	f(nil, 64)
	f(New("name", "cpu"), 64)
	f(New("name", "cpu"), 1)
	f(New("name", "cpu"), 0)
	f(New("name", "requests", "app", "api01", "node", "i-0123abcd"), 7)
	f(New("name", string(make([]byte, 300)), "k", ""), 64)
	// Pinned values: changing them moves every series of a running
	// cluster to another partition.
	if got := PartitionOf(New("name", "cpu", "app", "www"), 64); got != 0x21 {
		t.Errorf("PartitionOf(cpu, www) = %#x, want 0x21", got)
	}
}

func TestPartitionOfSpread(t *testing.T) {
	t.Parallel()
	var counts [16]int
	for i := range 16000 {
		counts[PartitionOf(New("name", "cpu", "node", string(rune('a'+i%26))+string(rune(i))), 16)]++
	}
	for p, c := range counts {
		if c < 500 || c > 1500 {
			t.Errorf("partition %d holds %d of 16000 series; want about 1000", p, c)
		}
	}
}

func TestPartitionOfAllocs(t *testing.T) {
	s := New("name", "requests", "app", "api01", "node", "i-0123abcd")
	if n := testing.AllocsPerRun(100, func() { PartitionOf(s, 64) }); n != 0 {
		t.Errorf("PartitionOf allocates %v times, want 0", n)
	}
}

// TestPartitionOfEncoded checks that the store's filter, which hashes the
// stored encoding, agrees with PartitionOf on every set.
func TestPartitionOfEncoded(t *testing.T) {
	t.Parallel()
	for i := range 500 {
		s := New("name", "cpu", "node", fmt.Sprintf("i-%d", i), "app", fmt.Sprintf("a%d", i%7))
		for _, n := range []int{1, 2, 3, 64, 1000} {
			if p, q := PartitionOf(s, n), PartitionOfEncoded(s.AppendTo(nil), n); p != q {
				t.Errorf("PartitionOfEncoded(%v, %d) = %d, PartitionOf = %d", s, n, q, p)
			}
		}
	}
}
