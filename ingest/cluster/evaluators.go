package cluster

import (
	"slices"
	"strings"
)

// LiveNodes returns the live members with role (RoleQuery, RoleStore,
// RoleIngest), sorted by id. The node itself is among them only once this
// process has heartbeated: the heartbeat a node sent before it restarted,
// read back from the members topic, does not make the new process a
// member yet. The caller owns the slice.
//
// The query nodes use it to share work that one node must do for all,
// such as evaluating an alert rule: each piece goes to Pick of the live
// query nodes, and every node computes the same answer from the same
// members topic.
func (m *Membership) LiveNodes(role string) []Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Node
	for _, rec := range m.mu.view.live {
		if !slices.Contains(rec.Roles, role) || (rec.ID == m.opts.NodeID && !m.mu.beat) {
			continue
		}
		out = append(out, Node{ID: rec.ID, Addr: rec.Addr})
	}
	return out
}

// Pick returns the node of nodes that owns key by rendezvous hashing (the
// highest weight of a hash of node id and key; ties, which need a hash
// collision, to the smaller id), or the zero Node when nodes is empty.
// Every caller with the same nodes picks the same one, and a node that
// joins or leaves moves only the keys it gains or loses.
func Pick(nodes []Node, key string) Node {
	var best Node
	var bestScore uint64
	for i, n := range nodes {
		s := keyScore(n.ID, key)
		if i == 0 || s > bestScore || (s == bestScore && strings.Compare(n.ID, best.ID) < 0) {
			best, bestScore = n, s
		}
	}
	return best
}

// keyScore is node id's rendezvous weight for key: FNV-1a over the id, a
// zero byte and the key, finished with splitmix64's mixer (as score does
// for partitions).
func keyScore(id, key string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	x := uint64(offset64)
	for i := 0; i < len(id); i++ {
		x ^= uint64(id[i])
		x *= prime64
	}
	x *= prime64 // the separator byte 0: "ab"+"c" and "a"+"bc" differ
	for i := 0; i < len(key); i++ {
		x ^= uint64(key[i])
		x *= prime64
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
