package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/ingest/cluster"
)

// clusterRoles are the roles of --role (all: every one).
type clusterRoles struct {
	Ingest, Store, Query bool
}

// list returns the roles by name, sorted.
func (r clusterRoles) list() []string {
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

// resolveCluster reads the cluster settings (--kafka-brokers, --role,
// --node-id, --kafka-topic-prefix, --replication-factor, --advertise-addr).
func resolveCluster(c *config, get func(string) string) error {
	var errs []error
	c.KafkaBrokers = get("kafka-brokers")
	c.NodeID = get("node-id")
	c.AdvertiseAddr = get("advertise-addr")
	c.KafkaTopicPrefix = get("kafka-topic-prefix")
	c.Roles = clusterRoles{}
	for _, r := range splitList(get("role")) {
		switch r {
		case "all":
			c.Roles = clusterRoles{Ingest: true, Store: true, Query: true}
		case cluster.RoleIngest:
			c.Roles.Ingest = true
		case cluster.RoleStore:
			c.Roles.Store = true
		case cluster.RoleQuery:
			c.Roles.Query = true
		default:
			errs = append(errs, fmt.Errorf("--role: unknown role %q; use ingest, store, query or all", r))
		}
	}
	if c.Roles == (clusterRoles{}) && len(errs) == 0 {
		errs = append(errs, errors.New("--role: empty; use ingest, store, query or all"))
	}
	n, err := strconv.Atoi(get("replication-factor"))
	if err != nil || n <= 0 {
		errs = append(errs, fmt.Errorf("--replication-factor: %q is not a positive count", get("replication-factor")))
	}
	c.ReplicationFactor = n
	if p := c.KafkaTopicPrefix; p == "" || len(p) > 200 || strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		errs = append(errs, fmt.Errorf("--kafka-topic-prefix: %q must be 1 to 200 of a-z, A-Z, 0-9, '.', '_', '-'", p))
	}
	if len(c.NodeID) > 256 {
		errs = append(errs, fmt.Errorf("--node-id: longer than 256 bytes"))
	}
	return errors.Join(errs...)
}

// setupClusterMember joins the cluster's membership when --kafka-brokers is
// set (without it: nothing, the single node of old): it heartbeats through
// <prefix>-members, serves GET /api/v1/cluster, holds /healthz at 503
// until a store node has caught up, and exposes n.members (the Owners view
// for the query fan-out, the assignment for the store consumer).
func setupClusterMember(n *node, g *runGroup) error {
	cfg := n.cfg
	if cfg.KafkaBrokers == "" {
		return nil
	}
	host, _ := os.Hostname()
	id, err := cluster.NodeID(cfg.DataDir, cfg.NodeID, host)
	if err != nil {
		return fmt.Errorf("--node-id: %w", err)
	}
	prefix := cfg.KafkaTopicPrefix
	opts := cluster.Options{
		Brokers:     splitList(cfg.KafkaBrokers),
		Topic:       prefix + "-members",
		DataTopics:  []string{prefix + "-metrics", prefix + "-spans"},
		NodeID:      id,
		Roles:       cfg.Roles.list(),
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
	m.Register(n.mux)
	n.readiness = append(n.readiness, m.Ready)
	g.Go("cluster-member", func(ctx context.Context) error {
		// The listener is bound now: advertise its port.
		m.SetAddr(advertiseAddr(cfg.AdvertiseAddr, cfg.Listen, n.httpAddr, host))
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
