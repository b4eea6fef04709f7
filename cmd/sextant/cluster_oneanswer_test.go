package main

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// The query limits of TestClusterAnswersAsOneNode, on every node: 40
// series of oa.many are over the series limit (each store node's share is
// under it), 20 series of oa.few over 200 s at 1 s are 4 000 datapoints,
// over the datapoints limit, and over 120 s 2 400, under it.
var oneAnswerLimits = []string{"--max-series-per-query", "35", "--max-datapoints-per-query", "3000"}

// TestClusterAnswersAsOneNode runs, as separate processes of the real
// binary on a kfake cluster, an ingest node, three store nodes and a query
// node, and beside them a single node fed the same data, all with the
// same query limits, and checks three places where a query node used to
// answer otherwise than the single node:
//
//   - limits: a query the single node refuses for too many series or
//     datapoints is refused by the query node with the same status and
//     message, though every store node's share is within the limits; a
//     query within them is answered the same;
//   - dependencies: the query node's /api/dependencies adds up the store
//     nodes' counts to exactly the single node's, unmarked;
//   - roles: the ingest node and a store node refuse the read APIs with a
//     421 naming their roles, and serve /healthz, /metrics and
//     /api/v1/cluster.
func TestClusterAnswersAsOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary as six processes")
	}
	t.Parallel()
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	bin := buildBinary(t)
	brokers := strings.Join(kc.ListenAddrs(), ",")
	start := func(role, id string) *binary {
		flags := append([]string{"--data-dir", t.TempDir(), "--memory-retention", "1h", "--kafka-brokers", brokers,
			"--role", role, "--node-id", id, "--kafka-topic-prefix", "oneanswer",
			"--kafka-partitions", fmt.Sprint(procsPartitions), "--replication-factor", "2"}, oneAnswerLimits...)
		b := runBinary(t, bin, nil, flags...)
		t.Cleanup(func() { stopBinary(t, b) })
		return b
	}
	ingest := start("ingest", "ingest-1")
	store := start("store", "store-1")
	start("store", "store-2")
	start("store", "store-3")
	query := start("query", "query-1")
	single := runBinary(t, bin, nil, append([]string{"--data-dir", t.TempDir(), "--memory-retention", "1h"}, oneAnswerLimits...)...)
	t.Cleanup(func() { stopBinary(t, single) })
	deadline := time.Now().Add(60 * time.Second)
	for why := "not asked yet"; why != ""; why = settled(clusterStatus(t, query.addr), 3, nil) {
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not settle within 60 s: %s", why)
		}
		time.Sleep(50 * time.Millisecond) // polling the query node's view
	}

	// The same data to the ingest node and the single node.
	base := time.Now().Truncate(time.Second).Add(-10 * time.Second).UnixMilli()
	var metrics bytes.Buffer
	metrics.WriteString(`{"tags":{"atlas.dstype":"gauge"},"metrics":[`)
	for i := range 60 {
		name := "oa.many"
		if i >= 40 {
			name = "oa.few"
		}
		if i > 0 {
			metrics.WriteByte(',')
		}
		fmt.Fprintf(&metrics, `{"tags":{"name":%q,"id":"i-%02d"},"timestamp":%d,"value":%d}`, name, i, base, i)
	}
	metrics.WriteString("]}")
	traces := dependencyTraces(time.UnixMilli(base), 24)
	for _, b := range []*binary{ingest, single} {
		if code, resp := post(t, "http://"+b.addr+"/api/v1/publish", metrics.Bytes(), "Content-Type", "application/json"); code != 200 {
			t.Fatalf("publish to %s: %d %s", b.addr, code, resp)
		}
		for _, tr := range traces {
			if code, resp := post(t, "http://"+b.addr+"/v1/traces", tr, "Content-Type", "application/x-protobuf"); code != 200 {
				t.Fatalf("OTLP traces to %s: %d %s", b.addr, code, resp)
			}
		}
	}
	graph := func(q string, seconds int64) string {
		return "/api/v1/graph?" + url.Values{"q": {q}, "s": {fmt.Sprint(base - seconds*1000 + 1000)}, "e": {fmt.Sprint(base + 1000)},
			"step": {"1s"}, "format": {"json"}}.Encode()
	}
	// Until the store nodes applied the log: the query node answers the
	// series within the limits as the single node does, and lists every
	// series of both names (the limits count them).
	within := graph("name,oa.few,:eq,(,id,),:by", 120)
	for _, path := range []string{within, "/api/v1/tags/id?q=name,oa.many,:eq", "/api/v1/tags/id?q=name,oa.few,:eq"} {
		want := answer(t, single.addr, path)
		if want.code != 200 || !hasData(path, want.body) {
			t.Fatalf("the single node answers %s: %d %.300s", path, want.code, want.body)
		}
		for got := answer(t, query.addr, path); !same(path, got, want); got = answer(t, query.addr, path) {
			if time.Now().After(deadline.Add(30 * time.Second)) {
				t.Fatalf("GET %s\nquery node:  %d %.500s\nsingle node: %d %.500s", path, got.code, got.body, want.code, want.body)
			}
			time.Sleep(50 * time.Millisecond) // polling while the store nodes catch up
		}
	}

	t.Run("limits", func(t *testing.T) {
		prom := func(q string, seconds int64) string {
			return "/api/v1/query_range?" + url.Values{"query": {q}, "start": {fmt.Sprint(base/1000 - seconds + 1)},
				"end": {fmt.Sprint(base/1000 + 1)}, "step": {"1"}}.Encode()
		}
		for _, tc := range []struct {
			path, limit string
		}{
			{graph("name,oa.many,:eq,:sum", 60), "max-series-per-query"},
			{graph("name,oa.many,:eq,(,id,),:by", 60), "max-series-per-query"},
			{graph("name,oa.few,:eq,:max", 200), "max-datapoints-per-query"},
			{prom(`sum({__name__="oa.many"})`, 60), "max-series-per-query"},
			{prom(`max({__name__="oa.few"})`, 200), "max-datapoints-per-query"},
		} {
			want := answer(t, single.addr, tc.path)
			if want.code != 422 || !strings.Contains(want.body, tc.limit) {
				t.Fatalf("the single node answers %s: %d %s; want a 422 naming %s", tc.path, want.code, want.body, tc.limit)
			}
			if got := answer(t, query.addr, tc.path); got.code != want.code || got.body != want.body {
				t.Errorf("GET %s\nquery node:  %d %s\nsingle node: %d %s", tc.path, got.code, got.body, want.code, want.body)
			}
		}
		for _, path := range []string{within, graph("name,oa.few,:eq,:sum", 120), prom(`sum({__name__="oa.few"})`, 120)} {
			want, got := answer(t, single.addr, path), answer(t, query.addr, path)
			if want.code != 200 || !same(path, got, want) || got.partial != "" {
				t.Errorf("GET %s\nquery node:  %d partial=%q %.500s\nsingle node: %d %.500s", path, got.code, got.partial, got.body, want.code, want.body)
			}
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		path := "/api/dependencies?" + url.Values{"endTs": {fmt.Sprint(time.Now().Add(time.Minute).UnixMilli())}, "lookback": {"3600000"}}.Encode()
		want := answer(t, single.addr, path)
		if want.code != 200 || !strings.Contains(want.body, `"parent":"oa-front","child":"oa-back","callCount":24`) {
			t.Fatalf("the single node's dependencies: %d %s", want.code, want.body)
		}
		got := answer(t, query.addr, path)
		for end := time.Now().Add(20 * time.Second); (got.code != want.code || got.body != want.body) && time.Now().Before(end); got = answer(t, query.addr, path) {
			time.Sleep(50 * time.Millisecond) // polling while the store nodes apply the spans
		}
		if got.code != want.code || got.body != want.body || got.partial != "" {
			t.Errorf("dependencies\nquery node:  %d partial=%q %s\nsingle node: %d %s", got.code, got.partial, got.body, want.code, want.body)
		}
	})

	t.Run("roles", func(t *testing.T) {
		for _, n := range []struct {
			b     *binary
			roles string
		}{{ingest, "ingest"}, {store, "store"}} {
			for _, path := range []string{within, "/api/v1/query?query=" + url.QueryEscape(`sum({__name__="oa.few"})`),
				"/api/traces?service=oa-front", "/api/dependencies", "/ui/"} {
				got := answer(t, n.b.addr, path)
				// The node names the query node once its membership saw
				// the query node's heartbeat (the query node's own view
				// settled first).
				for end := time.Now().Add(10 * time.Second); got.code == 421 && !strings.Contains(got.body, query.addr) && time.Now().Before(end); got = answer(t, n.b.addr, path) {
					time.Sleep(50 * time.Millisecond) // polling the node's membership view
				}
				if got.code != 421 || !strings.Contains(got.body, "roles "+n.roles+", not query") || !strings.Contains(got.body, "ask a query node ("+query.addr+")") {
					t.Errorf("GET %s on the %s node: %d %.300s; want 421 naming its roles and the query node %s", path, n.roles, got.code, got.body, query.addr)
				}
			}
			for _, path := range []string{"/healthz", "/metrics", "/api/v1/cluster"} {
				if got := answer(t, n.b.addr, path); got.code != 200 {
					t.Errorf("GET %s on the %s node: %d %.300s", path, n.roles, got.code, got.body)
				}
			}
		}
		// The query node answers reads, as the single node.
		search := "/api/traces?service=oa-front&limit=100"
		want, got := answer(t, single.addr, search), answer(t, query.addr, search)
		if want.code != 200 || got.code != 200 || spanIDs(got.body) != spanIDs(want.body) || spanIDs(want.body) == 0 {
			t.Errorf("trace search: query node %d with %d span ids, single node %d with %d", got.code, spanIDs(got.body), want.code, spanIDs(want.body))
		}
	})
}

// dependencyTraces are n OTLP trace requests, each a trace of three
// spans calling from oa-front to oa-back to oa-db, its services' spans
// exported separately (as services do) and the child before its parent.
func dependencyTraces(at time.Time, n int) [][]byte {
	var out [][]byte
	for k := range n {
		tid := pcommon.TraceID{0x0a, 0x11, 14: byte(k >> 8), 15: byte(k)}
		for i, svc := range []string{"oa-db", "oa-back", "oa-front"} {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{byte(k), 7: byte(3 - i)})
			if i < 2 {
				s.SetParentSpanID(pcommon.SpanID{byte(k), 7: byte(3 - i - 1)})
			}
			s.SetName(svc + ".op")
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))
			b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
			out = append(out, b)
		}
	}
	return out
}
