package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/alerting/notify"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handlerTransport serves requests with an in-process handler, so clock
// tests in a synctest bubble see no network goroutines.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// inbox records the webhook messages it receives, with their arrival.
type inbox struct {
	mu   sync.Mutex
	msgs []received
	fail int // answer 503 to this many requests first
}

type received struct {
	at  time.Time
	msg notify.Message
	raw string
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fail > 0 {
		in.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var m notify.Message
	if err := json.Unmarshal(b, &m); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	in.msgs = append(in.msgs, received{at: time.Now(), msg: m, raw: string(b)})
}

func (in *inbox) take() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.msgs
	in.msgs = nil
	return out
}

const testConfig = `
route: {receiver: team, group_by: [alertname], group_wait: 30s, group_interval: 5m, repeat_interval: 1h,
        routes: [{matchers: ["severity=page"], receiver: oncall}]}
receivers:
  - {name: team, webhook: {url: "http://team.example/hook"}}
  - {name: oncall, webhook: {url: "http://oncall.example/hook", send_resolved: true}}
`

type fixture struct {
	in   *inbox
	kv   tsdb.KV
	sil  *alerting.Silences
	log  *alerting.DeliveryLog
	d    *notify.Dispatcher
	stop func()
}

func start(t *testing.T, kv tsdb.KV, in *inbox) *fixture {
	t.Helper()
	cfg, err := notify.ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	sil, err := alerting.OpenSilences(context.Background(), kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := alerting.NewDeliveryLog(kv, 0)
	d, err := notify.New(notify.Options{Config: cfg, KV: kv, Silences: sil, Log: log, ExternalURL: "http://sextant.example",
		Client: &http.Client{Transport: handlerTransport{in}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	return &fixture{in: in, kv: kv, sil: sil, log: log, d: d, stop: func() { cancel(); <-done }}
}

func alert(name, host string, startsAt time.Time, resolved bool) *alerting.Alert {
	l := map[string]string{"alertname": name, "host": host}
	a := &alerting.Alert{Rule: name, Labels: l, Fingerprint: alerting.Fingerprint(l), StartsAt: startsAt,
		Annotations: map[string]string{"summary": host + " is hot"}, GeneratorURL: "http://sextant.example/ui/alerts/" + name}
	if resolved {
		a.EndsAt = time.Now()
	}
	return a
}

func TestGroupingAndRepeat(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{}
		f := start(t, tsdbtest.NewKV(), in)
		defer f.stop()
		ctx := context.Background()
		t0 := time.Now()
		a := alert("HighCPU", "a", t0, false)
		f.d.Notify(ctx, []*alerting.Alert{a})
		time.Sleep(10 * time.Second) // synctest: advances the bubble's fake clock
		b := alert("HighCPU", "b", time.Now(), false)
		// The rule re-sends its firing alerts every evaluation.
		for range 62 {
			f.d.Notify(ctx, []*alerting.Alert{a, b})
			time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		}
		synctest.Wait()
		got := in.take()
		// One notification after group_wait with both, one repeat after 1h
		// (at the first group interval boundary past it).
		if len(got) != 2 {
			t.Fatalf("got %d notifications, want 2: %+v", len(got), got)
		}
		if d := got[0].at.Sub(t0); d != 30*time.Second {
			t.Errorf("first notification after %v, want 30s", d)
		}
		if d := got[1].at.Sub(t0); d != time.Hour+30*time.Second {
			t.Errorf("repeat after %v, want 1h0m30s", d)
		}
		if got[1].msg.NotificationReason != "repeat_interval" {
			t.Errorf("reason = %q", got[1].msg.NotificationReason)
		}
		m := got[0].msg
		want := notify.Message{Version: "4", GroupKey: `{}:{alertname="HighCPU"}`, Status: "firing", Receiver: "team",
			GroupLabels: map[string]string{"alertname": "HighCPU"}, CommonLabels: map[string]string{"alertname": "HighCPU"},
			CommonAnnotations: map[string]string{}, ExternalURL: "http://sextant.example", NotificationReason: "new_alerts",
			Alerts: []notify.MessageAlert{
				{Status: "firing", Labels: a.Labels, Annotations: a.Annotations, StartsAt: t0.UTC(), GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint},
				{Status: "firing", Labels: b.Labels, Annotations: b.Annotations, StartsAt: t0.Add(10 * time.Second).UTC(), GeneratorURL: b.GeneratorURL, Fingerprint: b.Fingerprint},
			}}
		if diff := cmp.Diff(want, m); diff != "" {
			t.Errorf("message (-want +got):\n%s", diff)
		}
		if !strings.Contains(got[0].raw, `"endsAt":"0001-01-01T00:00:00Z"`) || !strings.HasPrefix(got[0].raw, `{"version":"4","groupKey":`) {
			t.Errorf("raw payload: %s", got[0].raw)
		}
		// a resolves: notified at the next group interval.
		ra := alert("HighCPU", "a", t0, true)
		resolvedAt := time.Now()
		f.d.Notify(ctx, []*alerting.Alert{ra, b})
		time.Sleep(5 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		got = in.take()
		if len(got) != 1 || got[0].msg.Status != "firing" || got[0].msg.Alerts[0].Status != "resolved" ||
			!got[0].msg.Alerts[0].EndsAt.Equal(resolvedAt) || got[0].msg.Alerts[1].Status != "firing" {
			t.Fatalf("after a resolves: %+v", got)
		}
	})
}

func TestRestartDoesNotRepage(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{}
		kv := tsdbtest.NewKV()
		ctx := context.Background()
		f := start(t, kv, in)
		a := alert("HighCPU", "a", time.Now(), false)
		a.Labels["severity"] = "page"
		a.Fingerprint = alerting.Fingerprint(a.Labels)
		f.d.Notify(ctx, []*alerting.Alert{a})
		time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 1 || got[0].msg.Receiver != "oncall" {
			t.Fatalf("first page: %+v", got)
		}
		f.stop()
		// A new dispatcher on the same store: the alert is still firing.
		f = start(t, kv, in)
		defer f.stop()
		f.d.Notify(ctx, []*alerting.Alert{a})
		time.Sleep(10 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 0 {
			t.Fatalf("paged again after restart: %+v", got)
		}
		r := *a
		r.EndsAt = time.Now()
		f.d.Notify(ctx, []*alerting.Alert{&r})
		time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 1 || got[0].msg.Status != "resolved" {
			t.Fatalf("resolution after restart: %+v", got)
		}
	})
}

func TestSilenceMutesAndExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{}
		f := start(t, tsdbtest.NewKV(), in)
		defer f.stop()
		ctx := context.Background()
		ms, err := alerting.ParseSilenceMatchers([]string{`host=~"a|c"`})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if _, err := f.sil.Put(ctx, &alerting.Silence{Matchers: ms, StartsAt: now, EndsAt: now.Add(20 * time.Minute), CreatedBy: "me", Comment: "maintenance"}); err != nil {
			t.Fatal(err)
		}
		a := alert("HighCPU", "a", now, false)
		for range 25 {
			f.d.Notify(ctx, []*alerting.Alert{a})
			time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		}
		synctest.Wait()
		got := in.take()
		// Muted for 20 minutes; notified at the first flush after the end.
		if len(got) != 1 || got[0].at.Sub(now) != 20*time.Minute+30*time.Second {
			t.Fatalf("notifications: %+v", got)
		}
		ds, err := f.log.List(ctx, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var outcomes []string
		for _, d := range ds {
			outcomes = append(outcomes, d.Outcome)
		}
		if diff := cmp.Diff([]string{"sent", "muted"}, outcomes); diff != "" {
			t.Errorf("delivery log (-want +got):\n%s", diff)
		}
	})
}

func TestRetries(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{fail: 2}
		f := start(t, tsdbtest.NewKV(), in)
		defer f.stop()
		ctx := context.Background()
		f.d.Notify(ctx, []*alerting.Alert{alert("HighCPU", "a", time.Now(), false)})
		time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 1 {
			t.Fatalf("got %d notifications", len(got))
		}
		ds, _ := f.log.List(ctx, time.Time{}, 0)
		if len(ds) != 1 || ds[0].Attempts != 3 || ds[0].Outcome != "sent" {
			t.Errorf("delivery log: %+v", ds)
		}
	})
}

// TestSlackAndPagerDuty: a receiver with both integrations sends a Slack
// message and a PagerDuty trigger, then a resolve with the same dedup key;
// max_alerts truncates a webhook.
func TestSlackAndPagerDuty(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		bodies := map[string][]map[string]any{}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var v map[string]any
			json.NewDecoder(r.Body).Decode(&v)
			mu.Lock()
			bodies[r.Host] = append(bodies[r.Host], v)
			mu.Unlock()
		})
		cfg, err := notify.ParseConfig([]byte(`
route: {receiver: oncall, group_by: [alertname], group_wait: 0s, group_interval: 1m, repeat_interval: 4h}
receivers:
  - name: oncall
    pagerduty: {routing_key: key123, url: "http://pd.example/v2/enqueue"}
    slack: {url: "http://slack.example/hook", channel: "#ops"}
    webhook: {url: "http://hook.example/", max_alerts: 1}
`))
		if err != nil {
			t.Fatal(err)
		}
		d, err := notify.New(notify.Options{Config: cfg, KV: tsdbtest.NewKV(), ExternalURL: "http://sextant.example",
			Client: &http.Client{Transport: handlerTransport{h}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		a, b := alert("Down", "a", time.Now(), false), alert("Down", "b", time.Now(), false)
		a.TraceIDs = []string{"0af7651916cd43dd8448eb211c80319c"}
		d.Notify(ctx, []*alerting.Alert{a, b})
		time.Sleep(time.Second) // synctest: advances the bubble's fake clock
		ra, rb := alert("Down", "a", a.StartsAt, true), alert("Down", "b", b.StartsAt, true)
		d.Notify(ctx, []*alerting.Alert{ra, rb})
		time.Sleep(2 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		pd := bodies["pd.example"]
		if len(pd) != 2 || pd[0]["event_action"] != "trigger" || pd[1]["event_action"] != "resolve" ||
			pd[0]["dedup_key"] != pd[1]["dedup_key"] || pd[0]["routing_key"] != "key123" {
			t.Fatalf("pagerduty events: %v", pd)
		}
		links, _ := pd[0]["links"].([]any)
		if len(links) != 2 || !strings.Contains(fmt.Sprint(links), "http://sextant.example/ui/traces/0af7651916cd43dd8448eb211c80319c") {
			t.Errorf("pagerduty links: %v", links)
		}
		sl := bodies["slack.example"]
		if len(sl) != 2 || sl[0]["channel"] != "#ops" || !strings.HasPrefix(sl[0]["text"].(string), "[FIRING:2] Down") ||
			!strings.HasPrefix(sl[1]["text"].(string), "[RESOLVED] Down") {
			t.Errorf("slack messages: %v", sl)
		}
		wh := bodies["hook.example"]
		if len(wh) != 2 || wh[0]["truncatedAlerts"] != float64(1) || len(wh[0]["alerts"].([]any)) != 1 {
			t.Errorf("webhook with max_alerts 1: %v", wh)
		}
	})
}

// TestPusher: alerts go to Alertmanager at once, again every minute with
// endsAt four minutes ahead, and a resolved one with its end for five
// minutes, then no more.
func TestPusher(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		type post struct {
			at     time.Time
			alerts []map[string]any
		}
		var mu sync.Mutex
		var posts []post
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/am/api/v2/alerts" || r.Method != "POST" {
				http.Error(w, "no", 404)
				return
			}
			var v []map[string]any
			json.NewDecoder(r.Body).Decode(&v)
			mu.Lock()
			posts = append(posts, post{time.Now(), v})
			mu.Unlock()
		})
		p, err := notify.NewPusher(notify.PusherOptions{URLs: []string{"http://am.example/am/"}, Client: &http.Client{Transport: handlerTransport{h}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		t0 := time.Now()
		a := alert("Down", "a", t0, false)
		p.Notify(ctx, []*alerting.Alert{a})
		synctest.Wait()
		for range 3 {
			time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
			p.Notify(ctx, []*alerting.Alert{a})
		}
		synctest.Wait()
		r := alert("Down", "a", t0, true)
		p.Notify(ctx, []*alerting.Alert{r})
		time.Sleep(10 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(posts) < 4 {
			t.Fatalf("%d posts", len(posts))
		}
		first := posts[0]
		ends, _ := time.Parse(time.RFC3339, first.alerts[0]["endsAt"].(string))
		if !first.at.Equal(t0) || !ends.Equal(t0.Add(4*time.Minute)) || first.alerts[0]["generatorURL"] == "" {
			t.Errorf("first push at %v: %v", first.at.Sub(t0), first.alerts)
		}
		var resolvedPosts int
		var lastAt time.Time
		for _, ps := range posts {
			end, _ := time.Parse(time.RFC3339, ps.alerts[0]["endsAt"].(string))
			if !end.After(ps.at) {
				resolvedPosts++
			}
			lastAt = ps.at
		}
		// At once, then every minute for five minutes.
		if resolvedPosts < 5 || resolvedPosts > 7 || lastAt.Sub(t0) > 9*time.Minute {
			t.Errorf("resolved pushed %d times, the last at %v", resolvedPosts, lastAt.Sub(t0))
		}
	})
}

// TestReset: a dispatcher reset (its node stopped notifying for the
// cluster) forgets its groups, so alerts it no longer hears about are
// never repeated from it.
func TestReset(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{}
		f := start(t, tsdbtest.NewKV(), in)
		defer f.stop()
		f.d.Notify(context.Background(), []*alerting.Alert{alert("HighCPU", "a", time.Now(), false)})
		time.Sleep(time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 1 {
			t.Fatalf("%d notifications before the reset, want 1", len(got))
		}
		f.d.Reset()
		time.Sleep(2 * time.Hour) // past repeat_interval: nothing repeats
		synctest.Wait()
		if got := in.take(); len(got) != 0 {
			t.Errorf("%d notifications after the reset, want none: %+v", len(got), got)
		}
	})
}

// downKV is a KV whose writes fail while down is set (Kafka unreachable,
// for the cluster's shared state).
type downKV struct {
	tsdb.KV
	down atomic.Bool
}

func (k *downKV) Put(ctx context.Context, key string, v []byte) error {
	if k.down.Load() {
		return fmt.Errorf("write %s: %w", key, tsdb.ErrUnavailable)
	}
	return k.KV.Put(ctx, key, v)
}

// TestLogUnavailable: a notification sent while the notification log
// cannot be written is not sent again at the next flushes; once the store
// is back, the next write keeps it there.
func TestLogUnavailable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		in := &inbox{}
		kv := &downKV{KV: tsdbtest.NewKV()}
		f := start(t, kv, in)
		defer f.stop()
		ctx := context.Background()
		kv.down.Store(true)
		a := alert("HighCPU", "a", time.Now(), false)
		for range 30 {
			f.d.Notify(ctx, []*alerting.Alert{a})
			time.Sleep(time.Minute) // synctest: advances the bubble's fake clock; six group intervals
		}
		synctest.Wait()
		if got := in.take(); len(got) != 1 {
			t.Fatalf("%d notifications with the log unwritable, want 1", len(got))
		}
		kv.down.Store(false)
		r := *a
		r.EndsAt = time.Now()
		f.d.Notify(ctx, []*alerting.Alert{&r})
		time.Sleep(10 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := in.take(); len(got) != 1 || got[0].msg.Status != "resolved" {
			t.Fatalf("after the store came back: %+v", got)
		}
	})
}
