package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tsdb"
)

// graphValues returns the values of the only line of a graph API JSON
// answer (NaN as "no data" dropped), and its partial flag header.
var graphValuesRE = regexp.MustCompile(`"values":(\[.*?\]\])`)

func graphValues(t *testing.T, body string) []float64 {
	t.Helper()
	m := graphValuesRE.FindStringSubmatch(body)
	if m == nil {
		return nil
	}
	var rows [][]*float64
	if err := json.Unmarshal([]byte(strings.ReplaceAll(m[1], `"NaN"`, "null")), &rows); err != nil {
		t.Fatalf("graph values %s: %v", m[1], err)
	}
	var out []float64
	for _, r := range rows {
		for _, v := range r {
			if v != nil {
				out = append(out, *v)
			}
		}
	}
	return out
}

// TestClusterStrongRead runs a store node and an ingest+query node
// in-process on a three-broker kfake cluster: a datapoint published to the
// ingest node (acknowledged once Kafka has it) is in the answer of a graph
// query sent at once with X-Sextant-Read-Consistency: strong, every time,
// and so with ?consistency=strong and through the Prometheus API; a bad
// value is a 400 naming the field.
func TestClusterStrongRead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for a few seconds")
	}
	t.Parallel()
	kc := newKfake(t)
	brokers := kc.ListenAddrs()
	s := startMemberNode(t, brokers, t.TempDir(), "--role", "store", "--node-id", "store-a")
	defer s.stop(t)
	q := startMemberNode(t, brokers, t.TempDir(), "--role", "ingest,query", "--node-id", "iq")
	defer q.stop(t)
	waitFor(t, 30*time.Second, "every partition served", func() bool {
		st := clusterStatus(t, q.addr)
		code, _ := get(t, "http://"+q.addr+"/healthz")
		return code == 200 && len(st.Nodes) == 2 && len(st.Unserved) == 0
	})

	query := func(i int, strong func(*http.Request)) (int, http.Header, string) {
		t.Helper()
		now := time.Now().UnixMilli()
		v := url.Values{"q": {fmt.Sprintf("name,sr,:eq,iter,%d,:eq,:and", i)}, "s": {fmt.Sprint(now - 60_000)},
			"e": {fmt.Sprint(now + 2000)}, "step": {"1s"}, "format": {"json"}}
		req, err := http.NewRequest(http.MethodGet, "http://"+q.addr+"/api/v1/graph?"+v.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		strong(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	byHeader := func(r *http.Request) { r.Header.Set("X-Sextant-Read-Consistency", "strong") }
	byParam := func(r *http.Request) {
		r.URL.RawQuery += "&consistency=strong"
	}
	for i := range 40 {
		val := float64(i) + 0.25
		body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":"sr","iter":"%d","atlas.dstype":"gauge"},"timestamp":%d,"value":%g}]}`,
			i, time.Now().UnixMilli(), val)
		if code, resp := post(t, "http://"+q.addr+"/api/v1/publish", body); code != 200 {
			t.Fatalf("publish %d: %d %s", i, code, resp)
		}
		how := byHeader
		if i%2 == 1 {
			how = byParam
		}
		code, h, got := query(i, how)
		if vs := graphValues(t, got); code != 200 || len(vs) != 1 || vs[0] != val || h.Get("X-Sextant-Partial") != "" {
			t.Fatalf("strong read %d right after the publish = %d partial=%q values %v, want [%g]\n%.400s", i, code, h.Get("X-Sextant-Partial"), vs, val, got)
		}
	}
	// Traces: found by the Jaeger API right after the ingest node's 200.
	for n := range 10 {
		body, tid := crashTraceRequest(1000 + n)
		if code, resp := post(t, "http://"+q.addr+"/v1/traces", body, "Content-Type", "application/x-protobuf"); code != 200 {
			t.Fatalf("traces: %d %s", code, resp)
		}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/api/traces/%x", q.addr, tid[:]), nil)
		byHeader(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || spanIDs(string(b)) != 3 {
			t.Fatalf("strong trace read %d right after the write = %d, %d spans: %.300s", n, resp.StatusCode, spanIDs(string(b)), b)
		}
	}
	// The Prometheus API and a series listing read strongly too.
	body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":"sr","iter":"prom","atlas.dstype":"gauge"},"timestamp":%d,"value":7}]}`, time.Now().UnixMilli())
	if code, resp := post(t, "http://"+q.addr+"/api/v1/publish", body); code != 200 {
		t.Fatalf("publish: %d %s", code, resp)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+q.addr+"/api/v1/series?match[]="+url.QueryEscape(`sr{iter="prom"}`), nil)
	byHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"iter":"prom"`) {
		t.Errorf("strong series listing right after the publish = %d %s", resp.StatusCode, b)
	}

	// A bad value is the client's mistake, named.
	code, _, got := query(0, func(r *http.Request) { r.Header.Set("X-Sextant-Read-Consistency", "linear") })
	if code != 400 || !strings.Contains(got, "X-Sextant-Read-Consistency") {
		t.Errorf("bad consistency header = %d %s, want 400 naming the header", code, got)
	}
	code, _, got = query(0, func(r *http.Request) { r.URL.RawQuery += "&consistency=x" })
	if code != 400 || !strings.Contains(got, "consistency") {
		t.Errorf("bad consistency parameter = %d %s, want 400 naming the parameter", code, got)
	}
	_, metrics := get(t, "http://"+q.addr+"/metrics")
	if !strings.Contains(metrics, "sextant_cluster_fanout_strongReads") {
		t.Error("/metrics lacks sextant_cluster_fanout_strongReads")
	}
	// Self-metrics go through the log like any write, tagged with the
	// node id: the query node graphs every node's, its own included, as a
	// single node graphs its own.
	for _, id := range []string{"store-a", "iq"} {
		selfURL := "http://" + q.addr + "/api/v1/graph?format=json&s=e-1m&step=1s&q=" +
			url.QueryEscape("nf.app,sextant,:eq,nf.node,"+id+",:eq,:and,name,sextant.cluster.produced,:eq,:and,:sum,(,name,),:by")
		waitFor(t, 20*time.Second, "self-metrics of "+id+" on the query node", func() bool {
			code, body := get(t, selfURL)
			return code == 200 && strings.Contains(body, `"name":"sextant.cluster.`) && len(graphValues(t, body)) > 0
		})
	}
}

// consistencyRecorder is a tsdb.Querier that records the consistency its
// reads were asked for.
type consistencyRecorder struct{ got []fanout.Consistency }

func (r *consistencyRecorder) Fetch(ctx context.Context, _ tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	r.got = append(r.got, fanout.ConsistencyOf(ctx))
	return &tsdb.SeriesSet{}, nil
}

func (r *consistencyRecorder) Tags(ctx context.Context, _ tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	r.got = append(r.got, fanout.ConsistencyOf(ctx))
	return nil, nil
}

// TestRuleQuerierStrong: alert rules on a query node of a cluster on Kafka
// read strongly by default; a single node's rules read its store.
func TestRuleQuerierStrong(t *testing.T) {
	t.Parallel()
	rec := &consistencyRecorder{}
	sq := strongQuerier{rec}
	ctx := context.Background()
	sq.Fetch(ctx, tsdb.FetchRequest{})
	sq.Tags(ctx, tsdb.TagsRequest{})
	sq.Fetch(fanout.WithConsistency(ctx, fanout.Strong), tsdb.FetchRequest{})
	if want := []fanout.Consistency{fanout.Strong, fanout.Strong, fanout.Strong}; !slices.Equal(rec.got, want) {
		t.Errorf("strongQuerier read with %v, want %v", rec.got, want)
	}
	fan, err := fanout.New(fanout.Options{Owners: clusterTestOwners{}})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{}
	n.cluster.fan = fan
	if _, ok := n.ruleQuerier().(strongQuerier); ok {
		t.Error("rules read strongly on a query node that cannot read the log's end offsets")
	}
	n.cluster.strong = true
	if q, ok := n.ruleQuerier().(strongQuerier); !ok || q.q != tsdb.Querier(fan) {
		t.Errorf("rules on a query node read %T, want strong reads of the fan-out", n.ruleQuerier())
	}
}

// TestClusterExemplars: traces sent to an ingest node of a cluster on
// kfake lead, through span metrics' exemplars (which travel through the
// log to the store node holding the trace), to their trace on the query
// node: the graph's exemplars and the Prometheus query_exemplars API
// find them, as on a single node.
func TestClusterExemplars(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for a few seconds")
	}
	t.Parallel()
	kc := newKfake(t)
	brokers := kc.ListenAddrs()
	s := startMemberNode(t, brokers, t.TempDir(), "--role", "store", "--node-id", "store-a")
	defer s.stop(t)
	in := startMemberNode(t, brokers, t.TempDir(), "--role", "ingest", "--node-id", "ingest-a")
	defer in.stop(t)
	q := startMemberNode(t, brokers, t.TempDir(), "--role", "query", "--node-id", "query-a")
	defer q.stop(t)
	waitFor(t, 30*time.Second, "every partition served", func() bool {
		st := clusterStatus(t, q.addr)
		return len(st.Nodes) == 3 && len(st.Unserved) == 0
	})
	var ids []string
	for n := range 6 {
		body, tid := crashTraceRequest(n)
		ids = append(ids, fmt.Sprintf("%x", tid[:]))
		if code, resp := post(t, "http://"+in.addr+"/v1/traces", body, "Content-Type", "application/x-protobuf"); code != 200 {
			t.Fatalf("traces: %d %s", code, resp)
		}
	}
	// Span metrics flush every second: wait for the exemplars rather
	// than for a fixed time. The slowest span per series and step is one
	// of the traces sent.
	graphURL := "http://" + q.addr + "/api/v1/exemplars?s=e-5m&step=1s&q=" +
		url.QueryEscape("name,span.duration,:eq,(,service.name,),:by,(,99,),:percentiles")
	found := func(body string) bool {
		for _, id := range ids {
			if strings.Contains(body, id) {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "the graph's exemplars on the query node", func() bool {
		code, body := get(t, graphURL)
		return code == 200 && found(body) && strings.Contains(body, `"api"`) && strings.Contains(body, `"db"`)
	})
	now := time.Now()
	pq := url.Values{"query": {`span.duration{"service.name"="api"}`},
		"start": {fmt.Sprint(now.Add(-5 * time.Minute).Unix())}, "end": {fmt.Sprint(now.Add(time.Minute).Unix())}}
	code, body := get(t, "http://"+q.addr+"/api/v1/query_exemplars?"+pq.Encode())
	if code != 200 || !found(body) {
		t.Errorf("query_exemplars on the query node = %d %s, want one of the traces", code, body)
	}
	// The ingest node keeps none of its own: they are on the store node.
	if code, body := get(t, "http://"+in.addr+"/api/v1/exemplars?s=e-5m&step=1s&q="+url.QueryEscape("name,span.duration,:eq")); code == 200 && found(body) {
		t.Errorf("the ingest node answers exemplars from a store of its own: %s", body)
	}
}

// TestClusterAlertRule: an alert rule on a query node of a cluster on
// kfake reads strongly by default (the strong-read meter counts its
// reads, no user asked for any), fires on data published to the ingest
// node, and its ALERTS series goes through the log, so the query node
// graphs it as a single node does.
func TestClusterAlertRule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster for a few seconds")
	}
	t.Parallel()
	kc := newKfake(t)
	brokers := kc.ListenAddrs()
	s := startMemberNode(t, brokers, t.TempDir(), "--role", "store", "--node-id", "store-a")
	defer s.stop(t)
	rules := rulesDir(t, `groups:
  - name: cpu
    rules:
      - alert: HotCPU
        expr: name,ar.cpu,:eq,50,:gt
        for: 0s
`)
	q := startMemberNode(t, brokers, t.TempDir(), "--role", "ingest,query", "--node-id", "iq",
		"--rules-dir", rules, "--live-delay", "200ms")
	defer q.stop(t)
	waitFor(t, 30*time.Second, "every partition served", func() bool {
		st := clusterStatus(t, q.addr)
		return len(st.Nodes) == 2 && len(st.Unserved) == 0
	})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			body := fmt.Appendf(nil, `{"metrics":[{"tags":{"name":"ar.cpu","atlas.dstype":"gauge"},"timestamp":%d,"value":90}]}`, time.Now().UnixMilli())
			if resp, err := http.Post("http://"+q.addr+"/api/v1/publish", "application/json", strings.NewReader(string(body))); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, 30*time.Second, "HotCPU firing on the query node", func() bool {
		_, body := get(t, "http://"+q.addr+"/api/v1/alerting/alerts")
		return strings.Contains(body, "HotCPU") && strings.Contains(body, "firing")
	})
	_, metrics := get(t, "http://"+q.addr+"/metrics")
	if !regexp.MustCompile(`sextant_cluster_fanout_strongReads(_total)?(\{[^}]*\})? [1-9]`).MatchString(metrics) {
		t.Errorf("no strong reads counted, yet the rule evaluated: %s", grepLines(metrics, "strongReads"))
	}
	waitFor(t, 20*time.Second, "the ALERTS series on the query node", func() bool {
		code, body := get(t, "http://"+q.addr+"/api/v1/graph?format=json&s=e-1m&step=1s&q="+url.QueryEscape("name,ALERTS,:eq,alertname,HotCPU,:eq,:and"))
		return code == 200 && len(graphValues(t, body)) > 0
	})
}

// grepLines returns the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
