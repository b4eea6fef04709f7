package main

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sextant-dev/sextant/ingest/cluster"
)

func TestRoleNames(t *testing.T) {
	t.Parallel()
	f := func(r roles, want string) {
		t.Helper()
		if got := strings.Join(roleNames(r), ","); got != want {
			t.Errorf("roleNames(%+v) = %q, want %q", r, got, want)
		}
	}
	f(roles{Ingest: true, Store: true, Query: true}, "ingest,query,store")
	f(roles{Store: true, Query: true}, "query,store")
	f(roles{Ingest: true}, "ingest")
}

func TestAdvertiseAddr(t *testing.T) {
	t.Parallel()
	f := func(flag, listen, bound, want string) {
		t.Helper()
		if got := advertiseAddr(flag, listen, bound, "node-a"); got != want {
			t.Errorf("advertiseAddr(%q, %q, %q) = %q, want %q", flag, listen, bound, got, want)
		}
	}
	f("lb.example:80", ":7101", "[::]:7101", "lb.example:80")
	f("", ":7101", "[::]:7101", "node-a:7101")
	f("", "0.0.0.0:7101", "0.0.0.0:7101", "node-a:7101")
	f("", "127.0.0.1:0", "127.0.0.1:41234", "127.0.0.1:41234")
	f("", "10.1.2.3:7101", "", "10.1.2.3:7101")
}

// memberNode runs serve in-process as a cluster node until stop.
type memberNode struct {
	addr     string
	stopServ func()
}

func startMemberNode(t *testing.T, brokers []string, dir string, flags ...string) *memberNode {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir, "--step", "1s", "--memory-retention", "1h",
		"--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", "",
		"--kafka-brokers", strings.Join(brokers, ",")}, flags...)
	cfg, err := loadConfig(args, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := serveAt(t, cfg)
	return &memberNode{addr: addr, stopServ: stop}
}

// stop stops the node and checks serve's error.
func (n *memberNode) stop(*testing.T) { n.stopServ() }

func clusterStatus(t *testing.T, addr string) cluster.Status {
	t.Helper()
	code, body := get(t, "http://"+addr+"/api/v1/cluster")
	var st cluster.Status
	if code != 200 {
		t.Fatalf("/api/v1/cluster = %d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/v1/cluster: %v: %s", err, body)
	}
	return st
}

// newKfake starts a kfake cluster of three brokers on real TCP ports with
// the default topics seeded (4 partitions), closed when the test ends.
func newKfake(t *testing.T) *kfake.Cluster {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, "sextant-metrics", "sextant-spans"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// TestClusterMember runs a query node and a store node in-process on a
// three-broker kfake cluster: both see each other in GET /api/v1/cluster
// (roles, advertised addresses, the store node owning every partition),
// the query node is ready, the store node's /healthz waits for its
// partitions, the lag and membership meters are served, and a restarted
// store node keeps its id from the data dir.
func TestClusterMember(t *testing.T) {
	t.Parallel()
	kc := newKfake(t)
	brokers := kc.ListenAddrs()
	storeDir := t.TempDir()
	s := startMemberNode(t, brokers, storeDir, "--role", "store", "--node-id", "store-a")
	q := startMemberNode(t, brokers, t.TempDir(), "--role", "query", "--node-id", "query-a")
	defer q.stop(t)

	var st cluster.Status
	waitFor(t, 20*time.Second, "both nodes in /api/v1/cluster", func() bool {
		st = clusterStatus(t, q.addr)
		return len(st.Nodes) == 2
	})
	if st.Self != "query-a" || st.Partitions != 4 || st.ReplicationFactor != 2 {
		t.Errorf("status = %+v", st)
	}
	byID := map[string]cluster.NodeStatus{}
	for _, n := range st.Nodes {
		byID[n.ID] = n
	}
	if n := byID["store-a"]; n.Addr != s.addr || strings.Join(n.Roles, ",") != "store" || !n.Live || len(n.Partitions) != 4 {
		t.Errorf("store-a = %+v, want live at %s with role store and 4 partitions", n, s.addr)
	}
	for _, p := range byID["store-a"].Partitions {
		if !p.Assigned {
			t.Errorf("store-a partition %+v not assigned (the only store node)", p)
		}
	}
	if n := byID["query-a"]; n.Addr != q.addr || strings.Join(n.Roles, ",") != "query" || len(n.Partitions) != 0 {
		t.Errorf("query-a = %+v, want at %s with role query and no partitions", n, q.addr)
	}
	waitFor(t, 10*time.Second, "query node ready", func() bool {
		code, _ := get(t, "http://"+q.addr+"/healthz")
		return code == 200
	})
	// The store node is ready exactly when it serves its partitions: with
	// a store consumer wired it catches up on the empty topics, without
	// one it stays at 503 saying why.
	waitFor(t, 10*time.Second, "store node readiness to match its partitions", func() bool {
		code, body := get(t, "http://"+s.addr+"/healthz")
		serving := 0
		for _, n := range clusterStatus(t, s.addr).Nodes {
			for _, p := range n.Partitions {
				if n.ID == "store-a" && p.Serving {
					serving++
				}
			}
		}
		return (code == 503 && strings.Contains(body, "not caught up") && serving == 0) || (code == 200 && serving == 4)
	})
	_, metrics := get(t, "http://"+s.addr+"/metrics")
	for _, m := range []string{"sextant_cluster_members", "sextant_cluster_assignedPartitions", "sextant_cluster_unservedPartitions"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// Restarted without --node-id, the store node is the same member.
	s.stop(t)
	s = startMemberNode(t, brokers, storeDir, "--role", "store")
	defer s.stop(t)
	waitFor(t, 10*time.Second, "the restarted store node to heartbeat", func() bool {
		st := clusterStatus(t, s.addr)
		return st.Self == "store-a" && len(st.Nodes) == 2
	})
}

// TestClusterMemberBinary runs the real binary as two cluster nodes on a
// kfake cluster: a query node sees the store node; the store node,
// killed with SIGKILL and restarted on its data dir without --node-id,
// comes back as the same member (its id kept in the data dir), at its new
// address.
func TestClusterMemberBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	kc := newKfake(t)
	brokers := strings.Join(kc.ListenAddrs(), ",")
	bin := buildBinary(t)
	q := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--kafka-brokers", brokers, "--role", "query", "--node-id", "query-b")
	defer func() { q.cmd.Process.Kill(); q.cmd.Wait() }()
	storeDir := t.TempDir()
	s := runBinary(t, bin, nil, "--data-dir", storeDir, "--kafka-brokers", brokers, "--role", "store", "--node-id", "store-b")

	// storeAt says whether the query node lists store-b, live, at addr, as
	// the only store member.
	storeAt := func(addr string) bool {
		var stores []cluster.NodeStatus
		for _, n := range clusterStatus(t, q.addr).Nodes {
			if slices.Contains(n.Roles, cluster.RoleStore) {
				stores = append(stores, n)
			}
		}
		return len(stores) == 1 && stores[0].ID == "store-b" && stores[0].Live && stores[0].Addr == addr
	}
	waitFor(t, 30*time.Second, "the query node to list store-b", func() bool { return storeAt(s.addr) })
	waitFor(t, 10*time.Second, "the query node to be ready", func() bool {
		code, _ := get(t, "http://"+q.addr+"/healthz")
		return code == 200
	})

	s.cmd.Process.Kill()
	s.cmd.Wait()
	s = runBinary(t, bin, nil, "--data-dir", storeDir, "--kafka-brokers", brokers, "--role", "store")
	defer func() { s.cmd.Process.Kill(); s.cmd.Wait() }()
	if st := clusterStatus(t, s.addr); st.Self != "store-b" {
		t.Errorf("restarted store node is %q, want store-b (kept in its data dir)", st.Self)
	}
	waitFor(t, 30*time.Second, "the query node to list the restarted store-b at its new address", func() bool { return storeAt(s.addr) })
}
