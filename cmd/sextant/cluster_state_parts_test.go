package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/ingest/cluster"
	"github.com/sextant-dev/sextant/lib"
)

// TestForwardRoundTrip: alerts forwarded to the notifier arrive as they
// left, NaN values included (JSON has no NaN).
func TestForwardRoundTrip(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"alertname": "HighCPU", "host": "a"}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := []*alerting.Alert{
		{Rule: "HighCPU", Labels: labels, Annotations: map[string]string{"summary": "hot"}, Fingerprint: alerting.Fingerprint(labels),
			StartsAt: start, GeneratorURL: "http://x/ui/alerts/HighCPU", Value: 91.5, TraceIDs: []string{"0af7651916cd43dd8448eb211c80319c"}},
		{Rule: "HighCPU", Labels: labels, Fingerprint: alerting.Fingerprint(labels), StartsAt: start, EndsAt: start.Add(time.Minute), Value: math.NaN()},
	}
	b, err := encodeAlerts(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeAlerts(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("round trip (-sent +received):\n%s", diff)
	}
	for _, bad := range []string{`{"alerts":[{"labels":{},"fingerprint":"x"}]}`, `{"alerts":[{"labels":{"a":"b"}}]}`, `[`} {
		if _, err := decodeAlerts([]byte(bad)); err == nil {
			t.Errorf("decodeAlerts(%s) accepted it", bad)
		}
	}
}

// FuzzDecodeAlerts: no body makes the forward endpoint's decoder panic,
// and what it accepts encodes and decodes to the same alerts.
func FuzzDecodeAlerts(f *testing.F) {
	f.Add([]byte(`{"alerts":[{"rule":"R","labels":{"alertname":"R"},"fingerprint":"f","startsAt":"2026-01-01T00:00:00Z","value":1}]}`))
	f.Add([]byte(`{"alerts":[{"labels":{"a":"b"},"fingerprint":"f","endsAt":"2026-01-01T00:00:00Z","traceIDs":["x"]}]}`))
	f.Add([]byte(`{"alerts":[]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Add([]byte(`{"alerts":[{"labels":{"a":"b"},"fingerprint":"f","value":1e400}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		alerts, err := decodeAlerts(b)
		if err != nil {
			return
		}
		again, err := encodeAlerts(alerts)
		if err != nil {
			t.Fatalf("encode what was decoded: %v", err)
		}
		back, err := decodeAlerts(again)
		if err != nil {
			t.Fatalf("decode what was encoded: %v", err)
		}
		if diff := cmp.Diff(alerts, back, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// TestEvaluators: a query node takes part only once it has been live for
// the grace; every node picks the same owner of a key and the same
// notifier; a dead node's keys move.
func TestEvaluators(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	live := []cluster.Node{{ID: "q1", Addr: "a:1"}, {ID: "q2", Addr: "b:1"}}
	ev := func(self string) *evaluators {
		return &evaluators{live: func() []cluster.Node { return slices.Clone(live) }, self: self, grace: 3 * time.Second,
			now: func() time.Time { return now }}
	}
	e1, e2 := ev("q1"), ev("q2")
	if e1.owns("k") || e1.leader().ID != "" {
		t.Error("owns before the first update")
	}
	if !e1.update() || !e2.update() {
		t.Fatal("first update changed nothing")
	}
	// In its grace, each node goes by the other alone.
	if got := *e1.nodes.Load(); len(got) != 1 || got[0].ID != "q2" {
		t.Errorf("q1 in its grace goes by %v, want q2 only", got)
	}
	if e1.leader().ID != "q2" || e2.leader().ID != "q1" {
		t.Errorf("leaders in the grace: q1 %v, q2 %v", e1.leader(), e2.leader())
	}
	now = now.Add(3 * time.Second)
	if !e1.update() || !e2.update() {
		t.Fatal("the end of the grace changed nothing")
	}
	if e1.update() {
		t.Error("an update without a change reported one")
	}
	owned := map[string]int{}
	for i := range 200 {
		key := fmt.Sprintf("rule/g/A%d", i)
		switch a, b := e1.owns(key), e2.owns(key); {
		case a == b:
			t.Fatalf("%s: q1 owns %v, q2 owns %v; want exactly one", key, a, b)
		case a:
			owned["q1"]++
		default:
			owned["q2"]++
		}
	}
	if owned["q1"] < 60 || owned["q2"] < 60 {
		t.Errorf("keys split %v, want about half each", owned)
	}
	if e1.leader() != e2.leader() || e1.isLeader() == e2.isLeader() {
		t.Errorf("notifier: q1 says %v, q2 says %v", e1.leader(), e2.leader())
	}
	// q2 dies: q1 owns everything and notifies.
	live = live[:1]
	if !e1.update() {
		t.Fatal("q2's death changed nothing")
	}
	if !e1.owns("rule/g/A1") || !e1.owns("canary/x") || !e1.isLeader() {
		t.Error("q1 alone does not own everything")
	}
	// q1 is not live (its heartbeats fail): it owns nothing, and takes part
	// again only after a new grace.
	live = nil
	e1.update()
	live = []cluster.Node{{ID: "q1", Addr: "a:1"}}
	e1.update()
	if e1.owns("rule/g/A1") {
		t.Error("q1 owns rules in its grace after coming back")
	}
}

// TestForwarder: a query node hands its alerts to its own dispatcher when
// it is the notifier, else sends them to the notifier's internal endpoint,
// the alerts of queued evaluations in one request; the endpoint refuses
// them on a node that is not the notifier, and names a bad field.
func TestForwarder(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"alertname": "A", "host": "h"}
	alert := &alerting.Alert{Rule: "A", Labels: labels, Fingerprint: alerting.Fingerprint(labels), StartsAt: time.Unix(1, 0).UTC(), Value: 1}
	reg := lib.NewRegistry(lib.RegistryOptions{})
	logger := slog.New(slog.DiscardHandler)
	var mu sync.Mutex
	var got [][]*alerting.Alert
	local := alerting.NotifierFunc(func(_ context.Context, as []*alerting.Alert) { mu.Lock(); got = append(got, as); mu.Unlock() })
	calls := func() (n, alerts int) {
		mu.Lock()
		defer mu.Unlock()
		for _, as := range got {
			alerts += len(as)
		}
		return len(got), alerts
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// Both nodes at the test server: whichever notifies serves it.
	nodes := []cluster.Node{{ID: "q1", Addr: addr}, {ID: "q2", Addr: addr}}
	mk := func(self string) *evaluators {
		e := &evaluators{live: func() []cluster.Node { return nodes }, self: self, now: time.Now}
		e.update()
		return e
	}
	leader := cluster.Pick(nodes, notifierKey).ID
	follower := "q1"
	if leader == follower {
		follower = "q2"
	}
	nf := newForwarder(mk(leader), local, "", logger, reg)
	mux.HandleFunc("POST "+pathForward, nf.serve)
	nf.Notify(context.Background(), []*alerting.Alert{alert})
	if n, _ := calls(); n != 1 {
		t.Errorf("the notifier's own alerts: %d calls of its dispatcher, want 1", n)
	}
	ff := newForwarder(mk(follower), alerting.NotifierFunc(func(context.Context, []*alerting.Alert) {
		t.Error("the follower notified locally")
	}), "", logger, reg)
	for range 3 {
		ff.Notify(context.Background(), []*alerting.Alert{alert})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ff.Run(ctx); close(done) }()
	waitFor(t, 5*time.Second, "the forwarded alerts", func() bool { _, a := calls(); return a == 4 })
	cancel()
	<-done
	if n, _ := calls(); n != 2 {
		t.Errorf("3 queued evaluations went in %d requests, want 1", n-1)
	}
	b, _ := encodeAlerts([]*alerting.Alert{alert})
	rec := httptest.NewRecorder()
	ff.serve(rec, httptest.NewRequest("POST", pathForward, strings.NewReader(string(b))))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("forward to a node that is not the notifier = %d, want 503", rec.Code)
	}
	rec = httptest.NewRecorder()
	nf.serve(rec, httptest.NewRequest("POST", pathForward, strings.NewReader(`{"alerts":[{"labels":{}}]}`)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "alerts[0].labels") {
		t.Errorf("a bad forward = %d %s, want 400 naming the field", rec.Code, rec.Body)
	}
}
