package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sextant-dev/sextant/lib"
)

const (
	kPartitions = 8
	kRecords    = 30 // per partition of each data topic
)

var kTopics = []string{"test-metrics", "test-spans"}

// kConsumer is a real consumer of the data topics on kfake standing in for
// the store consumer: it follows the assignment, consumes each assigned
// partition from its start and reports what it applied.
type kConsumer struct {
	cl *kgo.Client
	mu sync.Mutex
	at map[topicPartition]Applied
}

func newKConsumer(t *testing.T, brokers []string) *kConsumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return &kConsumer{cl: cl, at: map[topicPartition]Applied{}}
}

func (c *kConsumer) run(ctx context.Context, m *Membership) {
	defer c.cl.Close()
	var have []int
	go func() {
		for {
			fs := c.cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				c.mu.Lock()
				c.at[topicPartition{r.Topic, int(r.Partition)}] = Applied{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset + 1, Time: r.Timestamp}
				c.mu.Unlock()
			})
		}
	}()
	for {
		parts, ch := m.Assignment()
		add, remove := map[string]map[int32]kgo.Offset{}, map[string][]int32{}
		for _, topic := range kTopics {
			add[topic], remove[topic] = map[int32]kgo.Offset{}, nil
			for _, p := range parts {
				if !slices.Contains(have, p) {
					add[topic][int32(p)] = kgo.NewOffset().AtStart()
				}
			}
			for _, p := range have {
				if !slices.Contains(parts, p) {
					remove[topic] = append(remove[topic], int32(p))
				}
			}
		}
		c.cl.RemoveConsumePartitions(remove)
		c.mu.Lock()
		for tp := range c.at {
			if !slices.Contains(parts, tp.partition) {
				delete(c.at, tp)
			}
		}
		for _, p := range parts {
			for _, topic := range kTopics {
				if _, ok := c.at[topicPartition{topic, p}]; !ok {
					c.at[topicPartition{topic, p}] = Applied{Topic: topic, Partition: p}
				}
			}
		}
		c.mu.Unlock()
		c.cl.AddConsumePartitions(add)
		have = parts
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (c *kConsumer) progress() []Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Applied
	for _, a := range c.at {
		out = append(out, a)
	}
	return out
}

type kNode struct {
	m      *Membership
	cancel context.CancelFunc
	done   chan struct{}
}

// startK runs a store member with its consumer on the kfake cluster.
func startK(t *testing.T, brokers []string, id string) *kNode {
	t.Helper()
	return startKReg(t, brokers, id, nil)
}

func startKReg(t *testing.T, brokers []string, id string, reg *lib.Registry) *kNode {
	t.Helper()
	c := newKConsumer(t, brokers)
	m, err := New(Options{
		Brokers: brokers, Topic: "test-members", DataTopics: kTopics,
		NodeID: id, Addr: id + ":7101", Roles: []string{RoleStore},
		Partitions: 0, Replication: 2, Progress: c.progress, // partitions read from Kafka
		Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, Registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &kNode{m: m, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", id, err)
		}
	})
	wg.Go(func() { c.run(ctx, m) })
	go func() { wg.Wait(); close(n.done) }()
	return n
}

func (n *kNode) stop() { n.cancel(); <-n.done }

// waitSteady waits until every node's view has exactly the rendezvous
// owners of live serving each partition, each node consumes exactly its
// own, and every node is ready.
func waitSteady(t *testing.T, nodes map[string]*kNode, within time.Duration) {
	t.Helper()
	var live []string
	for id := range nodes {
		live = append(live, id)
	}
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		problem := ""
		for id, n := range nodes {
			parts, _ := n.m.Assignment()
			var mine []int
			for p := range kPartitions {
				want := Assign(live, p, 2)
				var got []string
				for _, o := range n.m.Owners(p) {
					got = append(got, o.ID)
				}
				if !slices.Equal(got, want) && problem == "" {
					problem = fmt.Sprintf("%s sees partition %d served by %v, want %v", id, p, got, want)
				}
				if slices.Contains(want, id) {
					mine = append(mine, p)
				}
			}
			if !slices.Equal(parts, mine) && problem == "" {
				problem = fmt.Sprintf("%s consumes %v, want %v", id, parts, mine)
			}
			if err := n.m.Ready(); err != nil && problem == "" {
				problem = fmt.Sprintf("%s: %v", id, err)
			}
		}
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not steady after %s: %s", within, problem)
		}
		<-tick.C
	}
}

// TestMembershipKafka runs members on a three-broker kfake cluster with
// real consumers of the data topics: three members converge; a fourth
// joins and takes its share; a member killed without a farewell is
// replaced within a bound; restarted under the same id it gets its
// partitions back. GET /api/v1/cluster shows the result.
func TestMembershipKafka(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a kfake cluster for a few seconds")
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(kPartitions, kTopics...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	brokers := kc.ListenAddrs()
	produce(t, brokers)

	nodes := map[string]*kNode{}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	reg := lib.NewRegistry(lib.RegistryOptions{})
	nodes["store-1"] = startKReg(t, brokers, "store-1", reg)
	for _, id := range []string{"store-2", "store-3"} {
		nodes[id] = startK(t, brokers, id)
	}
	waitSteady(t, nodes, 10*time.Second)

	// store-1's lag meters: one per partition it consumes, at zero.
	var prom strings.Builder
	if err := reg.WritePrometheus(&prom); err != nil {
		t.Fatal(err)
	}
	mine, _ := nodes["store-1"].m.Assignment()
	for _, p := range mine {
		for _, name := range []string{"sextant_cluster_lagRecords", "sextant_cluster_lagSeconds"} {
			line := fmt.Sprintf("%s{partition=%q} 0", name, fmt.Sprint(p))
			if !strings.Contains(prom.String(), line) {
				t.Errorf("store-1's metrics lack %s:\n%s", line, prom.String())
			}
		}
	}

	joined := time.Now()
	nodes["store-4"] = startK(t, brokers, "store-4")
	waitSteady(t, nodes, 10*time.Second)
	t.Logf("store-4 joined, caught up and took its share in %s", time.Since(joined).Round(time.Millisecond))
	gained, _ := nodes["store-4"].m.Assignment()
	if len(gained) < 2 || len(gained) > 7 {
		t.Errorf("store-4 took %v, want about a quarter of %d partition-replicas", gained, 2*kPartitions)
	}

	lost, _ := nodes["store-2"].m.Assignment()
	nodes["store-2"].stop()
	killed := time.Now()
	delete(nodes, "store-2")
	// Timeout 2s, then a replay and a heartbeat or two.
	waitSteady(t, nodes, 8*time.Second)
	if took := time.Since(killed); took < 2*time.Second {
		t.Errorf("store-2's partitions moved %s after it stopped, before its 2s timeout", took)
	}
	t.Logf("store-2's partitions served by two replicas again %s after it stopped (timeout 2s, heartbeat 100ms)", time.Since(killed).Round(time.Millisecond))

	nodes["store-2"] = startK(t, brokers, "store-2")
	waitSteady(t, nodes, 10*time.Second)
	if back, _ := nodes["store-2"].m.Assignment(); !slices.Equal(back, lost) {
		t.Errorf("restarted store-2 consumes %v, want its old %v", back, lost)
	}

	// The operations view from store-1.
	mux := http.NewServeMux()
	nodes["store-1"].m.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Self != "store-1" || st.Partitions != kPartitions || st.ReplicationFactor != 2 || len(st.Unserved) != 0 {
		t.Errorf("status header = %+v", st)
	}
	replicas := 0
	for _, n := range st.Nodes {
		if !n.Live {
			t.Errorf("node %s not live", n.ID)
		}
		for _, p := range n.Partitions {
			if !p.Assigned || !p.Serving || p.LagRecords == nil || *p.LagRecords != 0 {
				t.Errorf("node %s partition %+v, want assigned, serving, no lag", n.ID, p)
			}
			replicas++
		}
	}
	if len(st.Nodes) != 4 || replicas != 2*kPartitions {
		t.Errorf("status lists %d nodes with %d partition-replicas, want 4 and %d", len(st.Nodes), replicas, 2*kPartitions)
	}
}

// produce writes kRecords records to every partition of the data topics.
func produce(t *testing.T, brokers []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, topic := range kTopics {
		for p := range kPartitions {
			for i := range kRecords {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "%d", i)})
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
