package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	queryapi "github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/fanout"
	traceapi "github.com/sextant-dev/sextant/tracing/api"
)

// TestRoleGate runs a node in-process and puts its routes behind the gate
// of a node without the query role: every read API, whatever its family,
// answers 421 in its own error shape, naming the node's roles and the
// query nodes to ask; ingest, the store's internal reads (on a store
// node), /healthz and /metrics are served as before.
func TestRoleGate(t *testing.T) {
	t.Parallel()
	var mux *http.ServeMux
	startServeNode(t, testConfig(t), func(n *node) {
		n.cluster.store = true // the internal endpoints too
		mux = n.mux
	})
	ask := func() []string { return []string{"10.0.0.20:7101"} }
	store := httptest.NewServer(roleGate(mux, roles{Store: true}, "store-1", ask))
	defer store.Close()
	ingest := httptest.NewServer(roleGate(mux, roles{Ingest: true}, "ingest-1", nil))
	defer ingest.Close()

	do := func(srv *httptest.Server, method, path, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	now := time.Now().UnixMilli()
	graph := "/api/v1/graph?" + url.Values{"q": {"name,cpu,:eq"}}.Encode()
	for _, tc := range []struct {
		method, path string
		shape        string // the JSON field that holds the message, "" for text
	}{
		{"GET", graph, "message"},
		{"GET", "/api/v1/tags", "message"},
		{"GET", "/api/v1/tags/name", "message"},
		{"GET", "/api/v1/expr?q=name,cpu,:eq", "message"},
		{"GET", "/api/v1/exemplars?q=name,cpu,:eq", "message"},
		{"GET", "/api/v1/stream", "message"},
		{"GET", "/api/v1/dashboards", "message"},
		{"GET", "/api/v1/alerting/rules", "message"},
		{"GET", "/api/v1/query?query=up", "error"},
		{"POST", "/api/v1/query_range", "error"},
		{"GET", "/api/v1/labels", "error"},
		{"GET", "/api/v1/series?match[]=up", "error"},
		{"GET", "/api/v1/rules", "error"},
		{"GET", "/api/services", "errors"},
		{"GET", fmt.Sprintf("/api/traces?service=api&end=%d", now*1000), "errors"},
		{"GET", "/api/traces/0af7651916cd43dd8448eb211c80319c", "errors"},
		{"GET", "/api/dependencies", "errors"},
		{"GET", "/api/v3/services", "error"},
		{"GET", "/ui/", ""},
		{"GET", "/", ""},
	} {
		for _, srv := range []*httptest.Server{store, ingest} {
			code, h, body := do(srv, tc.method, tc.path, "")
			roles, ask := "store", "ask a query node (10.0.0.20:7101)"
			if srv == ingest {
				roles, ask = "ingest", "ask a query node (--role query or all)"
			}
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "roles "+roles+", not query") || !strings.Contains(body, ask) {
				t.Errorf("%s %s on a %s node: %d %.300s", tc.method, tc.path, roles, code, body)
				continue
			}
			if tc.shape == "" {
				if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
					t.Errorf("%s %s: Content-Type %q, want text", tc.method, tc.path, h.Get("Content-Type"))
				}
				continue
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(body), &doc); err != nil || doc[tc.shape] == nil {
				t.Errorf("%s %s: no %q in %s (%v)", tc.method, tc.path, tc.shape, body, err)
			}
		}
	}
	// Served whatever the roles.
	publish := fmt.Sprintf(`{"metrics":[{"tags":{"name":"gate"},"timestamp":%d,"value":1}]}`, now)
	for _, srv := range []*httptest.Server{store, ingest} {
		for _, tc := range []struct{ method, path, body string }{
			{"GET", "/healthz", ""}, {"GET", "/metrics", ""}, {"POST", "/api/v1/publish", publish},
		} {
			if code, _, body := do(srv, tc.method, tc.path, tc.body); code != 200 {
				t.Errorf("%s %s: %d %.200s", tc.method, tc.path, code, body)
			}
		}
		// A route no role has is the mux's 404, not a 421.
		if code, _, _ := do(srv, "GET", "/api/v1/nonesuch", ""); code != 404 {
			t.Errorf("an unknown route: %d, want 404", code)
		}
	}
	// The internal reads: a store node's, not an ingest node's.
	if code, _, body := do(store, "POST", "/api/v1/internal/catalog", "x"); code != http.StatusBadRequest {
		t.Errorf("internal read on the store node: %d %s, want its 400 for a bad body", code, body)
	}
	if code, _, _ := do(ingest, "POST", "/api/v1/internal/catalog", "x"); code != http.StatusMisdirectedRequest {
		t.Errorf("internal read on an ingest node: %d, want 421", code)
	}
}

// oneNode is an ownership of n partitions that gives those in parts to
// one store node, and the others to none.
type oneNode struct {
	node  fanout.Node
	n     int
	parts map[int]bool
}

func (o oneNode) Partitions() int { return o.n }

func (o oneNode) Owners(p int) []fanout.Node {
	if !o.parts[p] {
		return nil
	}
	return []fanout.Node{o.node}
}

// storeView serves, in-process, the graph and Jaeger APIs over the data of
// the store node at addr alone, read through its internal endpoints as a
// query node reads it: the partitions in parts (of n) are asked of it, the
// others are missing (the answers partial). It returns the view's address.
func storeView(t *testing.T, addr string, n int, parts map[int]bool) string {
	t.Helper()
	fan, err := fanout.New(fanout.Options{Owners: oneNode{fanout.Node{ID: "view", Addr: addr}, n, parts}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fan.Close() })
	qa, err := queryapi.New(queryapi.Options{Querier: fan, StorageStep: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ta, err := traceapi.New(traceapi.Options{Reader: fan, Catalog: fan, Dependencies: fan})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	qa.Register(mux)
	ta.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
