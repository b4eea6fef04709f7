package main

import (
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
}

// setupClusterQuery serves the internal read endpoints on a store node and
// builds the fan-out querier of a query node; the components after it
// read through n.querier() and n.traceSource().
func setupClusterQuery(n *node, _ *runGroup) error {
	if n.cluster.store {
		h, err := fanout.NewHandler(fanout.HandlerOptions{
			Querier: n.store, Reader: n.spans, Catalog: n.spans, Deps: n.spans, Serving: n.cluster.serving,
			Logger: n.logger.With("component", "cluster-internal"), Registry: n.reg,
		})
		if err != nil {
			return err
		}
		h.Register(n.mux)
	}
	if n.cluster.owners == nil {
		return nil
	}
	fan, err := fanout.New(fanout.Options{
		Owners:    n.cluster.owners,
		AuthToken: n.cfg.AuthToken, // inter-node requests carry the cluster's token
		Logger:    n.logger.With("component", "fanout"),
		Registry:  n.reg,
	})
	if err != nil {
		return err
	}
	n.cluster.fan = fan
	n.onShutdown = append(n.onShutdown, func() { _ = fan.Close() })
	n.middleware = append(n.middleware, queryapi.PartialMiddleware)
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
