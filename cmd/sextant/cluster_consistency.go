package main

import (
	"context"
	"net/http"

	"github.com/sextant-dev/sextant/ingest/kafkalog"
	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tsdb"
)

// Strong reads in cluster mode (issue 16, docs/cluster.md "Read after
// write"): a query node reads the log's end offsets when a strong read
// arrives, and every store node waits until it applied them.

// setupStrongReads gives a query node's fan-out the log's end offsets
// (through one Kafka client of its own) and a store node's internal
// endpoints its consumer's progress. Without Kafka it does nothing: a
// strong read then fails with 503 rather than pass a stale answer.
func setupStrongReads(n *node, g *runGroup, fo *fanout.Options, ho *fanout.HandlerOptions) error {
	cfg := n.cfg.Cluster
	if !cfg.enabled() {
		return nil
	}
	if ho != nil && n.clusterLog != nil && n.clusterLog.consumer != nil {
		c := n.clusterLog.consumer
		ho.WaitApplied = func(ctx context.Context, l fanout.Log, p int, offset int64) error {
			return c.WaitApplied(ctx, logTopic(cfg.TopicPrefix, l), p, offset)
		}
	}
	if fo != nil {
		r, err := kafkalog.NewEndReader(cfg.brokers())
		if err != nil {
			return err
		}
		fo.EndOffsets = func(ctx context.Context, l fanout.Log) ([]int64, error) {
			return r.EndOffsets(ctx, logTopic(cfg.TopicPrefix, l))
		}
		n.cluster.strong = true
		g.Go("cluster-end-offsets", func(ctx context.Context) error {
			<-ctx.Done()
			r.Close()
			return nil
		})
	}
	return nil
}

// logTopic is the topic of a log.
func logTopic(prefix string, l fanout.Log) string {
	if l == fanout.LogSpans {
		return kafkalog.SpansTopic(prefix)
	}
	return kafkalog.MetricsTopic(prefix)
}

// consistencyMiddleware reads the consistency a request asks for (header
// X-Sextant-Read-Consistency, or the URL parameter consistency) into its
// context, for every API of a query node; a value other than strong or
// eventual is a 400 naming the field.
func consistencyMiddleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		field, v := fanout.ConsistencyHeader, r.Header.Get(fanout.ConsistencyHeader)
		if p := r.URL.Query().Get(fanout.ConsistencyParam); p != "" {
			field, v = fanout.ConsistencyParam, p
		}
		if v == "" {
			h.ServeHTTP(w, r)
			return
		}
		c, err := fanout.ParseConsistency(v)
		if err != nil {
			http.Error(w, field+": "+err.Error(), http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r.WithContext(fanout.WithConsistency(r.Context(), c)))
	})
}

// ruleQuerier is what alert rules (and the live evaluator they share with
// the UI's streams) read: on a query node of a cluster on Kafka, the
// fan-out with strong reads, so a rule's step sees every write
// acknowledged before it closed; else the node's querier.
func (n *node) ruleQuerier() tsdb.Querier {
	if n.cluster.fan != nil && n.cluster.strong {
		return strongQuerier{n.cluster.fan}
	}
	return n.querier()
}

// strongQuerier reads q with strong consistency, unless the context asks
// for another explicitly.
type strongQuerier struct{ q tsdb.Querier }

// Fetch implements tsdb.Querier.
func (s strongQuerier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	return s.q.Fetch(strong(ctx), req)
}

// Tags implements tsdb.Querier.
func (s strongQuerier) Tags(ctx context.Context, req tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	return s.q.Tags(strong(ctx), req)
}

// strong marks ctx strong unless it says otherwise already.
func strong(ctx context.Context) context.Context {
	if fanout.ConsistencyOf(ctx) == fanout.Strong {
		return ctx
	}
	return fanout.WithConsistency(ctx, fanout.Strong)
}
