package cluster

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestPick: every caller picks the same node for a key, keys spread
// evenly, and a node leaving moves only its own keys.
func TestPick(t *testing.T) {
	t.Parallel()
	if got := Pick(nil, "r"); got != (Node{}) {
		t.Errorf("Pick(no nodes) = %+v, want the zero Node", got)
	}
	nodes := []Node{{"query-1", "a:1"}, {"query-2", "b:1"}, {"query-3", "c:1"}}
	reversed := slices.Clone(nodes)
	slices.Reverse(reversed)
	count := map[string]int{}
	before := map[string]string{}
	const keys = 3000
	for i := range keys {
		key := fmt.Sprintf("group-%d/Alert%d", i%7, i)
		n := Pick(nodes, key)
		if m := Pick(reversed, key); m != n {
			t.Fatalf("Pick(%q) depends on the order of nodes: %v vs %v", key, n, m)
		}
		count[n.ID]++
		before[key] = n.ID
	}
	for id, c := range count {
		if c < keys/3*8/10 || c > keys/3*12/10 {
			t.Errorf("%s owns %d of %d keys, want about a third", id, c, keys)
		}
	}
	// query-2 leaves: only its keys move, spread over the others.
	left := []Node{nodes[0], nodes[2]}
	moved := map[string]int{}
	for key, was := range before {
		now := Pick(left, key).ID
		if was != "query-2" && now != was {
			t.Fatalf("%s moved from %s to %s although %s stayed", key, was, now, was)
		}
		if was == "query-2" {
			moved[now]++
		}
	}
	if moved["query-1"] < count["query-2"]/3 || moved["query-3"] < count["query-2"]/3 {
		t.Errorf("query-2's keys moved unevenly: %v", moved)
	}
	f := func(a, b string) {
		t.Helper()
		if keyScore(a, b) == keyScore(a+b[:1], b[1:]) {
			t.Errorf("keyScore(%q, %q) equals keyScore(%q, %q)", a, b, a+b[:1], b[1:])
		}
	}
	f("node", "key")
	f("a", "bc")
}

// TestLiveNodes: the live members with a role, as heartbeats say; a
// member that stops heartbeating leaves the list after the timeout.
func TestLiveNodes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newSimCluster(t)
		defer s.stopAll()
		one := s.start("store-1")
		if got := one.LiveNodes(RoleStore); len(got) != 0 {
			t.Errorf("LiveNodes before the first heartbeat = %v, want none", got)
		}
		s.start("store-2")
		time.Sleep(2 * time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		want := []Node{{"store-1", "store-1:7101"}, {"store-2", "store-2:7101"}}
		if got := one.LiveNodes(RoleStore); !slices.Equal(got, want) {
			t.Errorf("LiveNodes(store) = %v, want %v", got, want)
		}
		if got := one.LiveNodes(RoleQuery); len(got) != 0 {
			t.Errorf("LiveNodes(query) = %v, want none", got)
		}
		s.stop("store-2")
		time.Sleep(7 * time.Second) // synctest: advances past the 5s timeout
		synctest.Wait()
		if got := one.LiveNodes(RoleStore); !slices.Equal(got, want[:1]) {
			t.Errorf("LiveNodes(store) after store-2 stopped = %v, want %v", got, want[:1])
		}
	})
}
