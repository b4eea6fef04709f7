package spanstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/tracingtest"
)

// TestDependenciesIn: a store that knows the partitions of its span log
// counts calls by partition, so that the counts of disjoint partition sets
// add up to the whole, exactly; calls counted before it knew, or for
// another partition count, are unplaced.
func TestDependenciesIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now()
	start, end := now.Add(-2*time.Hour).UnixNano(), now.Add(time.Minute).UnixNano()
	open := func() *Store {
		s, err := Open("", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	const n = 8
	s := open()
	s.SetPartitions(n)
	for i := range 3 {
		if err := s.WriteTraces(ctx, tracingtest.Batch(i, now, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Dependencies(ctx, start, end)
	if err != nil || len(all) == 0 {
		t.Fatalf("Dependencies = %d edges, %v", len(all), err)
	}
	// Partition by partition, the counts add up to the whole.
	sum := map[[2]string]int64{}
	for p := range n {
		in, unplaced, err := s.DependenciesIn(ctx, start, end, n, []int{p})
		if err != nil || len(unplaced) != 0 {
			t.Fatalf("DependenciesIn(partition %d) = %v unplaced, %v", p, unplaced, err)
		}
		for _, d := range in {
			sum[[2]string{d.Parent, d.Child}] += d.CallCount
		}
	}
	var summed []tracing.Dependency
	for k, c := range sum {
		summed = append(summed, tracing.Dependency{Parent: k[0], Child: k[1], CallCount: c})
	}
	byEdge := cmpopts.SortSlices(func(a, b tracing.Dependency) bool { return a.Parent+"\x00"+a.Child < b.Parent+"\x00"+b.Child })
	if diff := cmp.Diff(all, summed, byEdge); diff != "" {
		t.Errorf("sum over the partitions (-whole +sum):\n%s", diff)
	}
	// Two disjoint sets of partitions, as two store nodes answer them.
	a, _, _ := s.DependenciesIn(ctx, start, end, n, []int{0, 2, 4, 6})
	b, _, _ := s.DependenciesIn(ctx, start, end, n, []int{1, 3, 5, 7})
	if len(a) == 0 || len(b) == 0 {
		t.Errorf("the even and odd partitions: %d and %d edges; the test needs both", len(a), len(b))
	}
	// Another partition count: nothing can be placed.
	in, unplaced, err := s.DependenciesIn(ctx, start, end, 5, []int{0, 1, 2, 3, 4})
	if err != nil || len(in) != 0 || !cmp.Equal(unplaced, all) {
		t.Errorf("DependenciesIn of 5 partitions = %v, unplaced %v, %v; want all unplaced", in, unplaced, err)
	}

	// Counted before the store knew the partitions: unplaced, and what it
	// counted after is placed.
	s2 := open()
	if err := s2.WriteTraces(ctx, tracingtest.Batch(0, now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, _ := s2.Dependencies(ctx, start, end)
	s2.SetPartitions(n)
	if err := s2.WriteTraces(ctx, tracingtest.Batch(1, now, time.Hour)); err != nil {
		t.Fatal(err)
	}
	in, unplaced, err = s2.DependenciesIn(ctx, start, end, n, []int{0, 1, 2, 3, 4, 5, 6, 7})
	if err != nil || !cmp.Equal(unplaced, before) || len(in) == 0 {
		t.Errorf("after SetPartitions: in %v, unplaced %v (want %v), %v", in, unplaced, before, err)
	}
}

// FuzzParseDepKey: any key parses or is refused without panicking; a
// parsed key built again is the same key.
func FuzzParseDepKey(f *testing.F) {
	f.Add(depKey(29_000_000, 7, "api", "db", 0, -1))
	f.Add(depKey(29_000_000, 7, "api", "db", 64, 63))
	f.Add(depKey(1, 1<<40, "", "x", 1<<16, 5))
	f.Add([]byte{kindDep})
	f.Fuzz(func(t *testing.T, k []byte) {
		parent, child, n, part, ok := parseDepKey(k)
		if !ok {
			return
		}
		if bytes.IndexByte(child, 0) >= 0 || (n == 0) != (part < 0) || (n > 0 && part >= n) {
			t.Fatalf("%x parsed to %q %q %d %d", k, parent, child, n, part)
		}
		again := depKey(0, 0, string(parent), string(child), n, part)
		p2, c2, n2, part2, ok := parseDepKey(again)
		if !ok || !bytes.Equal(p2, parent) || !bytes.Equal(c2, child) || n2 != n || part2 != part {
			t.Fatalf("%x: %q %q %d %d built again parses to %q %q %d %d %v", k, parent, child, n, part, p2, c2, n2, part2, ok)
		}
	})
}
