package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/fanout"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// clusterTestOwners is a fixed ownership of 6 partitions over 3 store
// nodes: partition p is served by nodes p%3 and (p+1)%3.
type clusterTestOwners []fanout.Node

func (o clusterTestOwners) Partitions() int { return 6 }

func (o clusterTestOwners) Owners(p int) []fanout.Node { return []fanout.Node{o[p%3], o[(p+1)%3]} }

// TestClusterQueryNode runs 3 store nodes and a query node in-process over
// real HTTP: the query node has no data of its own and answers the graph
// API, a live stream and an alert rule from the store nodes; with one
// store node stopped it answers the same from replicas; with both owners
// of some partitions stopped every API says the answer is partial.
func TestClusterQueryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 10 s")
	}
	t.Parallel()
	var owners clusterTestOwners
	var stops []func()
	for i := range 3 {
		cfg := testConfig(t)
		cfg.AuthToken = "s3cret"
		addr, stop := startServeNode(t, cfg, func(n *node) { n.cluster.store = true })
		owners = append(owners, fanout.Node{ID: fmt.Sprint("store-", i), Addr: addr})
		stops = append(stops, stop)
	}
	hook := newWebhookInbox(t)
	cfg := testConfig(t)
	cfg.AuthToken = "s3cret"
	cfg.LiveDelay = 300 * time.Millisecond
	cfg.Alerting = alertingConfig{RulesDir: rulesDir(t, `groups:
  - name: hosts
    rules:
      - alert: HighCPU
        expr: name,cq.cpu,:eq,(,host,),:by,80,:gt
        for: 1s
        nodata: ok
`), ExternalURL: "http://sextant.example:7101", ConfigFile: alertingConfigFile(t, t.TempDir(), hook.srv.URL, "0s", "1s", "1h")}
	query, _ := startServeNode(t, cfg, func(n *node) { n.cluster.owners = owners })

	// The ingest path of a cluster is Kafka (clog's part); here every
	// datapoint goes straight to both owners of its partition.
	hosts := map[string]float64{"h1": 95, "h2": 10, "h3": 20, "h4": 30, "h5": 40}
	publish := func() {
		now := time.Now().UnixMilli()
		per := map[string][]string{}
		for h, v := range hosts {
			ts := tags.New("name", "cq.cpu", "host", h, "atlas.dstype", "gauge")
			p := tags.PartitionOf(ts, owners.Partitions())
			m := fmt.Sprintf(`{"tags":{"name":"cq.cpu","host":%q,"atlas.dstype":"gauge"},"timestamp":%d,"value":%g}`, h, now, v)
			for _, o := range owners.Owners(p) {
				per[o.Addr] = append(per[o.Addr], m)
			}
		}
		for addr, ms := range per {
			req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/publish", strings.NewReader(`{"metrics":[`+strings.Join(ms, ",")+`]}`))
			req.Header.Set("Authorization", "Bearer s3cret")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}
	pubCtx, pubStop := context.WithCancel(context.Background())
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			publish()
			select {
			case <-pubCtx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	defer func() { pubStop(); <-pubDone }()

	graph := func(q string) (int, http.Header, string) {
		t.Helper()
		v := url.Values{"q": {q}, "format": {"json"}, "s": {"e-1m"}, "e": {"now"}, "step": {"1s"}}
		req, _ := http.NewRequest("GET", "http://"+query+"/api/v1/graph?"+v.Encode(), nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	// The graph API answers from the store nodes: five hosts.
	var body string
	waitFor(t, 20*time.Second, "five hosts in the query node's graph", func() bool {
		var code int
		code, _, body = graph("name,cq.cpu,:eq,(,host,),:by")
		var doc struct{ Legend []string }
		return code == 200 && json.Unmarshal([]byte(body), &doc) == nil && len(doc.Legend) == 5
	})
	// The alert rule, evaluated by the query node's live evaluator over the
	// fan-out, pages for h1 only.
	m := hook.next(t, 30*time.Second)
	if len(m.msg.Alerts) != 1 || m.msg.Alerts[0].Labels["host"] != "h1" {
		t.Errorf("alert payload: %s", m.raw)
	}
	// A live stream of the query node sees the store nodes' data.
	_, live := dialLiveAuth(t, query, "s3cret", map[string]any{"id": "max", "q": "name,cq.cpu,:eq,:max", "step": "1s", "backfill": "5s"})
	end := time.Now().UnixMilli()/1000*1000 - 1000
	live.waitEnd(t, end, "max")
	_, _, lines := live.joined(t, "max")
	saw := false
	for _, vs := range lines {
		for _, v := range vs {
			saw = saw || v == 95
		}
	}
	if !saw {
		t.Errorf("live stream over the cluster: no max of 95 in %v", lines)
	}

	// One store node down: replicas answer, nothing is partial.
	stops[1]()
	code, h, _ := graph("name,cq.cpu,:eq,(,host,),:by")
	if code != 200 || h.Get("X-Sextant-Partial") != "" {
		t.Errorf("one store node down: %d X-Sextant-Partial=%q", code, h.Get("X-Sextant-Partial"))
	}
	// Both owners of partitions 1 and 4 down: partial, said everywhere.
	stops[2]()
	code, h, body = graph("name,cq.cpu,:eq,(,host,),:by")
	if code != 200 || h.Get("X-Sextant-Partial") != "true" || !strings.HasPrefix(body, `{"partial":true,`) {
		t.Errorf("both owners down: %d X-Sextant-Partial=%q %.100s", code, h.Get("X-Sextant-Partial"), body)
	}
	for _, path := range []string{"/api/v1/tags", "/api/v1/query?query=cq_cpu", "/api/services"} {
		req, _ := http.NewRequest("GET", "http://"+query+path, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Sextant-Partial") != "true" {
			t.Errorf("%s with partitions missing: %d X-Sextant-Partial=%q %.200s", path, resp.StatusCode, resp.Header.Get("X-Sextant-Partial"), b)
		}
	}
}
