package cluster

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Status is the JSON of GET /api/v1/cluster (docs/cluster.md).
type Status struct {
	// Self is the id of the node that answered.
	Self string `json:"self"`
	// Partitions and ReplicationFactor are the cluster's settings as
	// this node sees them.
	Partitions        int `json:"partitions"`
	ReplicationFactor int `json:"replicationFactor"`
	// Nodes are the members, live first, each sorted by id.
	Nodes []NodeStatus `json:"nodes"`
	// Unserved are the partitions no live node serves caught up: a query
	// now answers them partially.
	Unserved []int `json:"unserved"`
}

// NodeStatus is one member in Status.
type NodeStatus struct {
	ID    string   `json:"id"`
	Addr  string   `json:"addr"`
	Roles []string `json:"roles"`
	// Live says the last heartbeat is younger than the timeout.
	Live bool `json:"live"`
	// LastHeartbeat is the time of its last heartbeat (RFC 3339, UTC).
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	// Partitions are the partitions it owns (assigned to it) or consumes,
	// by number.
	Partitions []NodePartition `json:"partitions"`
}

// NodePartition is one partition of a node in Status.
type NodePartition struct {
	Partition int `json:"partition"`
	// Assigned says the node is one of the partition's owners; a node
	// that consumes a partition it is not assigned is handing it off.
	Assigned bool `json:"assigned"`
	// Serving says the node is caught up on it and answers queries for it.
	Serving bool `json:"serving"`
	// LagRecords and LagSeconds are its lag as last reported (LagSeconds
	// -1: not known yet); absent when it does not consume the partition
	// yet.
	LagRecords *int64   `json:"lagRecords,omitempty"`
	LagSeconds *float64 `json:"lagSeconds,omitempty"`
}

// Status returns the cluster as this node sees it now.
func (m *Membership) Status() Status {
	m.mu.Lock()
	v := m.mu.view
	m.mu.Unlock()
	st := Status{Self: m.opts.NodeID, Partitions: v.partitions, ReplicationFactor: m.opts.Replication,
		Nodes: []NodeStatus{}, Unserved: []int{}}
	for p, owners := range v.owners {
		if len(owners) == 0 {
			st.Unserved = append(st.Unserved, p)
		}
	}
	add := func(rec record, live bool) {
		ns := NodeStatus{ID: rec.ID, Addr: rec.Addr, Roles: rec.Roles, Live: live,
			LastHeartbeat: rec.time().UTC(), Partitions: []NodePartition{}}
		if ns.Roles == nil {
			ns.Roles = []string{}
		}
		for p := range v.partitions {
			assigned := live && slices.Contains(v.desired[p], rec.ID)
			ps, ok := rec.partition(p)
			if !assigned && !ok {
				continue
			}
			np := NodePartition{Partition: p, Assigned: assigned, Serving: live && ok && ps.CaughtUp}
			if ok {
				np.LagRecords, np.LagSeconds = &ps.LagRecords, &ps.LagSeconds
			}
			ns.Partitions = append(ns.Partitions, np)
		}
		st.Nodes = append(st.Nodes, ns)
	}
	for _, rec := range v.live {
		add(rec, true)
	}
	for _, rec := range v.dead {
		add(rec, false)
	}
	return st
}

// Register serves GET /api/v1/cluster on mux.
func (m *Membership) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(m.Status()); err != nil {
			m.opts.Logger.Debug("write cluster status", "err", err)
		}
	})
}
