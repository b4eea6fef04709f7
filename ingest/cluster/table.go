package cluster

import (
	"slices"
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
	byID := map[string]*record{}
	var stores []string
	for _, rec := range t {
		if now.Sub(rec.time()) >= timeout {
			v.dead = append(v.dead, rec)
			continue
		}
		v.live = append(v.live, rec)
	}
	byIDSort := func(a, b record) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	}
	slices.SortFunc(v.live, byIDSort)
	slices.SortFunc(v.dead, byIDSort)
	for i := range v.live {
		rec := &v.live[i]
		byID[rec.ID] = rec
		if rec.store() {
			stores = append(stores, rec.ID)
		}
	}
	me := byID[self]
	v.desired = make([][]string, partitions)
	v.owners = make([][]Node, partitions)
	ranked := slices.Clone(stores)
	var scratch []scored
	for p := range partitions {
		scratch = rank(ranked, p, scratch)
		desired := slices.Clone(ranked[:min(r, len(ranked))])
		v.desired[p] = desired
		// Serving: assigned owners that are caught up, then the others
		// still caught up on it (a hand-off in progress), in rank order.
		var serving, extra []Node
		handedOff := true
		for _, id := range ranked {
			rec := byID[id]
			up := rec.caughtUp(p)
			in := slices.Contains(desired, id)
			if in && !up {
				handedOff = false
			}
			switch {
			case up && in:
				serving = append(serving, Node{ID: id, Addr: rec.Addr})
			case up:
				extra = append(extra, Node{ID: id, Addr: rec.Addr})
			}
		}
		v.owners[p] = append(serving, extra...)
		if me == nil || !me.store() {
			continue
		}
		// Make before break: keep a partition that moved away while
		// serving it, until every new owner is caught up.
		if slices.Contains(desired, self) || (me.caughtUp(p) && !handedOff) {
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
