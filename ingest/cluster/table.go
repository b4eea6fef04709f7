package cluster

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Node is a store node that serves a partition: its id and the address
// other nodes reach it at (--advertise-addr).
type Node struct {
	ID, Addr string
}

// Owners is the view the query fan-out reads.
type Owners interface {
	// Partitions returns the number of partitions (the same for metrics
	// and spans).
	Partitions() int
	// Owners returns the live store nodes that serve partition p, caught
	// up, preferred first (its assigned owners in rendezvous order, then
	// previous owners still serving it during a hand-off). It is empty
	// when no node serves p. The caller owns the slice.
	Owners(p int) []Node
}

// Membership and its views are Owners.
var (
	_ Owners = (*Membership)(nil)
	_ Owners = (*view)(nil)
)

// table is the members as the members topic says, keyed by node id.
type table map[string]record

// view is what a table means at one instant for one node: computed by
// table.view, immutable afterwards.
type view struct {
	partitions int
	// live are the live members, dead those whose heartbeat is too old,
	// both sorted by id.
	live, dead []record
	// desired are the assigned owners of each partition (ids, rendezvous
	// order); owners the nodes serving it, preferred first.
	desired [][]string
	owners  [][]Node
	// assigned are the partitions the node itself must consume, sorted.
	assigned []int
}

// view computes the assignment at now for node self, with partitions
// partitions, r owners each and members dead after timeout.
func (t table) view(self string, now time.Time, partitions, r int, timeout time.Duration) *view {
	v := &view{partitions: partitions}
	for _, rec := range t {
		if now.Sub(rec.time()) >= timeout {
			v.dead = append(v.dead, rec)
			continue
		}
		v.live = append(v.live, rec)
	}
	byID := func(a, b record) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(v.live, byID)
	slices.SortFunc(v.dead, byID)

	// The live store nodes, and which partitions each serves caught up.
	type store struct {
		rec *record
		up  []bool // by partition
	}
	var stores []store
	me := -1
	for i := range v.live {
		rec := &v.live[i]
		if !rec.store() {
			continue
		}
		st := store{rec: rec, up: make([]bool, partitions)}
		for _, ps := range rec.Partitions {
			if ps.CaughtUp && ps.Partition < partitions {
				st.up[ps.Partition] = true
			}
		}
		if rec.ID == self {
			me = len(stores)
		}
		stores = append(stores, st)
	}
	v.desired = make([][]string, partitions)
	v.owners = make([][]Node, partitions)
	ranked := make([]scored, len(stores))
	for p := range partitions {
		// Rendezvous: every store node's weight for p, highest first.
		for i, st := range stores {
			ranked[i] = scored{i: i, score: score(st.rec.ID, p)}
		}
		slices.SortFunc(ranked, func(a, b scored) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return strings.Compare(stores[a.i].rec.ID, stores[b.i].rec.ID)
		})
		n := min(r, len(ranked))
		desired := make([]string, n)
		mine, handedOff := false, true
		for k, sc := range ranked[:n] {
			desired[k] = stores[sc.i].rec.ID
			mine = mine || sc.i == me
			handedOff = handedOff && stores[sc.i].up[p]
		}
		v.desired[p] = desired
		// Serving: assigned owners that are caught up, then the others
		// still caught up on it (a hand-off in progress), in rank order.
		var owners []Node
		for pass := range 2 {
			for k, sc := range ranked {
				if st := stores[sc.i]; st.up[p] && (k < n) == (pass == 0) {
					owners = append(owners, Node{ID: st.rec.ID, Addr: st.rec.Addr})
				}
			}
		}
		v.owners[p] = owners
		// Make before break: keep a partition that moved away while
		// serving it, until every new owner is caught up.
		if me >= 0 && (mine || (stores[me].up[p] && !handedOff)) {
			v.assigned = append(v.assigned, p)
		}
	}
	return v
}

// Partitions returns the number of partitions.
func (v *view) Partitions() int { return v.partitions }

// Owners returns the nodes serving partition p, preferred first.
func (v *view) Owners(p int) []Node {
	if p < 0 || p >= len(v.owners) {
		return nil
	}
	return slices.Clone(v.owners[p])
}
