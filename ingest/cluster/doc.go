// Package cluster is the membership of a Sextant cluster, kept in Kafka
// itself: no etcd, no Consul. Every node heartbeats a record to the
// compacted topic <prefix>-members (keyed by node id: its advertise
// address, roles, the partitions it consumes, whether each is caught up
// and its lag), and every node reads that topic from its start, so all of
// them hold the same table of members.
//
// From that table each node computes the same assignment: the live store
// nodes (a heartbeat younger than Options.Timeout) are ranked per
// partition by rendezvous hashing, and the top Options.Replication own the
// partition. Hand-off is make-before-break: a node newly assigned a
// partition consumes it from its committed offset and reports it caught up
// (within Options.ServeLag of the log's end) before it serves it, and a node
// that lost a partition keeps consuming and serving it until every new
// owner reports it caught up.
//
// The rest of the binary sees plain Go types, never franz-go's: the query
// fan-out reads the Owners view (caught-up store nodes of a partition,
// preferred first); the store-side consumer reads Assignment (the
// partitions this node must consume now, and a channel closed when that
// set changes) and reports its progress through Options.Progress; cmd
// serves GET /api/v1/cluster (Register) and gates /healthz on Ready.
//
// The assignment logic is pure (table.go, assign.go, lag.go) and driven by
// an injected clock; kafka.go holds the I/O. Clocks of the nodes are assumed
// synchronised to well within Options.Timeout: liveness compares the
// heartbeat's own time with the reader's clock.
package cluster
