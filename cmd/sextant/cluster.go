package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/ingest/kafkalog"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// clusterConfig is the cluster mode's part of the configuration (api.md
// "Cluster mode"); Brokers empty means a single node, and no Kafka code
// runs.
type clusterConfig struct {
	Brokers           string // --kafka-brokers, comma-separated (a string keeps config comparable)
	Roles             roles  // --role
	NodeID            string // --node-id (default: the hostname)
	TopicPrefix       string // --kafka-topic-prefix
	Partitions        int    // --kafka-partitions: wanted for new topics
	ReplicationFactor int    // --replication-factor: store nodes per partition
	AdvertiseAddr     string // --advertise-addr ("" until serve knows --listen's port)
}

// enabled reports whether the node is part of a cluster.
func (c clusterConfig) enabled() bool { return c.Brokers != "" }

// brokers returns the bootstrap brokers.
func (c clusterConfig) brokers() []string { return splitList(c.Brokers) }

// roles are what a cluster node does.
type roles struct{ Ingest, Store, Query bool }

// parseRoles parses --role: a comma-separated list of ingest, store and
// query, or all.
func parseRoles(s string) (roles, error) {
	var r roles
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "all":
			r = roles{true, true, true}
		case "ingest":
			r.Ingest = true
		case "store":
			r.Store = true
		case "query":
			r.Query = true
		default:
			return r, fmt.Errorf("unknown role %q; use ingest, store, query or all", strings.TrimSpace(name))
		}
	}
	return r, nil
}

// resolveCluster reads the cluster flags.
func resolveCluster(get func(string) string) (clusterConfig, error) {
	var c clusterConfig
	var errs []error
	for _, b := range splitList(get("kafka-brokers")) {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("--kafka-brokers: %q is not host:port", b))
		}
	}
	c.Brokers = strings.Join(splitList(get("kafka-brokers")), ",")
	var err error
	if c.Roles, err = parseRoles(get("role")); err != nil {
		errs = append(errs, fmt.Errorf("--role: %w", err))
	}
	c.NodeID = get("node-id")
	if c.NodeID == "" {
		c.NodeID, _ = os.Hostname()
	}
	c.TopicPrefix = get("kafka-topic-prefix")
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("--kafka-topic-prefix: must not be empty"))
	}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"kafka-partitions", &c.Partitions, 1 << 16}, {"replication-factor", &c.ReplicationFactor, 16}} {
		n, err := strconv.Atoi(get(f.name))
		if err != nil || n <= 0 || n > f.max {
			errs = append(errs, fmt.Errorf("--%s: %q is not a count from 1 to %d", f.name, get(f.name), f.max))
		}
		*f.dst = n
	}
	c.AdvertiseAddr = get("advertise-addr")
	return c, errors.Join(errs...)
}

// storeMarks reports whether the store applies the log with marks
// (db.Options.Marks): on a cluster node with the store role.
func (c clusterConfig) storeMarks() bool { return c.enabled() && c.Roles.Store }

// exitAfterApplyEnv names the environment variable of a fault hook for
// tests (cluster_exactly_test.go): set to a name, the store node exits
// with status 3 as soon as it applied records of the log holding a
// datapoint of the series of that name (metrics topic) or a span of that
// name (spans topic), after the store made them durable and before the
// consumer kept the offset, as a crash there would.
const exitAfterApplyEnv = "SEXTANT_TEST_EXIT_AFTER_APPLY"

// exitAfterApply returns the consumer's AfterApply for the fault hook of
// exitAfterApplyEnv, or nil when it is not set.
func exitAfterApply(logger *slog.Logger) func(kafkalog.Applied) {
	name := os.Getenv(exitAfterApplyEnv)
	if name == "" {
		return nil
	}
	logger.Warn("test fault hook set: exiting after applying a series or span", "env", exitAfterApplyEnv, "name", name)
	return func(a kafkalog.Applied) {
		if appliedNamed(a, name) {
			logger.Warn("test fault hook: exiting before the offset is kept", "topic", a.Topic, "partition", a.Partition, "offset", a.Next)
			os.Exit(3)
		}
	}
}

// appliedNamed says whether a holds a datapoint of a series, or a span,
// of the given name.
func appliedNamed(a kafkalog.Applied, name string) bool {
	for _, pt := range a.Points {
		if pt.Tags.Name() == name {
			return true
		}
	}
	for _, td := range a.Spans {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if sp.Name() == name {
						return true
					}
				}
			}
		}
	}
	return false
}

// clusterLog is a node's side of the cluster log; nil on a single node.
type clusterLog struct {
	cfg clusterConfig
	// partitions is the number of partitions of the log's topics, as they
	// exist (an existing cluster keeps its count whatever the flag says).
	partitions int
	// producer writes what the ingest handlers accept to the log.
	producer *kafkalog.Producer
	// consumer applies this node's partitions to its stores (store role).
	consumer *kafkalog.Consumer
	// assign, when set before setupCluster runs, delivers the partitions
	// this store node must consume (cluster membership); nil: all of them.
	assign <-chan []int
}

// setupCluster, with --kafka-brokers, creates the log's topics when
// missing, sends ingest to the log, and on a store node consumes the log
// into the local stores. Without it, it does nothing.
func setupCluster(n *node, g *runGroup) error {
	cfg := n.cfg.Cluster
	if !cfg.enabled() {
		return nil
	}
	if n.clusterLog == nil {
		n.clusterLog = &clusterLog{}
	}
	cn := n.clusterLog
	cn.cfg = cfg
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	parts, err := kafkalog.EnsureTopics(ctx, cfg.brokers(), cfg.TopicPrefix, cfg.Partitions)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cn.partitions = parts
	logger := n.logger.With("component", "cluster")
	logger.Info("cluster log ready", "brokers", cfg.Brokers, "prefix", cfg.TopicPrefix,
		"partitions", parts, "node", cfg.NodeID)
	if cfg.Roles.Store {
		var assign <-chan []int
		if cn.assign != nil {
			assign = cn.assign
		}
		cn.consumer, err = kafkalog.NewConsumer(kafkalog.ConsumerOptions{
			Brokers: cfg.brokers(), Prefix: cfg.TopicPrefix, Partitions: parts,
			Appender: n.store, Traces: n.spans, Exemplars: n.spans, KV: n.store.KV(), Assign: assign,
			AfterApply: exitAfterApply(logger), Logger: logger, Registry: n.reg,
		})
		if err != nil {
			return err
		}
		g.Go("cluster-consumer", cn.consumer.Run)
	}
	// Every cluster node's ingest endpoints write to the log (the ingest
	// role is what load balancers send writes to): a write to any node is
	// never stored on that node alone.
	cn.producer, err = kafkalog.NewProducer(kafkalog.ProducerOptions{
		Brokers: cfg.brokers(), Prefix: cfg.TopicPrefix, Partitions: parts,
		MaxAge: ms(n.cfg.IngestMaxAge), Logger: logger, Registry: n.reg,
	})
	if err != nil {
		return err
	}
	// Added before the ingest handlers, so stopped after them.
	g.Go("cluster-producer", func(ctx context.Context) error {
		<-ctx.Done()
		return cn.producer.Close()
	})
	return nil
}

// appender is where the ingest handlers write datapoints: the log in
// cluster mode, else the local store.
func (n *node) appender() tsdb.Appender {
	if n.clusterLog != nil && n.clusterLog.producer != nil {
		return n.clusterLog.producer
	}
	return n.store
}

// traceWriter is where the ingest handlers write spans.
func (n *node) traceWriter() tracing.Writer {
	if n.clusterLog != nil && n.clusterLog.producer != nil {
		return n.clusterLog.producer
	}
	return n.spans
}
