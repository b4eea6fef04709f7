package main

import (
	"os"

	queryapi "github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// clusterReads is the read side of cluster mode on a node (issue 16):
// what the cluster wiring (cluster.go, cluster_member.go) sets before
// setupClusterQuery runs. On a single node it stays zero and every read
// goes to the local stores, exactly as before.
type clusterReads struct {
	// owners, on a node with the query role, is the partition ownership
	// of the membership (cluster_member.go adapts it to fanout.Owners):
	// the node's reads then fan out over the store nodes.
	owners fanout.Owners
	// store, on a node with the store role, serves the internal read
	// endpoints over the local stores for query nodes.
	store bool
	// serving, when set, says which partitions the store node serves
	// (caught up, by its own heartbeats); it refuses reads of the others.
	serving func(p int) bool

	fan *fanout.Querier // set by setupClusterQuery when owners is
	// strong: fan can read the log's end offsets (a query node on Kafka),
	// so alert rules read strongly (cluster_consistency.go).
	strong bool
}

// setupClusterQuery serves the internal read endpoints on a store node and
// builds the fan-out querier of a query node; the components after it
// read through n.querier() and n.traceSource().
func setupClusterQuery(n *node, g *runGroup) error {
	if n.cluster.store {
		if n.clusterLog != nil && n.clusterLog.partitions > 0 {
			// Calls between services are counted by the partition of
			// their trace, so that query nodes add the store nodes'
			// counts up (before the consumer applies any record).
			n.spans.SetPartitions(n.clusterLog.partitions)
		}
		ho := fanout.HandlerOptions{
			Querier: n.store, Reader: n.spans, Catalog: n.spans, Deps: n.spans, Exemplars: n.spans, Serving: n.cluster.serving,
			Logger: n.logger.With("component", "cluster-internal"), Registry: n.reg,
		}
		if err := setupStrongReads(n, g, nil, &ho); err != nil {
			return err
		}
		h, err := fanout.NewHandler(ho)
		if err != nil {
			return err
		}
		h.Register(n.mux)
	}
	if n.cluster.owners == nil {
		return nil
	}
	fo := fanout.Options{
		Owners:    n.cluster.owners,
		AuthToken: n.cfg.AuthToken,   // inter-node requests carry the cluster's token
		Limits:    n.cfg.QueryLimits, // on the total over the store nodes, as on one store
		Logger:    n.logger.With("component", "fanout"),
		Registry:  n.reg,
	}
	if err := setupStrongReads(n, g, &fo, nil); err != nil {
		return err
	}
	fan, err := fanout.New(fo)
	if err != nil {
		return err
	}
	n.cluster.fan = fan
	n.onShutdown = append(n.onShutdown, func() { _ = fan.Close() })
	n.middleware = append(n.middleware, queryapi.PartialMiddleware, consistencyMiddleware)
	return nil
}

// querier is what the node's metric reads go through: the fan-out over
// the store nodes on a query node of a cluster, else the local store.
func (n *node) querier() tsdb.Querier {
	if n.cluster.fan != nil {
		return n.cluster.fan
	}
	return n.store
}

// exemplarSource is where the node's exemplar reads go (the graph's and
// the Prometheus API's exemplars, alerts' trace ids): the store nodes on a
// query node, whose exemplars came through the log with their traces;
// else the local span store.
func (n *node) exemplarSource() queryapi.ExemplarFunc {
	if n.cluster.fan != nil {
		return n.cluster.fan.Exemplars
	}
	return n.spans.Exemplars
}

// exemplarWriter is where span metrics' exemplars go: the log in cluster
// mode (to the partitions of their traces), else the local span store.
func (n *node) exemplarWriter() tracing.ExemplarStore {
	if n.clusterLog != nil && n.clusterLog.producer != nil {
		return n.clusterLog.producer
	}
	return n.spans
}

// selfAppender is where the node's self-metrics go: in cluster mode the
// log, like any write, so that a query node answers every node's
// self-metrics (and its own) as a single node answers its own; else the
// local store.
func (n *node) selfAppender() tsdb.Appender { return n.appender() }

// selfNode is the nf.node tag of the node's self-metrics: its cluster node
// id in cluster mode (nodes of one host differ), else the hostname.
func (n *node) selfNode() string {
	if n.members != nil {
		return n.members.Status().Self
	}
	host, _ := os.Hostname()
	return host
}

// traceStore is what the trace APIs read.
type traceStore interface {
	tracing.Reader
	tracing.Catalog
	tracing.DependencyReader
}

// traceSource is what the node's trace reads go through, as querier.
func (n *node) traceSource() traceStore {
	if n.cluster.fan != nil {
		return n.cluster.fan
	}
	return n.spans
}
