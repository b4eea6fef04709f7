package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// startOwnerEnv is startEnv for one of several managers sharing kv: it
// evaluates the rules owns says it owns.
func startOwnerEnv(t *testing.T, store *db.DB, kv tsdb.KV, groups []*alerting.Group, owns func(string) bool) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	engine := query.NewEngine(store, eval.Options{Now: func() int64 { return time.Now().UnixMilli() }})
	src := alerting.NewPollSource(engine, alerting.PollOptions{})
	rec := &recorder{}
	m, err := alerting.New(alerting.Options{Subscribe: src.Subscribe, KV: kv, Appender: store, Notifier: rec, Step: minute,
		Backfill: 10 * minute, Owns: owns})
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

// TestOwnerHandOver: two managers share a KV (two query nodes of a
// cluster) and each evaluates only the rules it owns. The other shows the
// owner's saved state. When the rule moves (its owner died), the new owner
// resumes from the saved state: the firing alert stays firing with no
// second pending>firing, the old owner resolves nothing, and the
// resolution happens once, on the new owner.
func TestOwnerHandOver(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// Active from t0+2m to t0+10m.
		vals := []float64{50, 50, 90, 90, 90, 90, 90, 90, 90, 90, 90, 50, 50, 50, 50, 50}
		store := querytest.Open(t, minute, t0+time.Hour.Milliseconds(), cpuSeries("a", t0, vals...))
		kv := &countingKV{KV: newSharedKV()}
		groups := parseGroups(t, cpuRules)
		var owner atomic.Value
		owner.Store("a")
		a := startOwnerEnv(t, store, kv, groups, func(id string) bool { return id == "hosts/HighCPU" && owner.Load() == "a" })
		defer a.stop()
		b := startOwnerEnv(t, store, kv, groups, func(id string) bool { return id == "hosts/HighCPU" && owner.Load() == "b" })
		defer b.stop()
		ctx := context.Background()

		time.Sleep(6*time.Minute + time.Second) // firing since t0+4m (for: 2m)
		synctest.Wait()
		if err := b.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		for name, e := range map[string]*env{"a": a, "b": b} {
			if got := states(e.m); !cmp.Equal(got, map[string]string{"HighCPU/a": "firing"}) {
				t.Errorf("alerts on %s = %v, want HighCPU/a firing", name, got)
			}
		}
		if b.rec.n() != 0 {
			t.Errorf("b, which does not own the rule, notified %d times", b.rec.n())
		}
		if st := b.m.Rules()[0]; st.Health != "ok" || len(st.Instances) != 1 {
			t.Errorf("b's view of the rule: %+v", st)
		}

		// The rule moves to b, as when a dies: a hands it over without
		// resolving anything, b resumes from the saved state.
		owner.Store("b")
		aCalls := a.rec.n()
		if err := a.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // t0+8m: still firing, now on b
		synctest.Wait()
		if got := states(b.m); !cmp.Equal(got, map[string]string{"HighCPU/a": "firing"}) {
			t.Errorf("alerts on b after the hand-over = %v, want HighCPU/a firing", got)
		}
		if last := b.rec.last(); len(last) != 1 || last[0].Resolved() || last[0].StartsAt.UnixMilli() != t0+2*minute {
			t.Errorf("b's notification after the hand-over = %+v, want the alert firing since t0+2m", last)
		}
		time.Sleep(6 * time.Minute) // t0+14m: resolved at t0+11m
		synctest.Wait()
		if a.rec.n() != aCalls {
			t.Errorf("a notified %d more times after handing the rule over", a.rec.n()-aCalls)
		}
		if last := b.rec.last(); len(last) != 1 || !last[0].Resolved() {
			t.Errorf("b's last notification = %+v, want the resolution", last)
		}
		trs, err := b.m.History(ctx, "", 0, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range trs {
			got = append(got, fmt.Sprintf("%s>%s@%d", tr.From, tr.To, (tr.At-t0)/minute))
		}
		want := []string{"inactive>pending@2", "pending>firing@4", "firing>resolved@11"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("transitions (-want +got):\n%s", diff)
		}
		// The state is written on transitions and changes of health, not
		// every step.
		if n := kv.puts("alerting/state/"); n != 4 {
			t.Errorf("%d state writes over 14 steps, want 4 (one per transition, and the first health)", n)
		}
	})
}

// TestOwnerRefreshGroups: a group saved through one manager is evaluated
// by the manager that owns its rule once it refreshes, and deleting it
// there retires the rule on its owner.
func TestOwnerRefreshGroups(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		store := querytest.Open(t, minute, t0+time.Hour.Milliseconds(), cpuSeries("a", t0, 90, 90, 90, 90, 90, 90, 90, 90))
		kv := newSharedKV()
		a := startOwnerEnv(t, store, kv, nil, func(string) bool { return false })
		defer a.stop()
		b := startOwnerEnv(t, store, kv, nil, func(string) bool { return true })
		defer b.stop()
		ctx := context.Background()
		synctest.Wait()
		g := parseGroups(t, `
groups:
  - name: api
    rules:
      - {alert: Hot, expr: 'name,cpu,:eq,80,:gt'}
`)[0]
		g.File = "" // as the API saves it
		if err := a.m.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // synctest: advances the bubble's fake clock
		synctest.Wait()
		if got := states(b.m); !cmp.Equal(got, map[string]string{"Hot/": "firing"}) {
			t.Errorf("alerts on b = %v; rules %+v", got, b.m.Rules())
		}
		if a.rec.n() != 0 || b.rec.n() == 0 {
			t.Errorf("notifications: a %d, b %d; want only b", a.rec.n(), b.rec.n())
		}
		if err := a.m.DeleteGroup(ctx, "api"); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if last := b.rec.last(); len(last) != 1 || !last[0].Resolved() {
			t.Errorf("b's last notification after the group was deleted on a = %+v, want the resolution", last)
		}
		if got := b.m.Groups(); len(got) != 0 {
			t.Errorf("b still has groups %v", got)
		}
	})
}

// states lists the manager's active alerts: rule/host → state.
func states(m *alerting.Manager) map[string]string {
	out := map[string]string{}
	for _, a := range m.Active() {
		out[a.Rule+"/"+a.Labels["host"]] = string(a.State)
	}
	return out
}

// newSharedKV is the store two managers share (the cluster's state topic
// in cluster mode).
func newSharedKV() tsdb.KV { return tsdbtest.NewKV() }

// countingKV counts the writes by key.
type countingKV struct {
	tsdb.KV
	mu   sync.Mutex
	keys []string
}

func (c *countingKV) Put(ctx context.Context, key string, value []byte) error {
	c.mu.Lock()
	c.keys = append(c.keys, key)
	c.mu.Unlock()
	return c.KV.Put(ctx, key, value)
}

// puts counts the writes of keys with prefix.
func (c *countingKV) puts(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.keys {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// n is the number of Notify calls.
func (r *recorder) n() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// TestSilencesShared: silences saved by one node are known to another
// sharing the store once it refreshes, and it can expire one it has not
// refreshed yet (an unknown id reads the store again).
func TestSilencesShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv := newSharedKV()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, err := alerting.OpenSilences(ctx, kv, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := alerting.OpenSilences(ctx, kv, clock)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Put(ctx, &alerting.Silence{Matchers: []alerting.SilenceMatcher{{Name: "host", Value: "a"}},
		StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"host": "a"}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.Muted(labels, now); len(got) != 1 || got[0] != id {
		t.Errorf("b.Muted after Refresh = %v, want [%s]", got, id)
	}
	id2, err := a.Put(ctx, &alerting.Silence{Matchers: []alerting.SilenceMatcher{{Name: "host", Value: "b"}},
		StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Expire(ctx, id2); err != nil {
		t.Errorf("b.Expire of a silence a just saved: %v", err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.Muted(map[string]string{"host": "b"}, now.Add(time.Second)); len(got) != 0 {
		t.Errorf("a still mutes with the silence b expired: %v", got)
	}
	if err := b.Expire(ctx, "no-such-id"); !errors.Is(err, alerting.ErrNotFound) {
		t.Errorf("Expire(unknown) = %v, want ErrNotFound", err)
	}
}

// TestStateWriteRate measures what 100 rules write to their KV per step
// (in cluster mode each write is a record of the shared state topic), for
// three shapes of data: no alert, every rule firing steadily, and every
// rule flapping at every step (the worst case). State is written on
// transitions and changes of health, never merely because a step passed.
// go test -run StateWriteRate -v ./alerting prints the figures
// (docs/cluster.md "Shared state" quotes them).
func TestStateWriteRate(t *testing.T) {
	t.Parallel()
	const rules, steps = 100, 60
	shapes := []struct {
		name string
		v    func(rule, step int) float64
		max  int // writes per step after the first
	}{
		{"quiet", func(int, int) float64 { return 0 }, 0},
		{"firing", func(int, int) float64 { return 1 }, 0},
		// Per rule and step: the state, and a history record per
		// transition (firing>resolved, or inactive>pending>firing).
		{"flapping", func(_, s int) float64 { return float64(s % 2) }, 3 * rules},
	}
	for _, sh := range shapes {
		synctest.Test(t, func(t *testing.T) {
			src := &manualSource{}
			kv := &countingKV{KV: tsdbtest.NewKV()}
			m, err := alerting.New(alerting.Options{Subscribe: src.subscribe, KV: kv, Notifier: &recorder{}, Step: minute})
			if err != nil {
				t.Fatal(err)
			}
			var y strings.Builder
			y.WriteString("groups:\n  - name: g\n    rules:\n")
			for i := range rules {
				fmt.Fprintf(&y, "      - {alert: R%d, expr: 'name,r%d,:eq', nodata: ok}\n", i, i)
			}
			if err := m.SetFileGroups(parseGroups(t, y.String())); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { m.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			synctest.Wait()
			first := 0
			for s := range steps {
				for i := range rules {
					line := alerting.Line{Tags: map[string]string{"name": fmt.Sprintf("r%d", i)}, Start: t0 + int64(s)*minute, Step: minute,
						Values: []float64{sh.v(i, s)}}
					src.push(fmt.Sprintf("name,r%d,:eq", i), alerting.Update{End: t0 + int64(s+1)*minute, Lines: []alerting.Line{line}})
				}
				synctest.Wait()
				if s == 0 {
					first = kv.puts("")
				}
			}
			perStep := float64(kv.puts("")-first) / (steps - 1)
			t.Logf("%-8s %d rules: %d writes at the first step, then %.1f writes per step (%.2f records/s at a 60 s step, %.0f at 1 s)",
				sh.name, rules, first, perStep, perStep/60, perStep)
			if perStep > float64(sh.max) {
				t.Errorf("%s: %.1f writes per step, want at most %d", sh.name, perStep, sh.max)
			}
		})
	}
}

// TestRefreshKeepsRules: reading the same groups again (every read of the
// alerting API in cluster mode) neither restarts a rule nor loses its
// state.
func TestRefreshKeepsRules(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var subs atomic.Int64
		src := &manualSource{}
		subscribe := func(ctx context.Context, req alerting.Request, sink func(alerting.Update)) (func(), error) {
			subs.Add(1)
			return src.subscribe(ctx, req, sink)
		}
		m, err := alerting.New(alerting.Options{Subscribe: subscribe, KV: tsdbtest.NewKV(), Step: minute,
			Owns: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		g, err := alerting.ParseGroup([]byte(`{"name":"g","interval":"2m","rules":[{"alert":"A","expr":"name,a,:eq,1,:gt","for":"3m",
"keep_firing_for":"1m","nodata":"alerting","labels":{"severity":"page"},"annotations":{"summary":"{{ .Value }}"}}]}`), alerting.ParseOptions{Step: minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.PutGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if err := m.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := subs.Load(); n != 1 {
			t.Errorf("%d subscriptions after 5 refreshes of an unchanged group, want 1", n)
		}
	})
}
