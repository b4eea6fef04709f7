package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

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
//  3. a fourth store node joins, takes over partitions, and the query
//     node's answers are still the single node's;
//  4. a Kafka broker is killed: the ingest node keeps acknowledging, and
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
	if !t.Run("join-store", func(t *testing.T) { c.stepJoinStore(t, data) }) {
		t.FailNow()
	}
	t.Run("kill-broker", func(t *testing.T) { c.stepKillBroker(t, data) })
}

// procsCluster is the test's cluster.
type procsCluster struct {
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
	c := &procsCluster{bin: buildBinary(t), kc: kc, lns: lns, brokers: strings.Join(kc.ListenAddrs(), ","),
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
// when the test ends unless it was killed before.
func (c *procsCluster) start(t *testing.T, role, id, dir string) *binary {
	t.Helper()
	b := runBinary(t, c.bin, nil, "--data-dir", dir, "--memory-retention", "1h", "--kafka-brokers", c.brokers,
		"--role", role, "--node-id", id, "--kafka-topic-prefix", "procs",
		"--kafka-partitions", fmt.Sprint(procsPartitions), "--replication-factor", "2")
	t.Cleanup(func() { stopBinary(t, b) })
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

// numberAfterValues finds a number in the values of a graph or
// Prometheus answer.
var numberAfterValues = regexp.MustCompile(`"values":\[.*[\[,"]-?[0-9]`)

// hasData says whether an answer holds data, so that two answers alike
// in being empty do not pass for the same data.
func hasData(path, body string) bool {
	switch {
	case strings.HasPrefix(path, "/api/v1/graph"), strings.HasPrefix(path, "/api/v1/query_range"):
		return numberAfterValues.MatchString(body)
	case strings.HasPrefix(path, "/api/v1/tags"):
		return len(body) > 10
	case strings.HasPrefix(path, "/api/traces"):
		return strings.Contains(body, `"spanID"`)
	}
	return false
}

// reply is one HTTP answer.
type reply struct {
	code    int
	partial string // X-Sextant-Partial
	body    string
}

func answer(t *testing.T, addr, path string) reply {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, addr, err)
	}
	return reply{code: resp.StatusCode, partial: resp.Header.Get("X-Sextant-Partial"), body: string(b)}
}

// same says whether two answers to path are the same: graphs up to the
// last bits of a float (sameGraph), trace searches as sets of traces with
// their spans, anything else byte for byte.
func same(path string, a, b reply) bool {
	if a.code != b.code || a.code != 200 {
		return false
	}
	switch {
	case strings.HasPrefix(path, "/api/v1/graph"):
		return sameGraph(a.body, b.body)
	case strings.HasPrefix(path, "/api/traces?"):
		return traceSet(a.body) == traceSet(b.body)
	}
	return a.body == b.body
}

// traceSet is a Jaeger search answer as its sorted trace ids, each with
// its sorted span ids.
func traceSet(body string) string {
	var doc struct {
		Data []struct {
			TraceID string
			Spans   []struct{ SpanID string }
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return "invalid: " + err.Error()
	}
	var out []string
	for _, tr := range doc.Data {
		var spans []string
		for _, s := range tr.Spans {
			spans = append(spans, s.SpanID)
		}
		sort.Strings(spans)
		out = append(out, tr.TraceID+":"+strings.Join(spans, ","))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// percentileBody is step i of a percentile timer e2e.lat: three buckets
// of counts per second, as Spectator's PercentileTimer publishes them.
func percentileBody(t int64, i int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":{"app":"e2e"},"metrics":[`)
	for j, bucket := range []string{"T0020", "T0030", "T0040"} {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"tags":{"name":"e2e.lat","statistic":"percentile","percentile":%q,"atlas.dstype":"rate"},"timestamp":%d,"value":%d}`,
			bucket, t, (i%5+1)*(j+1))
	}
	b.WriteString("]}")
	return b.Bytes()
}

// seqWriter writes numbered datapoints and traces to the ingest node and,
// once the ingest node acknowledged them, the same to the single node.
// Write n is one datapoint of series name{shard=s<n%4>} at base+n seconds,
// value n+1 (a datapoint applied twice and added reads 2(n+1)), and one
// trace of three spans.
type seqWriter struct {
	name, dstype string
	base         int64
	traceBase    int // trace n is crashTraceRequest(traceBase+n)
	ingest       string
	single       string
	client       *http.Client

	written atomic.Int64 // writes done, acknowledged or not
	// from and to bound the start times of its traces, Unix µs.
	from int64
	to   atomic.Int64
	mu   struct {
		sync.Mutex
		acked  []int
		failed []string // writes the ingest node or the single node did not acknowledge
	}
	stop, done chan struct{}
}

// maxWrites bounds a writer's writes: each is its own step of a graph.
const maxWrites = 600

func newSeqWriter(name, dstype string, traceBase int, ingest, single string) *seqWriter {
	return &seqWriter{name: name, dstype: dstype, traceBase: traceBase, ingest: ingest, single: single,
		from:   time.Now().UnixMicro() - 1,
		base:   time.Now().Truncate(time.Second).Add(-maxWrites * time.Second).UnixMilli(),
		client: &http.Client{Timeout: 20 * time.Second}, stop: make(chan struct{}), done: make(chan struct{})}
}

// run writes until stopped (or maxWrites).
func (w *seqWriter) run() {
	defer close(w.done)
	defer func() { w.to.Store(time.Now().UnixMicro() + 1) }()
	for n := 0; n < maxWrites; n++ {
		select {
		case <-w.stop:
			return
		default:
		}
		body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":%q,"shard":"s%d","atlas.dstype":%q},"timestamp":%d,"value":%d}]}`,
			w.name, n%4, w.dstype, w.base+int64(n)*1000, n+1)
		spans, _ := crashTraceRequest(w.traceBase + n)
		err := w.send(w.ingest, body, spans)
		var serr error
		if err == nil {
			serr = w.send(w.single, body, spans)
		}
		w.mu.Lock()
		if err != nil {
			w.mu.failed = append(w.mu.failed, fmt.Sprintf("write %d to the ingest node: %v", n, err))
		} else {
			w.mu.acked = append(w.mu.acked, n)
		}
		if serr != nil {
			w.mu.failed = append(w.mu.failed, fmt.Sprintf("write %d to the single node: %v", n, serr))
		}
		w.mu.Unlock()
		w.written.Add(1)
	}
}

// send posts one write's datapoint and trace to addr; nil when both were
// acknowledged with a 2xx.
func (w *seqWriter) send(addr string, body, spans []byte) error {
	for _, r := range []struct {
		path, ctype string
		body        []byte
	}{
		{"/api/v1/publish", "application/json", body}, {"/v1/traces", "application/x-protobuf", spans}} {
		resp, err := w.client.Post("http://"+addr+r.path, r.ctype, bytes.NewReader(r.body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: %d %s", r.path, resp.StatusCode, msg)
		}
	}
	return nil
}

// waitWritten waits until n more writes were done than when it was called
// with before.
func (w *seqWriter) waitWritten(t *testing.T, before int64, n int64, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d writes %s", n, what), func() bool { return w.written.Load() >= before+n })
}

// finish stops the writer and returns the acknowledged writes.
func (w *seqWriter) finish() (acked []int, failed []string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.mu.acked), slices.Clone(w.mu.failed)
}

func (w *seqWriter) graphPath() string {
	return "/api/v1/graph?" + url.Values{"q": {"name," + w.name + ",:eq,(,shard,),:by"}, "s": {fmt.Sprint(w.base - 1000)},
		"e": {fmt.Sprint(w.base + maxWrites*1000)}, "step": {"1s"}, "format": {"json"}}.Encode()
}

func (w *seqWriter) tracesPath() string { return searchPath("db", w.from, w.to.Load()) }

// searchPath is a Jaeger search for the traces of service that started
// in [from, to] (Unix µs).
func searchPath(service string, from, to int64) string {
	return "/api/traces?" + url.Values{"service": {service}, "start": {fmt.Sprint(from)}, "end": {fmt.Sprint(to)},
		"limit": {"1000"}}.Encode()
}

// checkSeries checks the graph of the writer's series on addr: write n,
// when acknowledged, reads exactly n+1 at its step in line s<n%4>; a step
// nothing was acknowledged for reads nothing (NaN) or, for a write the
// ingest node failed, its value. Only the lines in keep (by k) are
// checked (by shard), and each must be there; nil keeps all four.
func (w *seqWriter) checkSeries(t *testing.T, addr string, acked []int, keep map[string]bool) []string {
	t.Helper()
	r := answer(t, addr, w.graphPath())
	var g struct {
		Start, Step int64
		Metrics     []map[string]string
		Values      [][]any
	}
	if r.code != 200 || json.Unmarshal([]byte(r.body), &g) != nil || g.Step != 1000 {
		return []string{fmt.Sprintf("graph of %s on %s: %d %.300s", w.name, addr, r.code, r.body)}
	}
	line := map[string]int{}
	for i, m := range g.Metrics {
		line[m["shard"]] = i
	}
	isAcked := map[int]bool{}
	for _, n := range acked {
		isAcked[n] = true
	}
	var problems []string
	for k := range 4 {
		key := fmt.Sprintf("s%d", k)
		if keep != nil && !keep[key] {
			continue
		}
		col, ok := line[key]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s on %s: no line %s", w.name, addr, key))
			continue
		}
		for n := k; n < maxWrites; n += 4 {
			row := int((w.base + int64(n)*1000 - g.Start) / g.Step)
			if row < 0 || row >= len(g.Values) {
				problems = append(problems, fmt.Sprintf("%s on %s: no step for write %d", w.name, addr, n))
				break
			}
			v, isNum := g.Values[row][col].(float64)
			switch {
			case isAcked[n] && !isNum:
				problems = append(problems, fmt.Sprintf("%s %s write %d acknowledged but missing", w.name, key, n))
			case isAcked[n] && v == 2*float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s write %d applied twice: %v", w.name, key, n, v))
			case isAcked[n] && v != float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s write %d reads %v, want %d", w.name, key, n, v, n+1))
			case !isAcked[n] && isNum && v != float64(n+1):
				problems = append(problems, fmt.Sprintf("%s %s step of write %d reads %v, never written", w.name, key, n, v))
			}
		}
	}
	if len(problems) > 0 {
		problems = append([]string{fmt.Sprintf("(%s answered %.600s)", addr, r.body)}, problems...)
	}
	return problems
}

// checkTraces checks that each acknowledged write's trace is on addr with
// its three spans, once each; only traces whose partition keep holds are
// checked (nil: all).
func (w *seqWriter) checkTraces(t *testing.T, addr string, acked []int, keep func(pcommon.TraceID) bool) []string {
	t.Helper()
	var problems []string
	for _, n := range acked {
		_, tid := crashTraceRequest(w.traceBase + n)
		if keep != nil && !keep(tid) {
			continue
		}
		r := answer(t, addr, "/api/traces/"+fmt.Sprintf("%x", tid[:]))
		if r.code != 200 || spanIDs(r.body) != 3 {
			problems = append(problems, fmt.Sprintf("trace of write %d on %s: %d, %d spans, want 3", n, addr, r.code, spanIDs(r.body)))
		}
	}
	return problems
}

// untilClean polls check until it finds no problem or timeout passes, and
// returns the problems it found last (the store nodes catch up
// asynchronously; the timeout only bounds a failure).
func untilClean(timeout time.Duration, check func() []string) []string {
	deadline := time.Now().Add(timeout)
	for {
		problems := check()
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(100 * time.Millisecond) // polling, as waitFor
	}
}

// report fails t with at most the first 20 problems.
func report(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	if len(problems) > 20 {
		problems = append(problems[:20], fmt.Sprintf("… and %d more", len(problems)-20))
	}
	t.Errorf("%s:\n  %s", what, strings.Join(problems, "\n  "))
}

// queryLoop runs reads against the query node until stopped, each
// checked against the single node's answer taken before it started: a
// store node dying under it must not make an answer fail, differ or be
// partial.
type queryLoop struct {
	ok       atomic.Int64
	mu       sync.Mutex
	problems []string // the first 20
	failed   int
	stop     chan struct{}
	done     chan struct{}
}

func (c *procsCluster) startQueryLoop(t *testing.T, d *procsData) *queryLoop {
	t.Helper()
	paths := c.reads(&procsData{base: d.base, traces: d.traces, tracesFrom: d.tracesFrom, tracesTo: d.tracesTo})
	wants := make([]reply, len(paths))
	for i, p := range paths {
		wants[i] = answer(t, c.single.addr, p)
	}
	l := &queryLoop{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	// Two readers, so that reads are in flight when the node dies.
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := paths[i%len(paths)]
				got, err := fetch(client, c.query.addr, path)
				switch {
				case err != nil:
					l.add(fmt.Sprintf("GET %s: %v", path, err))
				case got.partial != "":
					l.add(fmt.Sprintf("GET %s: partial (%s): %.200s", path, got.partial, got.body))
				case !same(path, got, wants[i%len(paths)]):
					l.add(fmt.Sprintf("GET %s: %d %.300s\nwant %.300s", path, got.code, got.body, wants[i%len(paths)].body))
				default:
					l.ok.Add(1)
				}
			}
		})
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// waitAnswered waits until n reads were answered in full, or timeout
// passed, or a read failed (reported by finish); it says whether n were.
func (l *queryLoop) waitAnswered(n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for l.ok.Load() < n && time.Now().Before(deadline) {
		l.mu.Lock()
		failed := l.failed
		l.mu.Unlock()
		if failed > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling, as waitFor
	}
	return l.ok.Load() >= n
}

func (l *queryLoop) add(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < 20 {
		l.problems = append(l.problems, p)
	}
	l.failed++
}

func (l *queryLoop) finish() (ok int64, problems []string) {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed > len(l.problems) {
		return l.ok.Load(), append(slices.Clone(l.problems), fmt.Sprintf("… %d failed in all", l.failed))
	}
	return l.ok.Load(), slices.Clone(l.problems)
}

// fetch is answer for goroutines that may not fail the test.
func fetch(client *http.Client, addr, path string) (reply, error) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, partial: resp.Header.Get("X-Sextant-Partial"), body: string(b)}, err
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
	loop := c.startQueryLoop(t, d)
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
	// still be on their way.
	report(t, "the restarted "+victim+" on its own partitions", untilClean(30*time.Second, func() []string {
		return append(w.checkSeries(t, c.stores[victim].addr, acked, keepSeries),
			w.checkTraces(t, c.stores[victim].addr, acked, func(tid pcommon.TraceID) bool {
				return owned[tracing.TracePartition(tid, procsPartitions)]
			})...)
	}))
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
	c.dirs["store-4"] = t.TempDir()
	c.stores["store-4"] = c.start(t, "store", "store-4", c.dirs["store-4"])
	st := c.waitServed(t, 4, nil)
	for _, n := range st.Nodes {
		t.Logf("%s owns %d partitions", n.ID, len(n.Partitions))
	}
	if len(c.assigned(t, "store-4")) == 0 {
		t.Fatal("store-4 owns no partition")
	}
	c.waitIdentical(t, d, 30*time.Second)
}

// stepKillBroker kills a Kafka broker under a stream of writes.
func (c *procsCluster) stepKillBroker(t *testing.T, d *procsData) {
	// Gauges: the producer retries a write whose acknowledgement the dead
	// broker never sent (no idempotent producer, docs/cluster.md
	// "Delivery"), which a gauge absorbs and a sum would count twice.
	w := newSeqWriter("seq.broker", "gauge", 5000, c.ingest.addr, c.single.addr)
	go w.run()
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

// sameGraph reports whether two graph API JSON answers are the same: the
// same lines, and values equal up to the last bits of a float (an
// aggregate adds its series in the order the store holds them, which the
// log's partitions change).
func sameGraph(a, b string) bool {
	type graph struct {
		Legend  []string
		Metrics []map[string]string
		Values  [][]any
	}
	var ga, gb graph
	if json.Unmarshal([]byte(a), &ga) != nil || json.Unmarshal([]byte(b), &gb) != nil {
		return false
	}
	if fmt.Sprint(ga.Legend, ga.Metrics) != fmt.Sprint(gb.Legend, gb.Metrics) || len(ga.Values) != len(gb.Values) {
		return false
	}
	for i, row := range ga.Values {
		if len(row) != len(gb.Values[i]) {
			return false
		}
		for j, va := range row {
			x, okx := va.(float64)
			y, oky := gb.Values[i][j].(float64)
			switch {
			case okx != oky:
				return false
			case !okx:
				if va != gb.Values[i][j] { // "NaN"
					return false
				}
			case math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y)):
				return false
			}
		}
	}
	return true
}

// spanIDs counts the spans of a Jaeger API answer.
func spanIDs(body string) int { return strings.Count(body, `"spanID"`) }

// publishBody is step i of a publish request: 10 series of each data
// source type.
func publishBody(t int64, i int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":{"app":"e2e"},"metrics":[`)
	for j, ds := range []string{"gauge", "rate", "counter", "sum"} {
		for k := range 10 {
			if j+k > 0 {
				b.WriteByte(',')
			}
			v := float64(i*(k+1)) + 0.25*float64(j)
			fmt.Fprintf(&b, `{"tags":{"name":"e2e.%s","atlas.dstype":"%s","node":"i-%02d"},"timestamp":%d,"value":%g}`,
				ds, ds, k, t-int64(k*37), v)
		}
	}
	b.WriteString("]}")
	return b.Bytes()
}

// otlpGauge is step i of an OTLP gauge of 5 series.
func otlpGauge(t int64, i int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "e2e")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("e2e.otlp")
	g := m.SetEmptyGauge()
	for k := range 5 {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(t * 1e6))
		dp.SetDoubleValue(float64(i + k))
		dp.Attributes().PutStr("node", fmt.Sprintf("n%d", k))
	}
	return md
}
