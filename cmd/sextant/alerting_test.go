package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/alerting/notify"
)

// webhookInbox is a real HTTP server receiving webhook notifications.
type webhookInbox struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []inboxMsg
	got  chan struct{} // a token per message (capacity large enough for a test)
}

type inboxMsg struct {
	at  time.Time
	raw []byte
	msg notify.Message
}

func newWebhookInbox(t testing.TB) *webhookInbox {
	t.Helper()
	in := &webhookInbox{got: make(chan struct{}, 1000)}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m notify.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook body: %v: %s", err, b)
		}
		in.mu.Lock()
		in.msgs = append(in.msgs, inboxMsg{at: time.Now(), raw: b, msg: m})
		in.mu.Unlock()
		in.got <- struct{}{}
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// next waits up to d for the next message.
func (in *webhookInbox) next(t testing.TB, d time.Duration) inboxMsg {
	t.Helper()
	select {
	case <-in.got:
	case <-time.After(d):
		t.Fatalf("no notification within %v", d)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	m := in.msgs[0]
	in.msgs = in.msgs[1:]
	return m
}

// none checks that no message arrives within d.
func (in *webhookInbox) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-in.got:
		in.mu.Lock()
		defer in.mu.Unlock()
		t.Fatalf("unexpected notification: %s", in.msgs[0].raw)
	case <-time.After(d):
	}
}

// gaugePublisher publishes a gauge per host every 200 ms until stopped.
type gaugePublisher struct {
	mu   sync.Mutex
	vals map[string]float64
	base atomic.Value // string: the server's base URL
	stop func()
}

func startGauges(t testing.TB, base string, vals map[string]float64) *gaugePublisher {
	t.Helper()
	p := &gaugePublisher{vals: vals}
	p.base.Store(base)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			p.publish()
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	p.stop = func() { cancel(); <-done }
	t.Cleanup(p.stop)
	return p
}

// waitBaseline waits until the server holds n steps (1 s each) of every
// host's gauge: a rule then starts from the values below its threshold
// before a test crosses it, however slow the machine, where a fixed sleep
// only hoped so.
func waitBaseline(t *testing.T, base string, n int, hosts ...string) {
	t.Helper()
	for _, host := range hosts {
		q := url.Values{"q": {"name,e2e.cpu,:eq,host," + host + ",:eq,:max"}, "format": {"json"}, "s": {"e-2m"}, "step": {"1s"}}
		waitFor(t, 30*time.Second, fmt.Sprintf("%d baseline steps of host %s", n, host), func() bool {
			code, body := get(t, base+"/api/v1/graph?"+q.Encode())
			var g struct {
				Values [][]any `json:"values"`
			}
			if code != http.StatusOK || json.Unmarshal([]byte(body), &g) != nil {
				return false
			}
			seen := 0
			for _, row := range g.Values {
				if _, ok := row[0].(float64); ok { // NaN, no data, is the string "NaN"
					seen++
				}
			}
			return seen >= n
		})
	}
}

func (p *gaugePublisher) set(host string, v float64) {
	p.mu.Lock()
	p.vals[host] = v
	p.mu.Unlock()
}

func (p *gaugePublisher) publish() {
	p.mu.Lock()
	var ms []string
	now := time.Now().UnixMilli()
	for h, v := range p.vals {
		ms = append(ms, fmt.Sprintf(`{"tags":{"name":"e2e.cpu","host":%q,"atlas.dstype":"gauge"},"timestamp":%d,"value":%g}`, h, now, v))
	}
	p.mu.Unlock()
	body := `{"metrics":[` + strings.Join(ms, ",") + `]}`
	resp, err := http.Post(p.base.Load().(string)+"/api/v1/publish", "application/json", strings.NewReader(body))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

const e2eRules = `groups:
  - name: hosts
    rules:
      - alert: HighCPU
        expr: name,e2e.cpu,:eq,(,host,),:by,80,:gt
        for: 2s
        nodata: ok            # the first step may close before the first datapoint
        labels: {severity: page}
        annotations: {summary: 'cpu of {{ index .Tags "host" }} is {{ .Value }}'}
`

func alertingConfigFile(t testing.TB, dir, hook string, groupWait, groupInterval, repeat string) string {
	t.Helper()
	f := filepath.Join(dir, "alerting.yaml")
	c := fmt.Sprintf(`route: {receiver: hook, group_by: [alertname], group_wait: %s, group_interval: %s, repeat_interval: %s}
receivers:
  - {name: hook, webhook: {url: %q, send_resolved: true}}
`, groupWait, groupInterval, repeat, hook)
	if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func rulesDir(t testing.TB, rules string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rules")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "hosts.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func doJSON(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAlertingEndToEnd runs the server in-process with a rule, a route
// and a real webhook receiver: a threshold crossed pages with the exact
// v4 payload after `for`, a second host joins the group at the group
// interval, the group repeats, resolves, and a silence mutes until it
// expires.
func TestAlertingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 40 s")
	}
	t.Parallel()
	hook := newWebhookInbox(t)
	cfg := testConfig(t)
	cfg.LiveDelay = 300 * time.Millisecond
	cfg.Alerting = alertingConfig{RulesDir: rulesDir(t, e2eRules), ExternalURL: "http://sextant.example:7101",
		ConfigFile: alertingConfigFile(t, t.TempDir(), hook.srv.URL, "1s", "3s", "8s")}
	base := "http://" + startServe(t, cfg)
	pub := startGauges(t, base, map[string]float64{"a": 50, "b": 50})
	waitBaseline(t, base, 2, "a", "b") // steps below the threshold before the crossing

	crossed := time.Now()
	pub.set("a", 90)
	m := hook.next(t, 15*time.Second)
	// Not before for (2 s) + group_wait (1 s).
	if d := m.at.Sub(crossed); d < 3*time.Second {
		t.Errorf("page after %v, before for + group_wait", d)
	}
	labels := map[string]string{"alertname": "HighCPU", "host": "a", "name": "e2e.cpu", "severity": "page"}
	if len(m.msg.Alerts) != 1 {
		t.Fatalf("alerts: %s", m.raw)
	}
	startsAt := m.msg.Alerts[0].StartsAt
	want := notify.Message{Version: "4", GroupKey: `{}:{alertname="HighCPU"}`, Status: "firing", Receiver: "hook",
		GroupLabels: map[string]string{"alertname": "HighCPU"}, CommonLabels: labels,
		CommonAnnotations: map[string]string{"summary": "cpu of a is 1"}, ExternalURL: "http://sextant.example:7101",
		NotificationReason: "new_alerts",
		Alerts: []notify.MessageAlert{{Status: "firing", Labels: labels, Annotations: map[string]string{"summary": "cpu of a is 1"},
			StartsAt: startsAt, GeneratorURL: "http://sextant.example:7101/ui/alerts/HighCPU", Fingerprint: alerting.Fingerprint(labels)}}}
	if diff := cmp.Diff(want, m.msg); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	// Field for field: exactly the v4 keys, in Alertmanager's order.
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(m.raw))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	wantKeys := []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL", "notification_reason", "alerts"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("payload keys (-want +got):\n%s", diff)
	}
	if !bytes.Contains(m.raw, []byte(`"endsAt":"0001-01-01T00:00:00Z"`)) {
		t.Errorf("firing alert without the zero endsAt: %s", m.raw)
	}
	if startsAt.Before(crossed.Add(-2*time.Second)) || startsAt.After(m.at) {
		t.Errorf("startsAt %v not when the threshold was crossed (%v)", startsAt, crossed)
	}
	// The alerts API agrees.
	code, body := get(t, base+"/api/v1/alerting/alerts")
	if code != 200 || !strings.Contains(body, `"state":"firing"`) || !strings.Contains(body, `"rule":"HighCPU"`) {
		t.Errorf("alerts API = %d %s", code, body)
	}

	// b crosses: it joins the group at its next interval, with a.
	pub.set("b", 95)
	m = hook.next(t, 15*time.Second)
	if len(m.msg.Alerts) != 2 || m.msg.Status != "firing" || m.msg.CommonLabels["host"] != "" {
		t.Errorf("grouped notification: %s", m.raw)
	}
	second := m.at
	// Nothing changes: the group repeats after repeat_interval (8 s),
	// at a group interval boundary.
	m = hook.next(t, 20*time.Second)
	if d := m.at.Sub(second); d < 8*time.Second || m.msg.NotificationReason != "repeat_interval" || len(m.msg.Alerts) != 2 {
		t.Errorf("repeat after %v: %s", d, m.raw)
	}
	// Both resolve: one resolved notification.
	pub.set("a", 10)
	pub.set("b", 10)
	for {
		m = hook.next(t, 15*time.Second)
		if m.msg.Status == "resolved" {
			break
		}
	}
	for _, a := range m.msg.Alerts {
		if a.Status != "resolved" || a.EndsAt.IsZero() || !a.EndsAt.After(a.StartsAt) {
			t.Errorf("resolved alert: %+v", a)
		}
	}

	// A silence on host a for 6 s: a crossing again is muted, then paged
	// after the silence ends.
	now := time.Now().UTC()
	code, sb := doJSON(t, "POST", base+"/api/v1/alerting/silences", fmt.Sprintf(
		`{"matchers":[{"name":"host","value":"a","isRegex":false,"isEqual":true}],"startsAt":%q,"endsAt":%q,"createdBy":"e2e","comment":"maintenance"}`,
		now.Format(time.RFC3339Nano), now.Add(8*time.Second).Format(time.RFC3339Nano)))
	if code != 200 || !strings.Contains(string(sb), "silenceID") {
		t.Fatalf("post silence = %d %s", code, sb)
	}
	pub.set("a", 90)
	hook.none(t, 6*time.Second)
	m = hook.next(t, 15*time.Second)
	if m.msg.Status != "firing" || m.msg.Alerts[0].Labels["host"] != "a" || m.at.Before(now.Add(8*time.Second)) {
		t.Errorf("after the silence: %v %s", m.at, m.raw)
	}
	code, body = get(t, base+"/api/v1/alerting/notifications")
	if code != 200 || !strings.Contains(body, `"outcome":"muted"`) || !strings.Contains(body, `"outcome":"sent"`) {
		t.Errorf("delivery log = %d %s", code, body)
	}
	// A silence on host a, previewed: it mutes a now, and would have
	// muted the first page entirely and part of the later ones.
	code, pb := doJSON(t, "POST", base+"/api/v1/alerting/silences/preview", `{"matchers":[{"name":"host","value":"a"}]}`)
	var prev struct {
		Alerts             []struct{ Labels map[string]string }
		Notifications      []struct{ Whole bool }
		MutedNotifications int
	}
	json.Unmarshal(pb, &prev)
	partial := 0
	for _, n := range prev.Notifications {
		if !n.Whole {
			partial++
		}
	}
	if code != 200 || len(prev.Alerts) != 1 || prev.Alerts[0].Labels["host"] != "a" || prev.MutedNotifications < 1 || partial < 2 {
		t.Errorf("preview = %d %s", code, pb)
	}
	// The history has every transition of host a.
	code, body = get(t, base+"/api/v1/alerting/history?rule=HighCPU&s=now-5m")
	var hist struct{ Transitions []alerting.Transition }
	json.Unmarshal([]byte(body), &hist)
	var seq []string
	for _, tr := range hist.Transitions {
		if tr.Labels["host"] == "a" {
			seq = append(seq, string(tr.From)+">"+string(tr.To))
		}
	}
	wantSeq := []string{"inactive>pending", "pending>firing", "firing>resolved", "inactive>pending", "pending>firing"}
	if diff := cmp.Diff(wantSeq, seq, cmpopts.EquateEmpty()); code != 200 || diff != "" {
		t.Errorf("history = %d (-want +got):\n%s", code, diff)
	}
}

// alertingServe starts the server in-process with the rules file rules, a
// live delay of 300 ms and a route that sends every alert to a new webhook
// inbox at once (group_wait 0 s, group_interval 1 s); it returns the
// server's address and the inbox.
func alertingServe(t *testing.T, rules string) (string, *webhookInbox) {
	t.Helper()
	hook := newWebhookInbox(t)
	cfg := testConfig(t)
	cfg.LiveDelay = 300 * time.Millisecond
	cfg.Alerting = alertingConfig{ExternalURL: "http://sextant.example",
		ConfigFile: alertingConfigFile(t, t.TempDir(), hook.srv.URL, "0s", "1s", "1h"), RulesDir: rulesDir(t, rules)}
	return startServe(t, cfg), hook
}

// TestAlertingDES: a :des rule on the live evaluator stays quiet on a
// periodic baseline (ten minutes of history plus live steps) and pages on
// an injected spike.
func TestAlertingDES(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 30 s")
	}
	t.Parallel()
	addr, hook := alertingServe(t, `groups:
  - name: anomalies
    rules:
      - alert: WaveAnomaly
        expr: name,e2e.wave,:eq,:sum,10,0.1,0.5,0.2,0.2,10,:des-epic-signal
        nodata: ok
`)
	base := "http://" + addr
	wave := func(ms int64) float64 { return 100 + 20*math.Sin(2*math.Pi*float64(ms/1000)/120) }
	publish := func(t0, t1 int64, spike float64) {
		var pts []string
		for ts := t0; ts < t1; ts += 1000 {
			pts = append(pts, fmt.Sprintf(`{"tags":{"name":"e2e.wave","atlas.dstype":"gauge"},"timestamp":%d,"value":%g}`, ts, wave(ts)+spike))
		}
		code, body := doJSON(t, "POST", base+"/api/v1/publish", `{"metrics":[`+strings.Join(pts, ",")+`]}`)
		if code != 200 {
			t.Fatalf("publish = %d %s", code, body)
		}
	}
	// Ten minutes of history, then the baseline live.
	now := time.Now().UnixMilli() / 1000 * 1000
	for ts := now - 600_000; ts < now; ts += 60_000 {
		publish(ts, ts+60_000, 0)
	}
	var spike atomic.Int64 // the spike added now, as an integer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := now
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			cur := time.Now().UnixMilli() / 1000 * 1000
			if cur > last {
				publish(last, cur+1000, float64(spike.Load()))
				last = cur + 1000
			}
		}
	}()
	defer func() { cancel(); <-done }()
	hook.none(t, 15*time.Second)
	code, body := get(t, base+"/api/v1/alerting/rules")
	if code != 200 || !strings.Contains(body, `"health":"ok"`) {
		t.Fatalf("rules = %d %s", code, body)
	}
	spike.Store(80)
	m := hook.next(t, 15*time.Second)
	if m.msg.Status != "firing" || m.msg.Alerts[0].Labels["alertname"] != "WaveAnomaly" {
		t.Errorf("spike page: %s", m.raw)
	}
}
