package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/ingest/cluster"
)

// stateRules is the rule group TestClusterState saves through the API.
const stateRules = `{"name":"hosts","rules":[{"alert":"HighCPU","expr":"name,e2e.cpu,:eq,(,host,),:by,80,:gt","for":"2s",
"nodata":"ok","labels":{"severity":"page"}}]}`

// stateRuleID is the id the query nodes share the rule by.
const stateRuleID = "rule/hosts/HighCPU"

// alertingFile writes an alerting config sending every alert to hook:
// group_wait 1s, group_interval 2s, repeat_interval 1h.
func alertingFile(t *testing.T, hook string) string {
	t.Helper()
	return alertingConfigFile(t, t.TempDir(), hook, "1s", "2s", "1h")
}

// TestClusterState runs two query nodes in-process on a kfake cluster
// (each also a store node, with the data of every partition) that share
// their server records through the state topic:
//
//   - a dashboard saved on one is served by the other at once, and one
//     deleted there is gone on the first; a rule group saved on one is
//     listed by the other, and a silence made on the other mutes the
//     notifications of whichever node notifies;
//   - a firing rule notifies the webhook receiver once, although two
//     query nodes run (one evaluates it, one notifies), and both nodes'
//     alerts API show it firing;
//   - the node that evaluates the rule stops (it dies for the cluster):
//     the other takes the rule over within the membership timeout, the
//     alert stays firing with no second notification, and its resolution
//     is notified once.
func TestClusterState(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about a minute")
	}
	t.Parallel()
	kc := newKfake(t)
	brokers := kc.ListenAddrs()
	hook := newWebhookInbox(t)
	cfgFile := alertingFile(t, hook.srv.URL)
	nodes := map[string]*memberNode{}
	for _, id := range []string{"query-a", "query-b"} {
		nodes[id] = startMemberNode(t, brokers, t.TempDir(), "--role", "all", "--node-id", id, "--live-delay", "300ms",
			"--alerting-config", cfgFile, "--external-url", "http://sextant.example")
	}
	base := func(id string) string { return "http://" + nodes[id].addr }
	waitQueryNodes(t, nodes["query-a"].addr, 2)
	waitQueryNodes(t, nodes["query-b"].addr, 2)

	// Dashboards.
	dash := `{"title":"cpu","variables":[],"panels":[{"title":"p","q":"name,e2e.cpu,:eq","type":"line"}]}`
	if code, body := doJSON(t, "PUT", base("query-a")+"/api/v1/dashboards/shared", dash); code != 200 {
		t.Fatalf("PUT dashboard on a = %d %s", code, body)
	}
	if code, body := get(t, base("query-b")+"/api/v1/dashboards/shared"); code != 200 || !strings.Contains(body, `"title":"cpu"`) {
		t.Errorf("GET on b of the dashboard saved on a = %d %s", code, body)
	}
	if code, body := doJSON(t, "DELETE", base("query-b")+"/api/v1/dashboards/shared", ""); code != 204 {
		t.Errorf("DELETE on b = %d %s", code, body)
	}
	if code, _ := get(t, base("query-a")+"/api/v1/dashboards/shared"); code != 404 {
		t.Errorf("GET on a of the dashboard deleted on b = %d, want 404", code)
	}

	// A canary run started on b is read on a.
	code, body := doJSON(t, "POST", base("query-b")+"/api/v1/canary/runs", canaryRun())
	var run struct{ ID string }
	if json.Unmarshal(body, &run); code != 201 || run.ID == "" {
		t.Fatalf("start a canary run on b = %d %s", code, body)
	}
	if code, body := get(t, base("query-a")+"/api/v1/canary/runs/"+run.ID); code != 200 || !strings.Contains(body, `"state":"running"`) {
		t.Errorf("GET on a of the run started on b = %d %s", code, body)
	}

	// A rule group saved on a is listed by b; a silence made on b.
	if code, body := doJSON(t, "PUT", base("query-a")+"/api/v1/alerting/rules/hosts", stateRules); code != 200 {
		t.Fatalf("PUT rules on a = %d %s", code, body)
	}
	if code, body := get(t, base("query-b")+"/api/v1/alerting/rules"); code != 200 || !strings.Contains(body, `"HighCPU"`) {
		t.Errorf("rules on b after the PUT on a = %d %s", code, body)
	}
	now := time.Now().UTC()
	var sb []byte
	code, sb = doJSON(t, "POST", base("query-b")+"/api/v1/alerting/silences", fmt.Sprintf(
		`{"matchers":[{"name":"host","value":"s","isRegex":false,"isEqual":true}],"startsAt":%q,"endsAt":%q,"createdBy":"test","comment":"maintenance"}`,
		now.Format(time.RFC3339Nano), now.Add(time.Hour).Format(time.RFC3339Nano)))
	if code != 200 {
		t.Fatalf("POST silence on b = %d %s", code, sb)
	}
	if code, body := get(t, base("query-a")+"/api/v1/alerting/silences"); code != 200 || !strings.Contains(body, `"createdBy":"test"`) {
		t.Errorf("silences on a after the POST on b = %d %s", code, body)
	}

	// Host a crosses the threshold: one notification; host s is silenced.
	pub := startGauges(t, base("query-a"), map[string]float64{"a": 50, "s": 50})
	waitBaseline(t, base("query-a"), 2, "a", "s")
	pub.set("a", 90)
	pub.set("s", 90)
	m := hook.next(t, 20*time.Second)
	if m.msg.Status != "firing" || len(m.msg.Alerts) != 1 || m.msg.Alerts[0].Labels["host"] != "a" {
		t.Fatalf("first notification: %s", m.raw)
	}
	hook.none(t, 4*time.Second) // both nodes run, two group intervals pass: nothing more
	for id := range nodes {
		if got := firing(t, base(id)); got != "a,s" {
			t.Errorf("firing alerts on %s = %q, want a,s", id, got)
		}
	}
	if code, body := get(t, base("query-a")+"/api/v1/alerting/notifications"); code != 200 || !strings.Contains(body, `"outcome":"muted"`) {
		t.Errorf("delivery log on a = %d %s, want the muted notification", code, body)
	}

	// The node evaluating the rule dies; the other takes over.
	owner := cluster.Pick([]cluster.Node{{ID: "query-a"}, {ID: "query-b"}}, stateRuleID).ID
	other := "query-a"
	if owner == other {
		other = "query-b"
	}
	t.Logf("%s evaluates the rule; it stops", owner)
	pub.base.Store(base(other))
	stopped := time.Now()
	nodes[owner].stop(t)
	waitFor(t, 30*time.Second, other+" to evaluate the rule", func() bool {
		return evaluatedSince(t, base(other), stopped)
	})
	if d := time.Since(stopped); d > 20*time.Second {
		t.Errorf("the rule moved %v after its node stopped, want within the 10 s membership timeout and a few seconds", d)
	}
	hook.none(t, 4*time.Second) // still firing: no second page
	if got := firing(t, base(other)); got != "a,s" {
		t.Errorf("firing alerts on %s after the take-over = %q, want a,s", other, got)
	}
	pub.set("a", 10)
	pub.set("s", 10)
	m = hook.next(t, 20*time.Second)
	if m.msg.Status != "resolved" || len(m.msg.Alerts) != 1 || m.msg.Alerts[0].Labels["host"] != "a" {
		t.Errorf("resolution: %s", m.raw)
	}
	hook.none(t, 4*time.Second) // resolved once
}

// waitQueryNodes waits until the node at addr lists n live query nodes,
// and then for the owners' grace, after which each of them evaluates what
// it owns.
func waitQueryNodes(t *testing.T, addr string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d live query nodes", n), func() bool {
		code, _ := get(t, "http://"+addr+"/healthz")
		live := 0
		for _, nd := range clusterStatus(t, addr).Nodes {
			if nd.Live && strings.Contains(strings.Join(nd.Roles, ","), cluster.RoleQuery) {
				live++
			}
		}
		return code == 200 && live == n
	})
	time.Sleep(ownerGrace + time.Second) // the owners' fixed grace; nothing to poll for
}

// firing lists the hosts of the firing HighCPU alerts on a node, sorted.
func firing(t *testing.T, base string) string {
	t.Helper()
	code, body := get(t, base+"/api/v1/alerting/alerts")
	var resp struct {
		Alerts []struct {
			Rule   string            `json:"rule"`
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil {
		t.Fatalf("alerts = %d %s", code, body)
	}
	var hosts []string
	for _, a := range resp.Alerts {
		if a.Rule == "HighCPU" && a.State == "firing" {
			hosts = append(hosts, a.Labels["host"])
		}
	}
	slices.Sort(hosts)
	return strings.Join(hosts, ",")
}

// evaluatedSince says whether the node at base evaluated HighCPU after t.
func evaluatedSince(t *testing.T, base string, since time.Time) bool {
	t.Helper()
	code, body := get(t, base+"/api/v1/alerting/rules")
	var resp struct {
		Groups []struct {
			Rules []struct {
				Alert    string     `json:"alert"`
				LastEval *time.Time `json:"lastEvaluation"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &resp) != nil {
		t.Fatalf("rules = %d %s", code, body)
	}
	for _, g := range resp.Groups {
		for _, r := range g.Rules {
			if r.Alert == "HighCPU" && r.LastEval != nil && r.LastEval.After(since) {
				return true
			}
		}
	}
	return false
}

// TestClusterStateKafkaDown: a record larger than a Kafka message is
// refused with 413 naming the body; with Kafka gone, every write of a
// server record is refused with 503 and Retry-After (never stored on the
// node alone), and reads answer from the node's copy.
func TestClusterStateKafkaDown(t *testing.T) {
	t.Parallel()
	kc := newKfake(t)
	n := startMemberNode(t, kc.ListenAddrs(), t.TempDir(), "--role", "query", "--node-id", "query-down")
	base := "http://" + n.addr
	dash := `{"title":"before","panels":[]}`
	if code, body := doJSON(t, "PUT", base+"/api/v1/dashboards/before", dash); code != 200 {
		t.Fatalf("PUT dashboard with Kafka up = %d %s", code, body)
	}
	// A dashboard the UI accepts (under 1 MiB) but Kafka's message size
	// does not: 413 naming the body.
	var panels []string
	for range 62 {
		panels = append(panels, fmt.Sprintf(`{"title":"p","q":"name,%s,:eq","type":"line"}`, strings.Repeat("x", 16_000)))
	}
	big := `{"title":"big","panels":[` + strings.Join(panels, ",") + `]}`
	if code, body := doJSON(t, "PUT", base+"/api/v1/dashboards/big", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"param":"body"`) {
		t.Errorf("PUT of a %d-byte dashboard = %d %s, want 413 naming the body", len(big), code, body)
	}
	kc.Close()
	now := time.Now().UTC()
	writes := []struct{ method, path, body string }{
		{"PUT", "/api/v1/dashboards/after", dash},
		{"PUT", "/api/v1/alerting/rules/g", `{"name":"g","rules":[{"alert":"A","expr":"name,x,:eq"}]}`},
		{"POST", "/api/v1/alerting/silences", fmt.Sprintf(`{"matchers":[{"name":"host","value":"a"}],"startsAt":%q,"endsAt":%q,"createdBy":"t"}`,
			now.Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))},
		{"POST", "/api/v1/canary/runs", canaryRun()},
	}
	var wg sync.WaitGroup
	for _, w := range writes {
		wg.Go(func() {
			req, _ := http.NewRequest(w.method, base+w.path, strings.NewReader(w.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", w.method, w.path, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s with Kafka down = %d, Retry-After %q; want 503 with Retry-After", w.method, w.path, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		})
	}
	wg.Wait()
	if code, body := get(t, base+"/api/v1/dashboards"); code != 200 || !strings.Contains(body, `"before"`) || strings.Contains(body, `"after"`) {
		t.Errorf("dashboards with Kafka down = %d %s, want the copy: before only", code, body)
	}
}

// canaryRun is the body of a continuous canary run of an hour.
func canaryRun() string {
	return strings.Replace(canaryRequest("healthy", true), `"s":"e-140s","e":"now-5s"`, `"interval":"1m","lifetime":"1h"`, 1)
}

// TestClusterStateBinary is the end-to-end check on the real binary: a
// store node (which also ingests) and two query nodes with the same rule
// file, as separate processes on a kfake cluster. A firing rule pages
// once; the query node evaluating it is killed with SIGKILL; the other
// takes the rule over within the membership timeout, the alert stays
// firing without a second page, and its resolution is sent once.
func TestClusterStateBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary as three processes")
	}
	t.Parallel()
	bin := buildBinary(t)
	kc := newKfake(t)
	brokers := strings.Join(kc.ListenAddrs(), ",")
	hook := newWebhookInbox(t)
	rules, cfgFile := rulesDir(t, e2eRules), alertingFile(t, hook.srv.URL)
	start := func(flags ...string) *binary {
		b := runBinary(t, bin, nil, append([]string{"--data-dir", t.TempDir(), "--memory-retention", "1h",
			"--kafka-brokers", brokers, "--replication-factor", "1"}, flags...)...)
		t.Cleanup(func() { stopBinary(t, b) })
		return b
	}
	store := start("--role", "ingest,store", "--node-id", "store-1")
	queries := map[string]*binary{}
	for _, id := range []string{"query-1", "query-2"} {
		queries[id] = start("--role", "query", "--node-id", id, "--rules-dir", rules, "--alerting-config", cfgFile,
			"--live-delay", "300ms", "--external-url", "http://sextant.example")
	}
	for _, q := range queries {
		waitQueryNodes(t, q.addr, 2)
	}
	pub := startGauges(t, "http://"+store.addr, map[string]float64{"a": 50})
	waitBaseline(t, "http://"+queries["query-1"].addr, 2, "a")
	pub.set("a", 90)
	m := hook.next(t, 20*time.Second)
	if m.msg.Status != "firing" || len(m.msg.Alerts) != 1 || m.msg.Alerts[0].Labels["host"] != "a" {
		t.Fatalf("first notification: %s", m.raw)
	}
	hook.none(t, 4*time.Second) // two query nodes, one page

	owner := cluster.Pick([]cluster.Node{{ID: "query-1"}, {ID: "query-2"}}, "rule/hosts/HighCPU").ID
	other := "query-1"
	if owner == other {
		other = "query-2"
	}
	t.Logf("%s evaluates the rule; it is killed", owner)
	killed := time.Now()
	kill(queries[owner])
	base := "http://" + queries[other].addr
	waitFor(t, 30*time.Second, other+" to evaluate the rule", func() bool { return evaluatedSince(t, base, killed) })
	hook.none(t, 4*time.Second) // still firing: no second page
	if got := firing(t, base); got != "a" {
		t.Errorf("firing alerts on %s after the take-over = %q, want a", other, got)
	}
	pub.set("a", 10)
	m = hook.next(t, 20*time.Second)
	if m.msg.Status != "resolved" || len(m.msg.Alerts) != 1 {
		t.Errorf("resolution: %s", m.raw)
	}
	hook.none(t, 4*time.Second) // resolved once
}
