package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/sextant-dev/sextant/ingest/cluster"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// procsPartitions is the partition count of the test cluster's topics:
// small, so that every store node owns several and a joining node takes
// some over.
const procsPartitions = 8

// TestClusterProcesses is issue 16's hermetic test of cluster mode on the
// real binary: a kfake cluster of three brokers on real TCP ports in this
// process, and as separate processes one ingest node, three store nodes
// (--replication-factor 2), one query node, and a single node (no Kafka)
// fed exactly the same data. In order:
//
//  1. what is published to the ingest node (Atlas publish, OTLP metrics
//     and traces) is answered identically by the query node and the
//     single node: graph API, tags API, Prometheus query_range, Jaeger
//     trace by id and search;
//  2. a store node killed with SIGKILL while queries run and writes flow:
//     every query on the query node answers complete from the replicas,
//     and every acknowledged datapoint (exact, no duplicate) and span is
//     there after the node restarted and caught up;
//  3. a store node killed for longer than the membership's timeout is
//     replaced by the others while queries keep answering in full, and
//     takes its partitions back when it returns;
//  4. a fourth store node joins, takes over partitions, and the query
//     node's answers are still the single node's;
//  5. a Kafka broker is killed: the ingest node keeps acknowledging, and
//     what it acknowledged is answered.
//
// Each step needs the ones before it, so a failed step ends the test.
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary as six processes")
	}
	t.Parallel()
	c := startProcsCluster(t)
	data := newProcsData()

	if !t.Run("identical", func(t *testing.T) { c.stepIdentical(t, data) }) {
		t.FailNow()
	}
	if !t.Run("kill-store", func(t *testing.T) { c.stepKillStore(t, data) }) {
		t.FailNow()
	}
	if !t.Run("replace-store", func(t *testing.T) { c.stepReplaceStore(t, data) }) {
		t.FailNow()
	}
	if !t.Run("join-store", func(t *testing.T) { c.stepJoinStore(t, data) }) {
		t.FailNow()
	}
	t.Run("kill-broker", func(t *testing.T) { c.stepKillBroker(t, data) })
}

// procsCluster is the test's cluster.
type procsCluster struct {
	// top is the whole test's T: the processes live until it ends, not
	// until the step that started them ends.
	top     *testing.T
	bin     string
	kc      *kfake.Cluster
	lns     *brokerListeners
	brokers string

	ingest, query, single *binary
	stores                map[string]*binary
	dirs                  map[string]string // data dirs of the store nodes
}

// startProcsCluster starts the brokers and the six nodes and waits until
// the query node sees every partition served.
func startProcsCluster(t *testing.T) *procsCluster {
	t.Helper()
	lns := &brokerListeners{}
	kc, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ListenFn(lns.listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &procsCluster{top: t, bin: buildBinary(t), kc: kc, lns: lns, brokers: strings.Join(kc.ListenAddrs(), ","),
		stores: map[string]*binary{}, dirs: map[string]string{}}
	c.ingest = c.start(t, "ingest", "ingest-1", t.TempDir())
	for _, id := range []string{"store-1", "store-2", "store-3"} {
		c.dirs[id] = t.TempDir()
		c.stores[id] = c.start(t, "store", id, c.dirs[id])
	}
	c.query = c.start(t, "query", "query-1", t.TempDir())
	c.single = runBinary(t, c.bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "1h")
	t.Cleanup(func() { stopBinary(t, c.single) })
	c.waitServed(t, 3, nil)
	return c
}

// start runs a cluster node of the given role; it is stopped gracefully
// when the whole test ends unless it was killed before.
func (c *procsCluster) start(t *testing.T, role, id, dir string) *binary {
	t.Helper()
	b := runBinary(t, c.bin, nil, "--data-dir", dir, "--memory-retention", "1h", "--kafka-brokers", c.brokers,
		"--role", role, "--node-id", id, "--kafka-topic-prefix", "procs",
		"--kafka-partitions", fmt.Sprint(procsPartitions), "--replication-factor", "2")
	c.top.Cleanup(func() { stopBinary(c.top, b) })
	return b
}

// stopBinary stops b with SIGTERM, unless it already exited, and fails t
// when it does not exit cleanly within the shutdown timeout.
func stopBinary(t *testing.T, b *binary) {
	t.Helper()
	if b.cmd.ProcessState != nil {
		return // killed and waited for by the test
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("graceful stop of %s: %v", b.addr, err)
		}
	case <-time.After(shutdownTimeout + 10*time.Second):
		b.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop within %v of SIGTERM", b.addr, shutdownTimeout+10*time.Second)
	}
}

// kill ends b with SIGKILL.
func kill(b *binary) {
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
}

// status is GET /api/v1/cluster of the query node.
func (c *procsCluster) status(t *testing.T) cluster.Status { return clusterStatus(t, c.query.addr) }

// waitServed waits until the query node sees stores live store nodes,
// every partition served, and no hand-off under way (no node serving a
// partition it is not assigned, every assigned one served); a node in
// since must have heartbeated after its time (a restarted node's
// heartbeat from before its restart says nothing of it now).
func (c *procsCluster) waitServed(t *testing.T, stores int, since map[string]time.Time) cluster.Status {
	t.Helper()
	var st cluster.Status
	var why string
	deadline := time.Now().Add(60 * time.Second)
	for {
		st = c.status(t)
		why = settled(st, stores, since)
		if why == "" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not settle with %d store nodes within 60 s: %s\n%+v", stores, why, st)
		}
		time.Sleep(50 * time.Millisecond) // polling the query node, as waitFor
	}
}

// settled says why st is not a cluster of stores live store nodes that
// serve every partition they are assigned and nothing else; "" when it is.
func settled(st cluster.Status, stores int, since map[string]time.Time) string {
	live := 0
	for _, n := range st.Nodes {
		if !n.Live || !slices.Contains(n.Roles, cluster.RoleStore) {
			continue
		}
		live++
		if t, ok := since[n.ID]; ok && !n.LastHeartbeat.After(t) {
			return fmt.Sprintf("%s last heartbeated at %s, before %s", n.ID, n.LastHeartbeat.Format(time.RFC3339Nano), t.Format(time.RFC3339Nano))
		}
		for _, p := range n.Partitions {
			if p.Assigned != p.Serving {
				return fmt.Sprintf("%s partition %d assigned=%v serving=%v", n.ID, p.Partition, p.Assigned, p.Serving)
			}
		}
	}
	switch {
	case st.Partitions != procsPartitions:
		return fmt.Sprintf("%d partitions", st.Partitions)
	case live != stores:
		return fmt.Sprintf("%d live store nodes", live)
	case len(st.Unserved) > 0:
		return fmt.Sprintf("partitions %v unserved", st.Unserved)
	}
	return ""
}

// brokerListeners records the listeners kfake opens, in broker order, and
// the connections they accept, so that a broker can be killed as a
// process dies: its listener closed and its connections reset (kfake's
// RemoveNode closes only the listener).
type brokerListeners struct {
	mu  sync.Mutex
	lns []*trackedListener
}

func (b *brokerListeners) listen(network, addr string) (net.Listener, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln}
	b.mu.Lock()
	b.lns = append(b.lns, tl)
	b.mu.Unlock()
	return tl, nil
}

// trackedListener is a listener that remembers what it accepted.
type trackedListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// killBroker removes broker node from the cluster (kfake moves the
// leadership of its partitions to the others) and resets its connections.
func (c *procsCluster) killBroker(t *testing.T, node int32) {
	t.Helper()
	if err := c.kc.RemoveNode(node); err != nil {
		t.Fatalf("remove broker %d: %v", node, err)
	}
	c.lns.mu.Lock()
	l := c.lns.lns[node]
	c.lns.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("broker %d removed, %d connections reset", node, len(l.conns))
	for _, conn := range l.conns {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, as the kernel sends for a dead process
		}
		conn.Close()
	}
}

// procsData is what the test wrote, to the ingest node and the single
// node alike.
type procsData struct {
	base   int64 // start of step 1's datapoints, Unix ms
	traces []pcommon.TraceID
	// tracesFrom and tracesTo bound the start times of step 1's traces,
	// Unix µs, for a search that finds them and no later trace.
	tracesFrom, tracesTo int64
	seqs                 []*seqWriter // the writers of steps 2 to 4
}

func newProcsData() *procsData {
	return &procsData{base: time.Now().Truncate(time.Second).Add(-2 * time.Minute).UnixMilli()}
}

// stepIdentical publishes step 1's data and compares the answers.
func (c *procsCluster) stepIdentical(t *testing.T, d *procsData) {
	both := []*binary{c.ingest, c.single}
	for i := range 20 {
		ts := d.base + int64(i)*1000
		body := publishBody(ts, i)
		lat := percentileBody(ts, i)
		md := otlpGauge(ts, i)
		for _, b := range both {
			for _, pb := range [][]byte{body, lat} {
				if code, resp := post(t, "http://"+b.addr+"/api/v1/publish", pb, "Content-Type", "application/json"); code != 200 {
					t.Fatalf("publish to %s: %d %s", b.addr, code, resp)
				}
			}
			if code, resp := postOTLP(t, b.addr, md); code != 200 {
				t.Fatalf("OTLP metrics to %s: %d %s", b.addr, code, resp)
			}
		}
	}
	d.tracesFrom = time.Now().UnixMicro() - 1
	for n := range 12 {
		body, tid := crashTraceRequest(n)
		d.traces = append(d.traces, tid)
		for _, b := range both {
			if code, resp := post(t, "http://"+b.addr+"/v1/traces", body, "Content-Type", "application/x-protobuf"); code != 200 {
				t.Fatalf("OTLP traces to %s: %d %s", b.addr, code, resp)
			}
		}
	}
	d.tracesTo = time.Now().UnixMicro() + 1
	c.waitIdentical(t, d, 60*time.Second)
}

// procsQueries are the reads compared between the query node and the
// single node for step 1's data starting at base.
func procsQueries(base int64) []string {
	window := url.Values{"s": {fmt.Sprint(base - 10_000)}, "e": {fmt.Sprint(base + 30_000)}, "step": {"1s"}, "format": {"json"}}
	graph := func(q string) string {
		v := url.Values{"q": {q}}
		for k, vs := range window {
			v[k] = vs
		}
		return "/api/v1/graph?" + v.Encode()
	}
	prom := func(q string) string {
		return "/api/v1/query_range?" + url.Values{"query": {q}, "start": {fmt.Sprint(base/1000 - 10)},
			"end": {fmt.Sprint(base/1000 + 30)}, "step": {"1"}}.Encode()
	}
	return []string{
		graph(`name,e2e\.,:re,:sum,(,name,),:by`),
		graph(`name,e2e.gauge,:eq,:sum,(,node,),:by`),
		graph(`name,e2e.rate,:eq,:max`),
		graph(`name,e2e.counter,:eq,:count`),
		graph(`name,e2e.sum,:eq,:min,(,node,),:by`),
		graph(`name,e2e.otlp,:eq,(,node,),:by`),
		graph(`name,e2e.lat,:eq,(,50,90,99,),:percentiles`),
		"/api/v1/tags?" + url.Values{"q": {`name,e2e\.,:re`}}.Encode(),
		"/api/v1/tags/node?" + url.Values{"q": {`name,e2e\.,:re`}}.Encode(),
		prom(`sum by (node) (e2e.gauge)`),
		prom(`max(e2e.otlp)`),
	}
}

// waitIdentical waits until the query node answers every read of d as the
// single node does (the store nodes catching up), then checks that no
// answer of the query node is partial.
func (c *procsCluster) waitIdentical(t *testing.T, d *procsData, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, path := range c.reads(d) {
		want := answer(t, c.single.addr, path)
		if want.code != 200 || !hasData(path, want.body) {
			t.Fatalf("the single node answers %s with no data: %d %.300s", path, want.code, want.body)
		}
		got := answer(t, c.query.addr, path)
		for !same(path, got, want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // polling while the store nodes catch up
			got = answer(t, c.query.addr, path)
		}
		if !same(path, got, want) {
			t.Fatalf("GET %s\nquery node:  %d partial=%q %.2000s\nsingle node: %d %.2000s", path, got.code, got.partial, got.body, want.code, want.body)
		}
		if got.partial != "" {
			t.Errorf("GET %s: the query node says X-Sextant-Partial: %s with every store node up", path, got.partial)
		}
	}
}

// reads are the paths compared: step 1's queries, each trace by id, a
// trace search, and the series of the writers of later steps.
func (c *procsCluster) reads(d *procsData) []string {
	paths := procsQueries(d.base)
	for _, tid := range d.traces {
		paths = append(paths, "/api/traces/"+fmt.Sprintf("%x", tid[:]))
	}
	paths = append(paths, searchPath("api", d.tracesFrom, d.tracesTo))
	for _, w := range d.seqs {
		paths = append(paths, w.graphPath(), w.tracesPath())
	}
	return paths
}

// stepKillStore kills a store node under queries and writes, restarts it,
// and checks that nothing acknowledged is lost or doubled.
func (c *procsCluster) stepKillStore(t *testing.T, d *procsData) {
	// Rates, Spectator's counters: a store node replaying a sample it
	// applied before the kill finds it at or before the series' last one
	// and sets its step to the same value. (A sum datapoint replayed is
	// added again: docs/cluster.md, "Delivery".)
	w := newSeqWriter("seq.kill", "rate", 1000, c.ingest.addr, c.single.addr)
	d.seqs = append(d.seqs, w)
	go w.run()
	defer w.finish() // stops it if the step fails early
	loop := c.startQueryLoop(t, d)
	defer loop.finish()
	w.waitWritten(t, 0, 30, "before the kill")
	loop.waitAnswered(10, 30*time.Second)

	const victim = "store-2"
	failovers := c.queryMeter(t, "sextant_cluster_fanout_failovers_total")
	kill(c.stores[victim])
	before, queried := w.written.Load(), loop.ok.Load()
	w.waitWritten(t, before, 30, "with "+victim+" down")
	if !loop.waitAnswered(queried+20, 30*time.Second) {
		t.Errorf("fewer than 20 queries answered in full in 30 s with %s down", victim)
	}
	restarted := time.Now()
	c.stores[victim] = c.start(t, "store", victim, c.dirs[victim])
	w.waitWritten(t, w.written.Load(), 30, "after the restart")
	acked, failed := w.finish()
	// The restarted node caught up and serves again.
	c.waitServed(t, 3, map[string]time.Time{victim: restarted})
	report(t, "the single node", w.checkSeries(t, c.single.addr, acked, nil))
	ok, problems := loop.finish()
	t.Logf("%d writes acknowledged around the kill; %d queries answered in full", len(acked), ok)
	report(t, "queries on the query node while "+victim+" was killed and restarted", problems)
	if n := c.queryMeter(t, "sextant_cluster_fanout_failovers_total"); n <= failovers {
		t.Errorf("the query node's reads never failed over from the killed %s to a replica (failovers %v before, %v after)", victim, failovers, n)
	}
	report(t, "writes not acknowledged with every broker up", failed)

	// Every acknowledged write, exactly once, through the query node and
	// on the restarted node for the partitions it owns.
	report(t, "the query node after the restart", untilClean(60*time.Second, func() []string {
		return append(w.checkSeries(t, c.query.addr, acked, nil), w.checkTraces(t, c.query.addr, acked, nil)...)
	}))
	owned := c.assigned(t, victim)
	keepSeries := map[string]bool{}
	for k := range 4 {
		ts := tags.New("name", w.name, "shard", fmt.Sprintf("s%d", k), "atlas.dstype", w.dstype)
		if owned[tags.PartitionOf(ts, procsPartitions)] {
			keepSeries[fmt.Sprintf("s%d", k)] = true
		}
	}
	if len(keepSeries) == 0 {
		// Hashes and the rendezvous ranking are fixed: this does not vary.
		t.Fatalf("%s owns partitions %v, none of the writer's series: the test needs some", victim, owned)
	}
	// Serving means within 3 s of the log's end: the last records may
	// still be on their way. A store node does not answer the read APIs
	// (its roles lack query): its data is read as a query node reads it.
	view := storeView(t, c.stores[victim].addr, procsPartitions, owned)
	report(t, "the restarted "+victim+" on its own partitions", untilClean(30*time.Second, func() []string {
		return append(w.checkSeries(t, view, acked, keepSeries),
			w.checkTraces(t, view, acked, func(tid pcommon.TraceID) bool {
				return owned[tracing.TracePartition(tid, procsPartitions)]
			})...)
	}))
}

// stepReplaceStore kills a store node for longer than the membership's
// timeout: the query node declares it dead, the two others take over its
// partitions (replaying them from the log) while the queries keep being
// answered in full, and it comes back.
func (c *procsCluster) stepReplaceStore(t *testing.T, d *procsData) {
	w := newSeqWriter("seq.replace", "rate", 3000, c.ingest.addr, c.single.addr)
	go w.run()
	defer w.finish() // stops it if the step fails early
	loop := c.startQueryLoop(t, d)
	defer loop.finish()
	w.waitWritten(t, 0, 10, "before the kill")

	const victim = "store-3"
	killed := time.Now()
	kill(c.stores[victim])
	c.waitServed(t, 2, nil) // dead, its partitions taken over
	t.Logf("%s replaced after %v", victim, time.Since(killed).Round(100*time.Millisecond))
	w.waitWritten(t, w.written.Load(), 10, "after the take-over")
	restarted := time.Now()
	c.stores[victim] = c.start(t, "store", victim, c.dirs[victim])
	c.waitServed(t, 3, map[string]time.Time{victim: restarted})
	acked, failed := w.finish()
	ok, problems := loop.finish()
	t.Logf("%d writes acknowledged; %d queries answered in full", len(acked), ok)
	report(t, "queries on the query node while "+victim+" was replaced", problems)
	report(t, "writes not acknowledged with every broker up", failed)
	report(t, "the query node after "+victim+" came back", untilClean(60*time.Second, func() []string {
		return append(w.checkSeries(t, c.query.addr, acked, nil), w.checkTraces(t, c.query.addr, acked, nil)...)
	}))
	d.seqs = append(d.seqs, w)
}

// queryMeter is the value of a meter on the query node's /metrics.
func (c *procsCluster) queryMeter(t *testing.T, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+c.query.addr+"/metrics")
	return metricValue(body, name)
}

// assigned returns the partitions id owns, as the query node sees it.
func (c *procsCluster) assigned(t *testing.T, id string) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, n := range c.status(t).Nodes {
		if n.ID != id {
			continue
		}
		for _, p := range n.Partitions {
			if p.Assigned {
				out[p.Partition] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s owns no partition", id)
	}
	return out
}

// stepJoinStore starts a fourth store node and checks that it takes over
// partitions without loss or duplicates.
func (c *procsCluster) stepJoinStore(t *testing.T, d *procsData) {
	c.dirs["store-4"] = c.top.TempDir()
	c.stores["store-4"] = c.start(t, "store", "store-4", c.dirs["store-4"])
	st := c.waitServed(t, 4, nil)
	var owned []string
	for _, n := range st.Nodes {
		if len(n.Partitions) > 0 {
			owned = append(owned, fmt.Sprintf("%s %d", n.ID, len(n.Partitions)))
		}
	}
	t.Logf("partition-replicas owned: %s", strings.Join(owned, ", "))
	if len(c.assigned(t, "store-4")) == 0 {
		t.Fatal("store-4 owns no partition")
	}
	c.waitIdentical(t, d, 30*time.Second)
}

// stepKillBroker kills a Kafka broker under a stream of writes.
func (c *procsCluster) stepKillBroker(t *testing.T, d *procsData) {
	// Sums: the producer sends again a write whose acknowledgement the
	// dead broker never sent, and the idempotent producer's sequence
	// numbers let the new leader drop it if the dead one had it
	// (docs/cluster.md "Delivery"): a sum counts each write once.
	w := newSeqWriter("seq.broker", "sum", 5000, c.ingest.addr, c.single.addr)
	go w.run()
	defer w.finish() // stops it if the step fails early
	w.waitWritten(t, 0, 20, "before the broker dies")
	victim := c.kc.LeaderFor("procs-metrics", 0)
	c.killBroker(t, victim)
	t.Logf("broker %d killed after %d writes", victim, w.written.Load())
	w.waitWritten(t, w.written.Load(), 40, "after the broker died")
	acked, failed := w.finish()
	report(t, "writes not acknowledged with two brokers of three", failed)
	c.waitServed(t, 4, nil) // no node lost its membership with the broker
	report(t, "the query node after the broker died", untilClean(60*time.Second, func() []string {
		return append(w.checkSeries(t, c.query.addr, acked, nil), w.checkTraces(t, c.query.addr, acked, nil)...)
	}))
	d.seqs = append(d.seqs, w)
	c.waitIdentical(t, d, 30*time.Second)
}
