package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sextant-dev/sextant/ingest/kafkalog"
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

// TestClusterKafkaDown: an ingest node in-process on a kfake cluster
// acknowledges a publish once Kafka has it, and answers 503 with
// Retry-After, never a 2xx, once every broker is gone.
func TestClusterKafkaDown(t *testing.T) {
	t.Parallel()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	cfg := testConfig(t)
	cfg.Cluster.Brokers = strings.Join(kc.ListenAddrs(), ",")
	cfg.Cluster.Roles = roles{Ingest: true}
	cfg.Cluster.TopicPrefix = "down"
	addr := startServe(t, cfg)
	body := func() []byte {
		return fmt.Appendf(nil, `{"metrics":[{"tags":{"name":"down"},"timestamp":%d,"value":1}]}`, time.Now().UnixMilli())
	}
	if code, resp := post(t, "http://"+addr+"/api/v1/publish", body()); code != 200 {
		t.Fatalf("publish with Kafka up = %d %s", code, resp)
	}
	ends, err := kafkalog.EndOffsets(context.Background(), kc.ListenAddrs(), "down")
	if err != nil {
		t.Fatal(err)
	}
	records := int64(0)
	for _, e := range ends[kafkalog.MetricsTopic("down")] {
		records += e
	}
	if records != 1 {
		t.Errorf("the metrics topic holds %d records after one publish, want 1", records)
	}
	kc.Close()
	resp, err := http.Post("http://"+addr+"/api/v1/publish", "application/json", bytes.NewReader(body()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("publish with Kafka down = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
