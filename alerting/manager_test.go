package alerting_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is where synctest's clock starts: 2000-01-01T00:00:00Z.
const t0 = int64(946684800000)

const minute = int64(60_000)

// recorder is a Notifier that keeps every call.
type recorder struct {
	mu    sync.Mutex
	calls [][]*alerting.Alert
}

func (r *recorder) Notify(_ context.Context, alerts []*alerting.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, alerts)
}

func (r *recorder) last() []*alerting.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return nil
	}
	return r.calls[len(r.calls)-1]
}

// env is a manager on a poll source over a real in-memory store.
type env struct {
	store *db.DB
	kv    tsdb.KV
	rec   *recorder
	m     *alerting.Manager
	stop  func()
}

func cpuSeries(host string, start int64, vals ...float64) querytest.Input {
	return querytest.Input{Tags: tags.New("name", "cpu", "host", host, "atlas.dstype", "gauge"), Start: start, Values: vals}
}

func startEnv(t *testing.T, store *db.DB, kv tsdb.KV, groups []*alerting.Group) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	engine := query.NewEngine(store, eval.Options{Now: func() int64 { return time.Now().UnixMilli() }})
	src := alerting.NewPollSource(engine, alerting.PollOptions{})
	rec := &recorder{}
	m, err := alerting.New(alerting.Options{Subscribe: src.Subscribe, KV: kv, Appender: store, Notifier: rec, Step: minute, Backfill: 10 * minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetFileGroups(groups); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { src.Run(ctx) })
	wg.Go(func() { m.Run(ctx) })
	return &env{store: store, kv: kv, rec: rec, m: m, stop: func() { cancel(); wg.Wait() }}
}

func parseGroups(t *testing.T, y string) []*alerting.Group {
	t.Helper()
	gs, err := alerting.ParseFile("rules.yaml", []byte(y), alerting.ParseOptions{Step: minute})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

const cpuRules = `
groups:
  - name: hosts
    rules:
      - alert: HighCPU
        expr: name,cpu,:eq,(,host,),:by,80,:gt
        for: 2m
        labels: {severity: page}
        annotations: {summary: 'cpu of {{ index .Tags "host" }} is high'}
`

func TestStateMachine(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := querytest.Open(t, minute, t0+time.Hour.Milliseconds(),
			cpuSeries("a", t0-5*minute, 50, 50, 50, 50, 50, 50, 50, 90, 90, 90, 90, 50, 50, 50, 50),
			cpuSeries("b", t0-5*minute, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10))
		e := startEnv(t, store, tsdbtest.NewKV(), parseGroups(t, cpuRules))
		defer e.stop()
		time.Sleep(9*time.Minute + time.Second) // synctest: advances the bubble's fake clock
		synctest.Wait()
		trs, err := e.m.History(context.Background(), "", 0, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{"alertname": "HighCPU", "host": "a", "name": "cpu", "severity": "page"}
		want := []alerting.Transition{
			{Rule: "HighCPU", Labels: labels, From: alerting.Inactive, To: alerting.Pending, At: t0 + 2*minute, Value: ptr(1)},
			{Rule: "HighCPU", Labels: labels, From: alerting.Pending, To: alerting.Firing, At: t0 + 4*minute, Value: ptr(1)},
			{Rule: "HighCPU", Labels: labels, From: alerting.Firing, To: alerting.Resolved, At: t0 + 6*minute, Value: ptr(0)},
		}
		if diff := cmp.Diff(want, trs); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		// The resolution reached the notifier, after firing alerts.
		last := e.rec.last()
		if len(last) != 1 || !last[0].Resolved() || last[0].Annotations["summary"] != "cpu of a is high" {
			t.Errorf("last notification = %+v", last)
		}
		// ALERTS series: 1 while pending or firing.
		ss, err := store.Fetch(context.Background(), tsdb.FetchRequest{Query: tags.Eq("name", "ALERTS"), Start: t0, End: t0 + 8*minute, Step: minute})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]float64{}
		for _, s := range ss.Series {
			st, _ := s.Tags.Get("alertstate")
			got[st] = s.Values
		}
		n := math.NaN()
		wantAlerts := map[string][]float64{"pending": {n, n, 1, 1, n, n, n, n}, "firing": {n, n, n, n, 1, 1, n, n}}
		if diff := cmp.Diff(wantAlerts, got, cmp.Comparer(func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) })); diff != "" {
			t.Errorf("ALERTS (-want +got):\n%s", diff)
		}
	})
}

func ptr(v float64) *float64 { return &v }

// TestRestart stops the manager while an alert is pending and again while
// it fires, with no data reaching the store while it is down: the pending
// timer survives, the firing alert is neither resolved nor re-fired by the
// gap, and the resolution after the restart is still handed over.
func TestRestart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		nan := math.NaN()
		// a: active from t0+2m; nothing stored for the minutes the manager
		// is down (t0+3m..t0+4m and t0+8m..t0+9m); inactive from t0+11m.
		vals := []float64{50, 50, 90, nan, nan, 90, 90, 90, nan, nan, 90, 50, 50, 50}
		store := querytest.Open(t, minute, t0+time.Hour.Milliseconds(), cpuSeries("a", t0, vals...))
		kv := tsdbtest.NewKV()
		groups := parseGroups(t, `
groups:
  - name: hosts
    rules:
      - alert: HighCPU
        expr: name,cpu,:eq,(,host,),:by,80,:gt
        for: 3m
`)
		e := startEnv(t, store, kv, groups)
		time.Sleep(2*time.Minute + time.Second) // pending since t0+2m
		synctest.Wait()
		e.stop()
		time.Sleep(2 * time.Minute) // synctest: advances the bubble's fake clock
		e = startEnv(t, store, kv, groups)
		time.Sleep(3 * time.Minute) // t0+7m: fired at t0+5m
		synctest.Wait()
		e.stop()
		time.Sleep(2 * time.Minute) // synctest: advances the bubble's fake clock
		e = startEnv(t, store, kv, groups)
		time.Sleep(4 * time.Minute) // t0+13m
		synctest.Wait()
		e.stop()
		trs, err := e.m.History(context.Background(), "", 0, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range trs {
			got = append(got, fmt.Sprintf("%s>%s@%d", tr.From, tr.To, (tr.At-t0)/minute))
		}
		want := []string{"inactive>pending@2", "pending>firing@5", "firing>resolved@11"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		if last := e.rec.last(); len(last) != 1 || !last[0].Resolved() {
			t.Errorf("last notification = %+v", last)
		}
	})
}

// manualSource is a SubscribeFunc whose updates the test pushes.
type manualSource struct {
	mu    sync.Mutex
	sinks map[string]func(alerting.Update)
}

func (s *manualSource) subscribe(_ context.Context, req alerting.Request, sink func(alerting.Update)) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinks == nil {
		s.sinks = map[string]func(alerting.Update){}
	}
	s.sinks[req.Expr] = sink
	return func() {}, nil
}

func (s *manualSource) push(expr string, u alerting.Update) {
	s.mu.Lock()
	sink := s.sinks[expr]
	s.mu.Unlock()
	sink(u)
}

// TestNoDataAndError: a rule without lines goes to nodata (or stays quiet
// with nodata: ok, or fires with nodata: alerting), a failed evaluation
// goes to error and keeps the state of its instances, and both notify.
func TestNoDataAndError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src := &manualSource{}
		rec := &recorder{}
		m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: tsdbtest.NewKV(), Notifier: rec, Step: minute})
		if err != nil {
			t.Fatal(err)
		}
		gs := parseGroups(t, `
groups:
  - name: g
    rules:
      - {alert: Default, expr: 'name,a,:eq'}
      - {alert: Quiet, expr: 'name,b,:eq', nodata: ok}
      - {alert: Loud, expr: 'name,c,:eq', nodata: alerting}
`)
		if err := m.SetFileGroups(gs); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		line := func(v float64) []alerting.Line {
			return []alerting.Line{{Tags: map[string]string{"name": "a"}, Start: t0, Step: minute, Values: []float64{v}}}
		}
		src.push("name,a,:eq", alerting.Update{End: t0 + minute, Lines: line(1)})
		for _, e := range []string{"name,b,:eq", "name,c,:eq"} {
			src.push(e, alerting.Update{End: t0 + minute})
		}
		synctest.Wait()
		states := func() map[string]string {
			out := map[string]string{}
			for _, a := range m.Active() {
				out[a.Rule] = string(a.State)
			}
			return out
		}
		if diff := cmp.Diff(map[string]string{"Default": "firing", "Loud": "firing"}, states()); diff != "" {
			t.Errorf("after the first step (-want +got):\n%s", diff)
		}
		// Default's data goes away: nodata; then its evaluation fails:
		// error, nodata kept (an error says nothing about it).
		src.push("name,a,:eq", alerting.Update{End: t0 + 2*minute})
		synctest.Wait()
		if diff := cmp.Diff(map[string]string{"Default": "nodata", "Loud": "firing"}, states()); diff != "" {
			t.Errorf("without data (-want +got):\n%s", diff)
		}
		src.push("name,a,:eq", alerting.Update{End: t0 + 3*minute, Err: fmt.Errorf("fetch: disk on fire")})
		synctest.Wait()
		var kinds []string
		for _, a := range m.Active() {
			if a.Rule == "Default" {
				kinds = append(kinds, string(a.State)+":"+a.Labels["alertstate"]+":"+a.Annotations["error"])
			}
		}
		slices.Sort(kinds)
		if diff := cmp.Diff([]string{"error:error:fetch: disk on fire", "nodata:nodata:"}, kinds); diff != "" {
			t.Errorf("after a failed evaluation (-want +got):\n%s", diff)
		}
		rules := m.Rules()
		if rules[0].Health != "error" || rules[0].LastError != "fetch: disk on fire" {
			t.Errorf("rule status %+v", rules[0])
		}
		// The error reached the notifier as a firing alert.
		found := false
		for _, a := range rec.last() {
			if a.Labels["alertstate"] == "error" && !a.Resolved() {
				found = true
			}
		}
		if !found {
			t.Errorf("error not notified: %+v", rec.last())
		}
	})
}

// TestHistoryRetention: transitions older than the retention are swept
// (hourly), newer ones stay; a removed rule resolves what it had firing.
func TestHistoryRetention(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		src := &manualSource{}
		rec := &recorder{}
		m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: tsdbtest.NewKV(), Notifier: rec, Step: minute, Retention: 30 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		gs := parseGroups(t, "groups:\n  - name: g\n    rules:\n      - {alert: A, expr: 'name,a,:eq'}\n")
		m.SetFileGroups(gs)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		push := func(at int64, v float64) {
			src.push("name,a,:eq", alerting.Update{End: at + minute, Lines: []alerting.Line{{Tags: map[string]string{"name": "a"}, Start: at, Step: minute, Values: []float64{v}}}})
			synctest.Wait()
		}
		push(t0, 1)                  // firing at t0
		push(t0+minute, 0)           // resolved at t0+1m
		time.Sleep(50 * time.Minute) // synctest: advances the bubble's fake clock
		push(t0+50*minute, 1)        // firing again
		time.Sleep(11 * time.Minute) // the hourly sweep at t0+60m
		synctest.Wait()
		trs, _ := m.History(ctx, "A", 0, math.MaxInt64)
		var got []int64
		for _, tr := range trs {
			got = append(got, (tr.At-t0)/minute)
		}
		if diff := cmp.Diff([]int64{50, 50}, got); diff != "" {
			t.Errorf("history after the sweep, minutes (-want +got):\n%s", diff)
		}
		// Removing the rule resolves its firing alert.
		m.SetFileGroups(nil)
		synctest.Wait()
		if last := rec.last(); len(last) != 1 || !last[0].Resolved() {
			t.Errorf("after removing the rule: %+v", last)
		}
	})
}

// TestAPIGroupsPersist: a group saved through the API is back after a
// restart; a deleted one is not; a name clash with a file group is refused.
func TestAPIGroupsPersist(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		kv := tsdbtest.NewKV()
		src := &manualSource{}
		run := func(f func(m *alerting.Manager)) {
			m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: kv, Step: minute})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.SetFileGroups(parseGroups(t, cpuRules)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { m.Run(ctx); close(done) }()
			synctest.Wait()
			f(m)
			cancel()
			<-done
		}
		ctx := context.Background()
		run(func(m *alerting.Manager) {
			for _, name := range []string{"saved", "gone"} {
				g, err := alerting.ParseGroup([]byte(`{"name":"`+name+`","rules":[{"alert":"X","expr":"1"}]}`), alerting.ParseOptions{Step: minute})
				if err != nil {
					t.Fatal(err)
				}
				if err := m.PutGroup(ctx, g); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.DeleteGroup(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			clash := &alerting.Group{Name: "hosts", Rules: []*alerting.Rule{{Alert: "Y", Expr: "1"}}}
			if err := m.PutGroup(ctx, clash); err == nil {
				t.Error("a group named like a file group was saved")
			}
		})
		run(func(m *alerting.Manager) {
			var names []string
			for _, g := range m.Groups() {
				names = append(names, g.Name)
			}
			if diff := cmp.Diff([]string{"hosts", "saved"}, names); diff != "" {
				t.Errorf("groups after restart (-want +got):\n%s", diff)
			}
		})
	})
}
