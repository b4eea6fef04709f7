package main

// A copy of the cluster configuration of clog's branch (cmd/sextant/cluster.go
// there), so that this branch builds on its own: at the merge, keep clog's
// and delete this file.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
