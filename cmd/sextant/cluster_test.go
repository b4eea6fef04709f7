package main

import (
	"io"
	"strings"
	"testing"
)

func TestClusterFlags(t *testing.T) {
	t.Parallel()
	c, err := loadConfig([]string{"--kafka-brokers", "127.0.0.1:9092, k2:9092", "--role", "ingest,query",
		"--node-id", "n1", "--kafka-partitions", "16", "--replication-factor", "3"}, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := clusterConfig{Brokers: "127.0.0.1:9092,k2:9092", Roles: roles{Ingest: true, Query: true}, NodeID: "n1",
		TopicPrefix: "sextant", Partitions: 16, ReplicationFactor: 3}
	if c.Cluster != want || !c.Cluster.enabled() || len(c.Cluster.brokers()) != 2 {
		t.Errorf("cluster = %+v, want %+v", c.Cluster, want)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "storage"}, `--role: unknown role "storage"`},
		{[]string{"--kafka-brokers", "nohost"}, `--kafka-brokers: "nohost" is not host:port`},
		{[]string{"--kafka-partitions", "0"}, "--kafka-partitions"},
		{[]string{"--replication-factor", "x"}, "--replication-factor"},
		{[]string{"--kafka-topic-prefix", ""}, "--kafka-topic-prefix"},
	} {
		if _, err := loadConfig(tc.args, env(), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadConfig(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	if c, _ := loadConfig(nil, env(), io.Discard); c.Cluster.enabled() {
		t.Error("cluster mode on without --kafka-brokers")
	}
}
