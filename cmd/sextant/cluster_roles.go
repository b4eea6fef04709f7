package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/ingest/cluster"
)

// A cluster node answers only what its roles serve (api.md: "Every node
// serves the same HTTP surface for its roles"). A node without the query
// role holds no data of its own to read (an ingest node) or only some
// partitions (a store node), so it does not answer the read APIs —
// graph, tags, expressions, exemplars, Prometheus, Jaeger, the web UI,
// live streams, dashboards, alerting, canary — from its own store, which
// would be a quiet wrong answer: it refuses them with 421 Misdirected
// Request, naming its roles and the query nodes to ask (docs/cluster.md,
// "Roles"). What it serves on every role: the ingest endpoints (every
// cluster node writes what they receive to the log), /healthz, /metrics,
// the profiler and GET /api/v1/cluster; a store node also serves the
// internal reads of query nodes. A single node, and any node with the
// query role, serves everything.

// servedWithoutQuery are the route patterns a cluster node serves
// whatever its roles.
var servedWithoutQuery = map[string]bool{
	"GET /healthz": true, "GET /metrics": true, "GET /api/v1/cluster": true,
	"GET /debug/pprof/": true, "GET /debug/pprof/profile": true, "GET /debug/pprof/trace": true, "GET /debug/pprof/symbol": true,
	// Ingest: written to the log on any cluster node (docs/cluster.md).
	"POST /api/v1/publish": true, "POST /api/v1/publish-fast": true, "POST /api/v1/write": true,
	"POST /v1/metrics": true, "POST /v1/traces": true, "POST /api/v2/spans": true, "POST /api/v1/spectatord": true,
}

// internalPrefix starts the patterns of the store nodes' internal reads.
const internalPrefix = "POST /api/v1/internal/"

// gateRoles returns mux as the node serves it: on a cluster node without
// the query role, the read APIs answer 421; otherwise mux itself.
func (n *node) gateRoles(mux *http.ServeMux) http.Handler {
	c := n.cfg.Cluster
	if !c.enabled() || c.Roles.Query {
		return mux
	}
	return roleGate(mux, c.Roles, c.NodeID, n.queryNodes)
}

// roleGate wraps mux so that the routes a node with roles r but not the
// query role does not serve answer 421; queryNodes lists where to ask
// instead (nil: unknown).
func roleGate(mux *http.ServeMux, r roles, self string, queryNodes func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The pattern the mux would serve the request with: "" for a
		// 404, 405 or redirect, which the mux answers as usual.
		_, pattern := mux.Handler(req)
		if pattern == "" || servedWithoutQuery[pattern] || (r.Store && strings.HasPrefix(pattern, internalPrefix)) {
			mux.ServeHTTP(w, req)
			return
		}
		var ask []string
		if queryNodes != nil {
			ask = queryNodes()
		}
		misdirected(w, req, pattern, roleNames(r), self, ask)
	})
}

// queryNodes returns the addresses of the live query nodes the membership
// knows, sorted (at most 5).
func (n *node) queryNodes() []string {
	if n.members == nil {
		return nil
	}
	var out []string
	for _, nd := range n.members.Status().Nodes {
		if nd.Live && slices.Contains(nd.Roles, cluster.RoleQuery) && nd.Addr != "" {
			out = append(out, nd.Addr)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), 5)]
}

// misdirected answers a read API on a node without the query role: 421,
// in the error shape of the API's family (Prometheus's envelope, Jaeger's,
// Sextant's JSON error, or text for the UI's pages).
func misdirected(w http.ResponseWriter, req *http.Request, pattern string, roles []string, self string, ask []string) {
	where := "a query node (--role query or all)"
	if len(ask) > 0 {
		where = "a query node (" + strings.Join(ask, ", ") + ")"
	}
	msg := fmt.Sprintf("node %s has the cluster roles %s, not query: it does not serve %s %s; ask %s",
		self, strings.Join(roles, ","), req.Method, req.URL.Path, where)
	code := http.StatusMisdirectedRequest
	path := strings.TrimPrefix(pattern[strings.IndexByte(pattern, ' ')+1:], "/")
	var body any
	switch {
	case promPath(path):
		body = struct {
			Status    string `json:"status"`
			ErrorType string `json:"errorType"`
			Error     string `json:"error"`
		}{"error", "unavailable", msg}
	case strings.HasPrefix(path, "api/v3/"):
		var e struct {
			Error struct {
				HTTPCode int    `json:"httpCode"`
				Message  string `json:"message"`
			} `json:"error"`
		}
		e.Error.HTTPCode, e.Error.Message = code, msg
		body = e
	case strings.HasPrefix(path, "api/") && !strings.HasPrefix(path, "api/v1/"):
		// Jaeger's query API (/api/services, /api/traces, ...).
		type jErr struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		}
		body = struct {
			Data   any    `json:"data"`
			Total  int    `json:"total"`
			Limit  int    `json:"limit"`
			Offset int    `json:"offset"`
			Errors []jErr `json:"errors"`
		}{Errors: []jErr{{code, msg}}}
	case strings.HasPrefix(path, "api/"):
		body = struct {
			Type    string   `json:"type"`
			Message string   `json:"message"`
			Roles   []string `json:"roles"`
			Ask     []string `json:"queryNodes"`
		}{"error", msg, roles, ask}
	default:
		// The web UI's pages.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprintln(w, msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// promPath reports whether a route (without its leading slash) is one of
// the Prometheus HTTP API's, which answer in Prometheus's envelope.
func promPath(p string) bool {
	switch p {
	case "api/v1/query", "api/v1/query_range", "api/v1/query_exemplars", "api/v1/labels", "api/v1/series",
		"api/v1/label/{name}/values", "api/v1/metadata", "api/v1/status/buildinfo", "api/v1/rules", "api/v1/alerts":
		return true
	}
	return false
}
