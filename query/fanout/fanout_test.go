package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tracing"
	traceapi "github.com/sextant-dev/sextant/tracing/api"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// graphServer serves the query API over q.
func graphServer(t *testing.T, q tsdb.Querier) *httptest.Server {
	t.Helper()
	a, err := api.New(api.Options{Querier: q, StorageStep: step, Now: func() time.Time { return time.UnixMilli(dataNow) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, params ...string) (int, http.Header, string) {
	t.Helper()
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Add(params[i], params[i+1])
	}
	resp, err := http.Get(srv.URL + path + "?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// graphQueries are the expressions compared between the cluster and the
// single store: every pushed-down aggregation, grouped and not, the
// average (a sum over a count), percentiles (grouped sums of buckets) and
// raw series, at the storage step and consolidated.
var graphQueries = []string{
	"name,req,:eq,:sum,(,app,),:by",
	"name,req,:eq,:sum",
	"name,req,:eq,:avg",
	"name,req,:eq,:count,(,app,),:by",
	"name,req,:eq,:min,(,app,),:by",
	"name,req,:eq,:max",
	"name,req,:eq,:avg,(,app,),:by",
	"name,lat,:eq,(,50,90,99,),:percentiles",
	"name,lat,:eq,(,app,),:by,(,50,99.9,),:percentiles",
	"name,req,:eq,app,app-1,:eq,:and",
	"name,req,:eq,(,app,node,),:by",
	"name,none,:eq,:sum",
}

// graphParams returns the graph parameters for q over the last 2 hours at
// step (empty: the storage step).
func graphParams(q, st string) []string {
	ps := []string{"q", q, "format", "json", "s", fmt.Sprint(dataNow - 2*3600_000), "e", fmt.Sprint(dataNow), "tz", "UTC"}
	if st != "" {
		ps = append(ps, "step", st)
	}
	return ps
}

// TestFanoutEqualsSingleStore: the graph, tags and traces APIs over 3
// store nodes answer byte for byte what one store holding all the data
// answers; with one node down its replicas answer the same.
func TestFanoutEqualsSingleStore(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	single := graphServer(t, c.single)
	fan := c.querier(t)
	cluster := graphServer(t, fan)
	compare := func(t *testing.T) { compareWithSingle(t, c, fan, single, cluster) }
	t.Run("all nodes", compare)
	c.stop(1)
	t.Run("node 1 down", compare)
}

// TestReplayingNodeTurnedAway: a store node that restarted and is
// replaying the log (here: empty stores) but is still named first owner
// of its partitions, as a query node going by its heartbeat from before
// the restart would, refuses to answer for them, and the replicas answer
// in full: without the refusal, the answers would silently lack the
// partitions it has not replayed yet.
func TestReplayingNodeTurnedAway(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	c.replaying(t, 1)
	single := graphServer(t, c.single)
	fan := c.querier(t)
	compareWithSingle(t, c, fan, single, graphServer(t, fan))
}

// compareWithSingle checks that the fan-out over c answers the graph and
// tags APIs, traces by id and searches, services and operations exactly as
// the single store does, and never partially.
func compareWithSingle(t *testing.T, c *testCluster, fan *fanout.Querier, single, cluster *httptest.Server) {
	t.Helper()
	for _, q := range graphQueries {
		for _, st := range []string{"", "5m"} {
			_, _, want := get(t, single, "/api/v1/graph", graphParams(q, st)...)
			code, h, got := get(t, cluster, "/api/v1/graph", graphParams(q, st)...)
			if code != 200 || got != want || h.Get("X-Sextant-Partial") != "" {
				t.Errorf("graph %s step %q: %d partial=%q\n got %.300s\nwant %.300s", q, st, code, h.Get("X-Sextant-Partial"), got, want)
			}
			if !strings.Contains(want, `"values":[[`) {
				t.Fatalf("graph %s: no values in %.200s", q, want)
			}
		}
	}
	for _, tc := range [][]string{
		{"/api/v1/tags"},
		{"/api/v1/tags/app", "q", "name,req,:eq"},
		{"/api/v1/tags/node", "q", "name,req,:eq", "limit", "5"},
		{"/api/v1/tags", "verbose", "1"},
	} {
		_, _, want := get(t, single, tc[0], tc[1:]...)
		code, _, got := get(t, cluster, tc[0], tc[1:]...)
		if code != 200 || got != want {
			t.Errorf("%v: %d\n got %s\nwant %s", tc, code, got, want)
		}
	}
	ctx := context.Background()
	for _, id := range c.traces {
		want, err := c.spans.GetTrace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fan.GetTrace(ctx, id)
		if err != nil {
			t.Fatalf("GetTrace(%s): %v", id, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetTrace(%s) mismatch (-single +cluster):\n%s", id, diff)
		}
	}
	if _, err := fan.GetTrace(ctx, tracing.TraceID{1, 2, 3}); !errors.Is(err, tracing.ErrNotFound) {
		t.Errorf("GetTrace(unknown) = %v, want ErrNotFound", err)
	}
	services, err := c.spans.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotServices, err := fan.Services(ctx)
	if err != nil || !cmp.Equal(services, gotServices) {
		t.Errorf("Services() = %v, %v; want %v", gotServices, err, services)
	}
	wantOps, _ := c.spans.Operations(ctx, services[0], tracing.SpanKindUnspecified)
	gotOps, err := fan.Operations(ctx, services[0], tracing.SpanKindUnspecified)
	if err != nil || !cmp.Equal(wantOps, gotOps) {
		t.Errorf("Operations(%s) = %v, %v; want %v", services[0], gotOps, err, wantOps)
	}
	now := time.Now().UnixNano()
	for _, svc := range services[:4] {
		tq := tracing.Query{Service: svc, Start: now - int64(2*time.Hour), End: now + int64(time.Minute), Limit: 7}
		want, err := c.spans.FindTraces(ctx, tq)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fan.FindTraces(ctx, tq)
		if err != nil {
			t.Fatalf("FindTraces(%s): %v", svc, err)
		}
		if diff := cmp.Diff(traceIDs(want), traceIDs(got)); diff != "" || len(want) == 0 {
			t.Errorf("FindTraces(%s) ids mismatch (-single +cluster):\n%s", svc, diff)
		}
	}
}

func traceIDs(trs []tracing.Trace) []string {
	var out []string
	for _, tr := range trs {
		out = append(out, tr.ID.String())
	}
	return out
}

// TestBothOwnersDown: with both owners of some partitions down the answer
// holds the other partitions and says it is partial; it never passes for
// the whole.
func TestBothOwnersDown(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	fan := c.querier(t)
	cluster := graphServer(t, fan)
	single := graphServer(t, c.single)
	c.stop(0)
	c.stop(1) // partitions 0 and 3 (owners 0, 1) have no owner left
	q := "name,req,:eq,:sum,(,app,),:by"
	code, h, got := get(t, cluster, "/api/v1/graph", graphParams(q, "")...)
	_, _, whole := get(t, single, "/api/v1/graph", graphParams(q, "")...)
	if code != 200 || h.Get("X-Sextant-Partial") != "true" || !strings.HasPrefix(got, `{"partial":true,`) {
		t.Errorf("graph with partitions missing: %d X-Sextant-Partial=%q\n%.200s", code, h.Get("X-Sextant-Partial"), got)
	}
	if got == whole || strings.TrimPrefix(got, `{"partial":true,`) == strings.TrimPrefix(whole, "{") {
		t.Errorf("partial graph equals the whole one")
	}
	var doc struct {
		Partial bool `json:"partial"`
	}
	if err := json.Unmarshal([]byte(got), &doc); err != nil || !doc.Partial {
		t.Errorf("graph JSON: partial=%v, err %v", doc.Partial, err)
	}
	// The Prometheus envelope carries a warning.
	code, h, got = get(t, cluster, "/api/v1/query", "query", "sum(req)", "time", fmt.Sprint(dataNow/1000))
	if code != 200 || h.Get("X-Sextant-Partial") != "true" || !strings.Contains(got, `"warnings":["partial`) {
		t.Errorf("prometheus query with partitions missing: %d X-Sextant-Partial=%q %s", code, h.Get("X-Sextant-Partial"), got)
	}
	code, h, got = get(t, cluster, "/api/v1/labels")
	if code != 200 || h.Get("X-Sextant-Partial") != "true" || !strings.Contains(got, `"warnings":["partial`) {
		t.Errorf("prometheus labels with partitions missing: %d X-Sextant-Partial=%q %s", code, h.Get("X-Sextant-Partial"), got)
	}
	code, h, _ = get(t, cluster, "/api/v1/tags")
	if code != 200 || h.Get("X-Sextant-Partial") != "true" {
		t.Errorf("tags with partitions missing: %d X-Sextant-Partial=%q", code, h.Get("X-Sextant-Partial"))
	}
	// A trace of a missing partition is unavailable, not "not found".
	ctx, p := tracing.WithPartial(context.Background())
	var lost, kept int
	for _, id := range c.traces {
		_, err := fan.GetTrace(ctx, id)
		switch part := tracing.TracePartition(id, numPartitions); {
		case part%3 == 0 && !errors.Is(err, fanout.ErrUnavailable):
			t.Errorf("GetTrace(%s) of a lost partition: %v, want ErrUnavailable", id, err)
		case part%3 == 0:
			lost++
		case err != nil:
			t.Errorf("GetTrace(%s): %v", id, err)
		default:
			kept++
		}
	}
	if lost == 0 || kept == 0 {
		t.Errorf("traces: %d in lost partitions, %d kept; the test needs both", lost, kept)
	}
	services, _ := c.spans.Services(ctx)
	if _, err := fan.FindTraces(ctx, tracing.Query{Service: services[0], Start: 0, End: time.Now().Add(time.Hour).UnixNano(), Limit: 5}); err != nil || !p.Is() {
		t.Errorf("FindTraces with partitions missing: err %v, partial %v", err, p.Is())
	}
	// The Jaeger envelope carries an error entry beside the data.
	ta, err := traceapi.New(traceapi.Options{Reader: fan, Catalog: fan, Dependencies: fan})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ta.Register(mux)
	jaeger := httptest.NewServer(mux)
	defer jaeger.Close()
	code, h, got = get(t, jaeger, "/api/traces", "service", services[0], "lookback", "2h")
	if code != 200 || h.Get("X-Sextant-Partial") != "true" || !strings.Contains(got, `"errors":[{"code":206,"msg":"partial answer`) {
		t.Errorf("jaeger search with partitions missing: %d X-Sextant-Partial=%q %.300s", code, h.Get("X-Sextant-Partial"), got)
	}
	code, h, _ = get(t, jaeger, "/api/v3/services")
	if code != 200 || h.Get("X-Sextant-Partial") != "true" {
		t.Errorf("jaeger v3 services with partitions missing: %d X-Sextant-Partial=%q", code, h.Get("X-Sextant-Partial"))
	}
	// Nothing answers: an error, not an empty answer.
	c.stop(2)
	if _, err := fan.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.True(), Start: dataNow - 2*step, End: dataNow, Step: step}); err == nil {
		t.Error("Fetch with every node down: no error")
	}
	code, _, _ = get(t, cluster, "/api/v1/graph", graphParams(q, "")...)
	if code != http.StatusServiceUnavailable {
		t.Errorf("graph with every node down: %d, want 503", code)
	}
	if code, _, _ = get(t, jaeger, "/api/services"); code != http.StatusServiceUnavailable {
		t.Errorf("jaeger services with every node down: %d, want 503", code)
	}
}

// onlyOwner serves every partition from one node.
type onlyOwner struct{ n fanout.Node }

func (o onlyOwner) Partitions() int          { return numPartitions }
func (o onlyOwner) Owners(int) []fanout.Node { return []fanout.Node{o.n} }

// TestDependencies: store nodes that count calls by partition answer for
// the partitions asked of them only, so their counts add up to exactly the
// single store's, unmarked, whichever nodes answer; store nodes that count
// without partitions give lower bounds, marked partial.
func TestDependencies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start, end := time.Now().Add(-2*time.Hour).UnixNano(), time.Now().Add(time.Minute).UnixNano()
	deps := func(t *testing.T, q *fanout.Querier) ([]tracing.Dependency, bool) {
		t.Helper()
		pctx, p := tracing.WithPartial(ctx)
		got, err := q.Dependencies(pctx, start, end)
		if err != nil {
			t.Fatal(err)
		}
		return got, p.Is()
	}
	t.Run("by partition", func(t *testing.T) {
		t.Parallel()
		c := newTestClusterOpts(t, clusterOpts{spanPartitions: true})
		want, err := c.spans.Dependencies(ctx, start, end)
		if err != nil || len(want) == 0 {
			t.Fatalf("single store: %d dependencies, %v", len(want), err)
		}
		one, err := fanout.New(fanout.Options{Owners: onlyOwner{c.owners().nodes[0]}})
		if err != nil {
			t.Fatal(err)
		}
		defer one.Close()
		for _, tc := range []struct {
			name string
			q    *fanout.Querier
		}{{"three nodes", c.querier(t)}, {"one node for all", one}} {
			got, partial := deps(t, tc.q)
			if diff := cmp.Diff(want, got); diff != "" || partial {
				t.Errorf("%s: partial %v (-single +fanout):\n%s", tc.name, partial, diff)
			}
		}
		// With a node down its replicas count its partitions: the same.
		c.stop(1)
		if got, partial := deps(t, c.querier(t)); !cmp.Equal(want, got) || partial {
			t.Errorf("node 1 down: partial %v, %v, want %v", partial, got, want)
		}
	})
	t.Run("without partitions", func(t *testing.T) {
		t.Parallel()
		c := newTestCluster(t)
		want, _ := c.spans.Dependencies(ctx, start, end)
		got, partial := deps(t, c.querier(t))
		if !partial || len(got) == 0 {
			t.Fatalf("three nodes counting without partitions: %d edges, partial %v", len(got), partial)
		}
		counts := map[string]int64{}
		for _, d := range want {
			counts[d.Parent+">"+d.Child] = d.CallCount
		}
		for _, d := range got {
			if c, ok := counts[d.Parent+">"+d.Child]; !ok || d.CallCount > c {
				t.Errorf("edge %s>%s: %d calls, the whole has %d", d.Parent, d.Child, d.CallCount, c)
			}
		}
	})
}

// TestFailoverWithinDeadline: a store node that accepts the request but
// never answers costs its share of the deadline, then the replicas answer
// in time and the answer is whole.
func TestFailoverWithinDeadline(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t)
	// The hanging handler does not read the body, so net/http does not
	// notice the query node hanging up (it watches the connection only
	// once the body is read, as the real handler does): stop ends it.
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	o := c.owners()
	o.nodes[1].Addr = hang.Listener.Addr().String()
	fan, err := fanout.New(fanout.Options{Owners: o})
	if err != nil {
		t.Fatal(err)
	}
	defer fan.Close()
	req := tsdb.FetchRequest{Query: tags.Eq("name", "req"), Start: dataNow - 3600_000, End: dataNow, Step: step,
		Aggregation: tsdb.AggSum, GroupBy: []string{"app"}}
	want, err := c.single.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	ctx, p := tsdb.WithPartial(ctx)
	got, err := fan.Fetch(ctx, req)
	if err != nil || p.Is() {
		t.Fatalf("Fetch with a hanging node: %v, partial %v", err, p.Is())
	}
	if diff := cmp.Diff(want.Series, got.Series, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("answer with a hanging node (-single +fanout):\n%s", diff)
	}
}
