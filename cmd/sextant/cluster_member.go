package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/sextant-dev/sextant/ingest/cluster"
	"github.com/sextant-dev/sextant/query/fanout"
)

// roleNames returns the roles by name, sorted.
func roleNames(r roles) []string {
	var out []string
	if r.Ingest {
		out = append(out, cluster.RoleIngest)
	}
	if r.Query {
		out = append(out, cluster.RoleQuery)
	}
	if r.Store {
		out = append(out, cluster.RoleStore)
	}
	return out
}

// setupClusterMember joins the cluster's membership when --kafka-brokers is
// set (without it: nothing, the single node of old): it heartbeats through
// <prefix>-members, serves GET /api/v1/cluster, holds /healthz at 503
// until a store node has caught up, and exposes n.members (the Owners view
// for the query fan-out, the assignment for the store consumer).
func setupClusterMember(n *node, g *runGroup) error {
	cfg := n.cfg.Cluster
	if !cfg.enabled() {
		return nil
	}
	host, _ := os.Hostname()
	flagID := cfg.NodeID
	if flagID == host {
		// The default: the id kept in the data dir, if any, wins, so a
		// node first started with --node-id keeps it without the flag.
		flagID = ""
	}
	id, err := cluster.NodeID(n.cfg.DataDir, flagID, host)
	if err != nil {
		return fmt.Errorf("--node-id: %w", err)
	}
	prefix := cfg.TopicPrefix
	opts := cluster.Options{
		Brokers:     cfg.brokers(),
		Topic:       prefix + "-members",
		DataTopics:  []string{prefix + "-metrics", prefix + "-spans"},
		NodeID:      id,
		Roles:       roleNames(cfg.Roles),
		Replication: cfg.ReplicationFactor,
		Logger:      n.logger.With("component", "cluster"),
		Registry:    n.reg,
	}
	if cfg.Roles.Store {
		// The store consumer's progress, when a consumer runs (it sets
		// n.clusterProgress while the components are built).
		opts.Progress = func() []cluster.Applied {
			if n.clusterProgress == nil {
				return nil
			}
			return n.clusterProgress()
		}
	}
	m, err := cluster.New(opts)
	if err != nil {
		return err
	}
	n.members = m
	// Reads (cluster_query.go): a store node serves its partitions to query
	// nodes; a query node fans its reads out to the partitions' owners.
	n.cluster.store = cfg.Roles.Store
	if cfg.Roles.Store {
		// A restarted store node answers for a partition only once it
		// caught up on it again, whatever its old heartbeat still says.
		n.cluster.serving = m.Serving
	}
	if cfg.Roles.Query {
		n.cluster.owners = fanoutOwners{m}
	}
	// The store consumer (cluster.go) consumes the partitions the
	// membership assigns this node and reports how far it applied them.
	if n.clusterLog == nil {
		n.clusterLog = &clusterLog{}
	}
	if cfg.Roles.Store {
		n.clusterLog.assign = m.AssignmentChan()
		n.clusterProgress = func() []cluster.Applied {
			c := n.clusterLog.consumer
			if c == nil {
				return nil
			}
			var out []cluster.Applied
			for _, p := range c.Progress() {
				out = append(out, cluster.Applied{Topic: p.Topic, Partition: p.Partition, Offset: p.Applied, Time: p.Time})
			}
			return out
		}
	}
	m.Register(n.mux)
	n.readiness = append(n.readiness, m.Ready)
	g.Go("cluster-member", func(ctx context.Context) error {
		// The listener is bound now: advertise its port.
		m.SetAddr(advertiseAddr(cfg.AdvertiseAddr, n.cfg.Listen, n.httpAddr, host))
		return m.Run(ctx)
	})
	return nil
}

// advertiseAddr is --advertise-addr, or else the host of --listen (the
// hostname when it names no host or every interface) with the port the
// listener is bound to.
func advertiseAddr(flag, listen, bound, hostname string) string {
	if flag != "" {
		return flag
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = hostname
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		_, port, _ = net.SplitHostPort(listen)
	}
	return net.JoinHostPort(host, port)
}

// fanoutOwners adapts the membership's view of partition owners to the
// fan-out querier's Owners (query may not import ingest, so the two
// packages each name the shape and cmd joins them).
type fanoutOwners struct{ m *cluster.Membership }

// Partitions is the number of partitions of the data topics.
func (o fanoutOwners) Partitions() int { return o.m.Partitions() }

// Owners are the caught-up store nodes serving partition p.
func (o fanoutOwners) Owners(p int) []fanout.Node {
	nodes := o.m.Owners(p)
	out := make([]fanout.Node, len(nodes))
	for i, nd := range nodes {
		out[i] = fanout.Node{ID: nd.ID, Addr: nd.Addr}
	}
	return out
}
