package cluster

import (
	"fmt"
	"slices"
	"testing"
)

func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("store-%d", i+1))
	}
	return out
}

// TestAssignDeterministic: the owners do not depend on the order in which a
// node learned of its peers.
func TestAssignDeterministic(t *testing.T) {
	t.Parallel()
	a := ids(5)
	b := slices.Clone(a)
	slices.Reverse(b)
	for p := range 64 {
		got, want := Assign(b, p, 2), Assign(a, p, 2)
		if !slices.Equal(got, want) {
			t.Fatalf("Assign(reversed, %d, 2) = %v, want %v", p, got, want)
		}
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("Assign(%v, %d, 2) = %v, want 2 distinct owners", a, p, got)
		}
	}
	if got := Assign(ids(1), 3, 2); !slices.Equal(got, []string{"store-1"}) {
		t.Errorf("Assign(one node, 3, 2) = %v, want [store-1]", got)
	}
	if got := Assign(nil, 3, 2); len(got) != 0 {
		t.Errorf("Assign(none, 3, 2) = %v, want none", got)
	}
}

// TestAssignBalanceAndMovement: partition-replicas spread evenly, and a
// fourth node takes about a quarter of them, each moved replica going to it.
func TestAssignBalanceAndMovement(t *testing.T) {
	t.Parallel()
	const parts, r = 256, 2
	three, four := ids(3), ids(4)
	count := map[string]int{}
	moved := 0
	for p := range parts {
		before, after := Assign(three, p, r), Assign(four, p, r)
		for _, id := range before {
			count[id]++
		}
		for _, id := range after {
			if !slices.Contains(before, id) {
				if id != "store-4" {
					t.Fatalf("partition %d: %s gained it when store-4 joined (%v -> %v)", p, id, before, after)
				}
				moved++
			}
		}
	}
	for id, n := range count {
		// 512 replicas over 3 nodes: 171 each; allow 15%.
		if n < 145 || n > 197 {
			t.Errorf("%s owns %d of %d partition-replicas with 3 nodes, want about %d", id, n, parts*r, parts*r/3)
		}
	}
	// A quarter of 512 is 128.
	if moved < 100 || moved > 156 {
		t.Errorf("store-4 took %d of %d partition-replicas, want about a quarter (%d)", moved, parts*r, parts*r/4)
	}
}
