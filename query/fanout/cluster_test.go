package fanout_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tracing/tracingtest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The test cluster: 3 store nodes, 6 partitions, each owned by 2 nodes
// (partition p by nodes p%3 then (p+1)%3). Node 0 also holds the data of
// the partitions it does not own (as a node that served them before a
// reassignment), so that a store node answering more than it was asked
// would count series twice.
const (
	numNodes      = 3
	numPartitions = 6
	step          = int64(60_000)
)

// start and now of the loaded metric data: 3 hours, minute steps.
var (
	dataStart = int64(1_700_006_400_000)
	dataNow   = dataStart + 3*3600_000
)

// storeNode is one in-process store node: real stores behind a real HTTP
// server serving the internal endpoints.
type storeNode struct {
	id    string
	store *db.DB
	spans *spanstore.Store
	srv   *httptest.Server
}

// testCluster is the store nodes, a single store holding all of the data,
// and the static ownership.
type testCluster struct {
	nodes  []*storeNode
	single *db.DB
	spans  *spanstore.Store // the single node's span store
	traces []tracing.TraceID
}

// staticOwners is a fixed ownership: partition p is served by nodes p%3
// and (p+1)%3, in that order.
type staticOwners struct{ nodes []fanout.Node }

func (o staticOwners) Partitions() int { return numPartitions }

func (o staticOwners) Owners(p int) []fanout.Node {
	return []fanout.Node{o.nodes[p%len(o.nodes)], o.nodes[(p+1)%len(o.nodes)]}
}

func owns(node, p int) bool { return p%numNodes == node || (p+1)%numNodes == node }

// metricInputs is the metric data: a gauge req with 3 apps x 10 nodes
// (integer values, so sums are exact in any order) and percentile bucket
// series of a timer lat for 2 apps.
func metricInputs() []querytest.Input {
	n := int((dataNow - dataStart) / step)
	var in []querytest.Input
	for i := range 30 {
		vs := make([]float64, n)
		for j := range vs {
			vs[j] = float64((i*7 + j*3) % 50)
			if (i+j)%11 == 0 {
				vs[j] = math.NaN() // gaps
			}
		}
		in = append(in, querytest.Input{Tags: tags.New("name", "req", "app", fmt.Sprint("app-", i%3), "node", fmt.Sprint("i-", i), "atlas.dstype", "gauge"), Start: dataStart, Values: vs})
	}
	// Series with data in the first half hour only (in the first 2-hour
	// block): a tags or series request on a later window leaves them out.
	for i := range 8 {
		vs := make([]float64, 30)
		for j := range vs {
			vs[j] = float64(i + j)
		}
		in = append(in, querytest.Input{Tags: tags.New("name", "old", "app", fmt.Sprint("old-", i), "atlas.dstype", "gauge"), Start: dataStart, Values: vs})
	}
	for a := range 2 {
		for b := 40; b < 60; b++ {
			vs := make([]float64, n)
			for j := range vs {
				vs[j] = float64((b*j+a)%9) * 2
			}
			in = append(in, querytest.Input{Tags: tags.New("name", "lat", "app", fmt.Sprint("app-", a), "statistic", "percentile",
				"percentile", fmt.Sprintf("T%04X", b), "atlas.dstype", "gauge"), Start: dataStart, Values: vs})
		}
	}
	return in
}

// newTestCluster starts the store nodes and the single store.
func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	return newTestClusterWith(t, nil)
}

// newTestClusterWith starts the store nodes with handler options mod
// changes (nil: none) and the single store.
func newTestClusterWith(t *testing.T, mod func(node int, o *fanout.HandlerOptions)) *testCluster {
	t.Helper()
	return newTestClusterOpts(t, clusterOpts{handler: mod})
}

// clusterOpts vary the test cluster.
type clusterOpts struct {
	// handler changes the handler options of store node i (nil: none).
	handler func(node int, o *fanout.HandlerOptions)
	// limits are the query limits of every store, the single one's too
	// (zero: the store's defaults).
	limits tsdb.Cost
	// spanPartitions, when set, makes the store nodes' span stores count
	// dependencies per partition (spanstore.Options.Partitions).
	spanPartitions bool
}

// openStore opens an in-memory store with limits, holding inputs.
func openStore(t *testing.T, limits tsdb.Cost, inputs []querytest.Input) *db.DB {
	t.Helper()
	if limits == (tsdb.Cost{}) {
		return querytest.Open(t, step, dataNow, inputs...)
	}
	const day = 24 * 3600_000
	d, err := db.Open("", db.Options{Step: step, MemoryRetention: 400 * day, Retention: 400 * day, IngestMaxAge: 400 * day,
		MaxFuture: 400 * day, Now: func() int64 { return dataNow },
		MaxSeriesPerQuery: limits.Series, MaxDatapointsPerQuery: limits.Datapoints, MaxBytesPerQuery: limits.Bytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	querytest.Load(t, d, step, inputs...)
	return d
}

// newTestClusterOpts starts the store nodes and the single store as o
// says.
func newTestClusterOpts(t *testing.T, o clusterOpts) *testCluster {
	t.Helper()
	mod := o.handler
	inputs := metricInputs()
	td := tracingtest.Batch(1, time.Now(), time.Hour)
	c := &testCluster{single: openStore(t, o.limits, inputs), spans: openSpans(t, td)}
	for k := range 10 {
		c.traces = append(c.traces, tracing.TraceID(tracingtest.TraceID(1, k)))
	}
	for i := range numNodes {
		keep := func(p int) bool { return i == 0 || owns(i, p) }
		var mine []querytest.Input
		for _, in := range inputs {
			if keep(tags.PartitionOf(in.Tags, numPartitions)) {
				mine = append(mine, in)
			}
		}
		n := &storeNode{id: fmt.Sprint("store-", i), store: openStore(t, o.limits, mine)}
		parts := 0
		if o.spanPartitions {
			parts = numPartitions
		}
		n.spans = openSpansIn(t, parts, filterTraces(td, func(id tracing.TraceID) bool { return keep(tracing.TracePartition(id, numPartitions)) }))
		hopts := fanout.HandlerOptions{Querier: n.store, Reader: n.spans, Catalog: n.spans, Deps: n.spans, Exemplars: n.spans}
		if mod != nil {
			mod(i, &hopts)
		}
		h, err := fanout.NewHandler(hopts)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		h.Register(mux)
		n.srv = httptest.NewServer(mux)
		t.Cleanup(n.srv.Close)
		c.nodes = append(c.nodes, n)
	}
	return c
}

// replaying replaces node i by a node that restarted and replays the log:
// its stores are empty so far, and it serves none of its partitions yet
// (its handler's Serving says so).
func (c *testCluster) replaying(t *testing.T, i int) {
	t.Helper()
	c.stop(i)
	n := &storeNode{id: c.nodes[i].id, store: querytest.Open(t, step, dataNow), spans: openSpans(t, ptrace.NewTraces())}
	h, err := fanout.NewHandler(fanout.HandlerOptions{Querier: n.store, Reader: n.spans, Catalog: n.spans, Deps: n.spans,
		Serving: func(int) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	c.nodes[i] = n
}

// owners returns the static ownership over the nodes.
func (c *testCluster) owners() staticOwners {
	var o staticOwners
	for _, n := range c.nodes {
		o.nodes = append(o.nodes, fanout.Node{ID: n.id, Addr: n.srv.Listener.Addr().String()})
	}
	return o
}

// querier returns a fan-out querier over the cluster.
func (c *testCluster) querier(t *testing.T) *fanout.Querier {
	t.Helper()
	q, err := fanout.New(fanout.Options{Owners: c.owners(), AttemptTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// stop kills node i: its server closes its listener and connections.
func (c *testCluster) stop(i int) {
	c.nodes[i].srv.CloseClientConnections()
	c.nodes[i].srv.Close()
}

func openSpans(t *testing.T, td ptrace.Traces) *spanstore.Store {
	t.Helper()
	return openSpansIn(t, 0, td)
}

// openSpansIn opens a span store that counts dependencies by partition of
// a log of parts partitions (0: without), holding td.
func openSpansIn(t *testing.T, parts int, td ptrace.Traces) *spanstore.Store {
	t.Helper()
	s, err := spanstore.Open("", spanstore.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	s.SetPartitions(parts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := s.WriteTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	return s
}

// filterTraces copies the spans of td whose trace keep accepts.
func filterTraces(td ptrace.Traces, keep func(tracing.TraceID) bool) ptrace.Traces {
	out := ptrace.NewTraces()
	for _, rs := range td.ResourceSpans().All() {
		ors := out.ResourceSpans().AppendEmpty()
		rs.Resource().CopyTo(ors.Resource())
		for _, ss := range rs.ScopeSpans().All() {
			oss := ors.ScopeSpans().AppendEmpty()
			ss.Scope().CopyTo(oss.Scope())
			for _, sp := range ss.Spans().All() {
				if keep(tracing.TraceID(sp.TraceID())) {
					sp.CopyTo(oss.Spans().AppendEmpty())
				}
			}
		}
	}
	return out
}
