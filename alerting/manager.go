package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// Request asks a source for the per-step lines of an expression.
type Request struct {
	Expr     string
	Step     int64 // ms
	Backfill int64 // ms of history to deliver first
}

// Line is one line of an expression over [Start, Start+len(Values)*Step).
type Line struct {
	// ID, when set, identifies the line for the life of the subscription,
	// so its labels and fingerprint are computed once.
	ID     string
	Tags   map[string]string
	Start  int64 // ms
	Step   int64 // ms
	Values []float64
}

// Update is what a source delivers when steps close: the lines of the
// expression over the steps ending before End, or the error that
// evaluating them met.
type Update struct {
	End   int64 // ms, exclusive
	Lines []Line
	Err   error
}

// SubscribeFunc streams the lines of req.Expr to sink, first the backfill,
// then every step as it closes, until stop is called or ctx ends. sink is
// called from one goroutine at a time per subscription. cmd builds it on
// the live evaluator; PollSource is one over the query engine.
type SubscribeFunc func(ctx context.Context, req Request, sink func(Update)) (stop func(), err error)

// ExemplarFunc returns up to limit trace ids of exemplars of the series
// behind expr whose tags match the alert's labels, in [start, end) ms.
type ExemplarFunc func(ctx context.Context, expr string, labels map[string]string, start, end int64, limit int) ([]string, error)

// Options configure a Manager.
type Options struct {
	// Subscribe delivers each rule's lines. Required.
	Subscribe SubscribeFunc
	// KV keeps API groups, rule state and history. Required.
	KV tsdb.KV
	// Appender receives the ALERTS series; nil skips them.
	Appender tsdb.Appender
	// Notifier receives alerts; nil drops them.
	Notifier Notifier
	// Exemplars, when set, adds trace ids to alerts that start firing.
	Exemplars ExemplarFunc
	// Step is the storage step (ms), the default group interval.
	Step int64
	// Backfill bounds the steps replayed after a restart (ms); default 1h.
	Backfill int64
	// Retention is how long history is kept; default 15 days.
	Retention time.Duration
	// ExternalURL prefixes generatorURL links to the UI.
	ExternalURL string
	// Workers evaluate rules in parallel; default GOMAXPROCS.
	Workers int
	// Now is the clock; default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry

	// Owns, when set, says whether this node evaluates the rule ruleID
	// (its group and alert name, "group/alert"); nil: every rule. Several
	// query nodes sharing one KV (cluster mode) each evaluate the rules
	// they own, so that a rule pages once; the others show its state as
	// its owner last saved it (Refresh). It is called with the Manager's
	// lock held: it must be cheap and must not call the Manager. After
	// its answers change, call Refresh.
	Owns func(ruleID string) bool
}

func (o Options) withDefaults() Options {
	if o.Backfill == 0 {
		o.Backfill = 3600_000
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Retention == 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Subscribe == nil:
		return errors.New("alerting: no Subscribe function")
	case o.KV == nil:
		return errors.New("alerting: no KV store")
	case o.Step <= 0:
		return errors.New("alerting: storage step must be positive")
	}
	return nil
}

// KV key prefixes.
const (
	keyGroups  = "alerting/groups/"
	keyState   = "alerting/state/"
	keyHistory = "alerting/history/"
)

// Manager owns the rules, evaluates them as their sources deliver steps,
// and keeps their state. It is safe for concurrent use.
type Manager struct {
	opts Options

	evalTime  *lib.Timer
	evalFails *lib.Counter
	missed    *lib.Counter

	mu struct {
		sync.Mutex
		fileGroups []*Group
		apiGroups  map[string]*Group
		rules      map[string]*ruleEntry // by ruleKey
		ctx        context.Context       // the Run context, nil before Run
		// remote is the saved state of the rules another node owns
		// (Options.Owns), by ruleKey, as of the last Refresh.
		remote map[string]*stateRecord
	}
	started atomic.Int64 // ms when Run began

	// ready lists rules with queued updates for the workers; each rule is
	// in it at most once (ruleEntry.queued), so it is bounded by the rules.
	ready struct {
		sync.Mutex
		list []*ruleEntry
	}
	wake chan struct{} // capacity 1: a pending wake-up is enough
}

// maxQueue bounds the updates queued for one rule; past it the oldest are
// dropped and counted as missed evaluations.
const maxQueue = 64

// ruleEntry is a running rule. mu serializes its evaluations.
type ruleEntry struct {
	key   string
	group *Group
	step  int64
	// mu serializes evaluations of the rule's state; a rule replaced by a
	// new definition shares it with its successor, whose state it is.
	mu    *sync.Mutex
	state *ruleState
	stop  func()
	// gone is set when the rule was removed or handed to another node:
	// updates still queued are dropped, its state is no longer saved.
	gone atomic.Bool

	// q holds updates the source delivered and no worker took yet: the
	// source's sink must not block, so it only queues.
	q struct {
		sync.Mutex
		updates []Update
		queued  bool // in Manager.ready or being worked on
	}
}

// New returns a Manager; Run starts evaluating.
func New(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	m := &Manager{opts: opts, wake: make(chan struct{}, 1)}
	m.evalTime = opts.Registry.Timer("alerting.evaluationTime")
	m.evalFails = opts.Registry.Counter("alerting.evaluationFailures")
	m.missed = opts.Registry.Counter("alerting.missedEvaluations")
	m.mu.apiGroups = map[string]*Group{}
	m.mu.rules = map[string]*ruleEntry{}
	return m, nil
}

// ruleKey names a rule's state: group and alert.
func ruleKey(group, alert string) string { return group + "/" + alert }

// Run loads the groups saved through the API and the state of every rule,
// evaluates until ctx ends, then stops every subscription.
func (m *Manager) Run(ctx context.Context) error {
	err := m.opts.KV.Scan(ctx, keyGroups, func(_ string, v []byte) error {
		g, err := ParseGroup(v, ParseOptions{Step: m.opts.Step})
		if err != nil {
			m.opts.Logger.Warn("skip saved rule group", "err", err)
			return nil
		}
		m.mu.Lock()
		m.mu.apiGroups[g.Name] = g
		m.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("load rule groups: %w", err)
	}
	m.started.Store(m.opts.Now().UnixMilli())
	var wg sync.WaitGroup
	for range m.opts.Workers {
		wg.Go(func() { m.work(ctx) })
	}
	m.mu.Lock()
	m.mu.ctx = ctx
	m.syncLocked()
	m.mu.Unlock()

	t := time.NewTicker(time.Hour)
	defer t.Stop()
	m.sweepHistory(ctx)
	for {
		select {
		case <-ctx.Done():
			m.mu.Lock()
			for _, e := range m.mu.rules {
				if e.stop != nil {
					e.stop()
				}
			}
			m.mu.rules = map[string]*ruleEntry{}
			m.mu.ctx = nil
			m.mu.Unlock()
			wg.Wait()
			return nil
		case <-t.C:
			m.sweepHistory(ctx)
		}
	}
}

// enqueue is the sink of a rule's subscription: it queues u for a worker
// and never blocks.
func (m *Manager) enqueue(e *ruleEntry, u Update) {
	e.q.Lock()
	if len(e.q.updates) >= maxQueue {
		e.q.updates = e.q.updates[1:]
		m.missed.Increment()
	}
	e.q.updates = append(e.q.updates, u)
	sched := !e.q.queued
	e.q.queued = true
	e.q.Unlock()
	if !sched {
		return
	}
	m.ready.Lock()
	m.ready.list = append(m.ready.list, e)
	m.ready.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// work evaluates queued updates until ctx ends.
func (m *Manager) work(ctx context.Context) {
	for {
		m.ready.Lock()
		var e *ruleEntry
		if n := len(m.ready.list); n > 0 {
			e = m.ready.list[0]
			m.ready.list[0] = nil
			m.ready.list = m.ready.list[1:]
			if n > 1 {
				// Others are waiting: pass the wake-up on.
				select {
				case m.wake <- struct{}{}:
				default:
				}
			}
		}
		m.ready.Unlock()
		if e == nil {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
			}
			continue
		}
		for {
			e.q.Lock()
			if len(e.q.updates) == 0 {
				e.q.queued = false
				e.q.Unlock()
				break
			}
			u := e.q.updates[0]
			e.q.updates = e.q.updates[1:]
			e.q.Unlock()
			m.process(ctx, e, e.step, u)
		}
	}
}

// SetFileGroups replaces the groups read from the rules directory. Groups
// whose names clash with API groups are an error.
func (m *Manager) SetFileGroups(groups []*Group) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, g := range groups {
		if _, ok := m.mu.apiGroups[g.Name]; ok {
			return &RuleError{File: g.File, Field: "name", Msg: fmt.Sprintf("group %q is also saved through the API", g.Name)}
		}
	}
	m.mu.fileGroups = groups
	m.syncLocked()
	return nil
}

// PutGroup saves a group through the API, replacing one of the same name.
func (m *Manager) PutGroup(ctx context.Context, g *Group) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, fg := range m.mu.fileGroups {
		if fg.Name == g.Name {
			return &RuleError{Field: "name", Msg: fmt.Sprintf("group %q is defined in rule file %s", g.Name, fg.File)}
		}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	if err := m.opts.KV.Put(ctx, keyGroups+g.Name, b); err != nil {
		return fmt.Errorf("save rule group %s: %w", g.Name, err)
	}
	m.mu.apiGroups[g.Name] = g
	m.syncLocked()
	return nil
}

// ErrNotFound is returned for a group, silence or rule that does not exist.
var ErrNotFound = errors.New("alerting: not found")

// DeleteGroup removes a group saved through the API.
func (m *Manager) DeleteGroup(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.mu.apiGroups[name]; !ok {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if err := m.opts.KV.Put(ctx, keyGroups+name, nil); err != nil {
		return fmt.Errorf("delete rule group %s: %w", name, err)
	}
	delete(m.mu.apiGroups, name)
	m.syncLocked()
	return nil
}

// groupsLocked returns every group, files first.
func (m *Manager) groupsLocked() []*Group {
	out := slices.Clone(m.mu.fileGroups)
	for _, name := range slices.Sorted(maps.Keys(m.mu.apiGroups)) {
		out = append(out, m.mu.apiGroups[name])
	}
	return out
}

// syncLocked starts, restarts and stops rules to match the groups. A rule
// whose definition did not change keeps running; one that changed keeps
// its state but gets a new subscription.
func (m *Manager) syncLocked() {
	ctx := m.mu.ctx
	if ctx == nil {
		return
	}
	want, defined := map[string]bool{}, map[string]bool{}
	for _, g := range m.groupsLocked() {
		for _, r := range g.Rules {
			key := ruleKey(g.Name, r.Alert)
			defined[key] = true
			if m.opts.Owns != nil && !m.opts.Owns(key) {
				continue
			}
			want[key] = true
			old := m.mu.rules[key]
			if old != nil && sameRule(old.state.rule, r) && old.group.Interval == g.Interval {
				old.mu.Lock() // process reads the group under it
				old.group = g
				old.mu.Unlock()
				continue
			}
			if old != nil && old.stop != nil {
				old.stop()
			}
			e := &ruleEntry{key: key, group: g, mu: &sync.Mutex{}}
			if old != nil {
				e.mu = old.mu
				old.mu.Lock()
				e.state = old.state
				e.state.rule = r
				e.state.lines = nil // labels may have changed
				old.mu.Unlock()
			} else {
				e.state = m.loadState(ctx, key, r, g.Name)
			}
			m.mu.rules[key] = e
			m.subscribe(ctx, e, r)
		}
	}
	for key, e := range m.mu.rules {
		if want[key] {
			continue
		}
		if e.stop != nil {
			e.stop()
		}
		e.gone.Store(true)
		delete(m.mu.rules, key)
		if defined[key] {
			// Another node owns it now and resumes from its saved
			// state: nothing is resolved, nothing forgotten.
			m.opts.Logger.Info("rule handed over", "rule", key)
			continue
		}
		m.retire(ctx, e)
	}
}

// Refresh reads again what other nodes sharing the KV may have changed
// (cluster mode): the groups saved through the API, and the saved state of
// the rules this node does not own (Options.Owns), which Rules shows. It
// then starts and stops rules as the groups and Owns now say. It does
// nothing more before Run.
func (m *Manager) Refresh(ctx context.Context) error {
	groups := map[string]*Group{}
	err := m.opts.KV.Scan(ctx, keyGroups, func(_ string, v []byte) error {
		g, err := ParseGroup(v, ParseOptions{Step: m.opts.Step})
		if err != nil {
			m.opts.Logger.Warn("skip saved rule group", "err", err)
			return nil
		}
		groups[g.Name] = g
		return nil
	})
	if err != nil {
		return fmt.Errorf("load rule groups: %w", err)
	}
	var remote map[string]*stateRecord
	if m.opts.Owns != nil {
		remote = map[string]*stateRecord{}
		err = m.opts.KV.Scan(ctx, keyState, func(k string, v []byte) error {
			var rec stateRecord
			if json.Unmarshal(v, &rec) == nil {
				remote[k[len(keyState):]] = &rec
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load rule state: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.ctx == nil {
		return nil
	}
	for _, fg := range m.mu.fileGroups {
		if _, ok := groups[fg.Name]; ok {
			m.opts.Logger.Warn("skip saved rule group: a rule file defines it", "group", fg.Name, "file", fg.File)
			delete(groups, fg.Name)
		}
	}
	m.mu.apiGroups = groups
	m.mu.remote = remote
	m.syncLocked()
	return nil
}

// retire resolves what a removed rule had firing and forgets its state.
func (m *Manager) retire(ctx context.Context, e *ruleEntry) {
	e.mu.Lock()
	now := m.opts.Now().UnixMilli()
	var alerts []*Alert
	for _, in := range e.state.instances {
		if in.State == Firing {
			in.State, in.ResolvedAt = Resolved, now
			alerts = append(alerts, m.alert(e.state, in))
		}
	}
	e.mu.Unlock()
	if err := m.opts.KV.Put(ctx, keyState+e.key, nil); err != nil {
		m.opts.Logger.Warn("delete rule state", "rule", e.key, "err", err)
	}
	if len(alerts) > 0 && m.opts.Notifier != nil {
		// Notify queues and returns (its contract), so m.mu may be held.
		m.opts.Notifier.Notify(ctx, alerts)
	}
}

func sameRule(a, b *Rule) bool {
	return a.Alert == b.Alert && a.Expr == b.Expr && a.For == b.For && a.KeepFiringFor == b.KeepFiringFor &&
		a.NoData == b.NoData && maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations)
}

// interval is a group's evaluation step in ms.
func (m *Manager) interval(g *Group) int64 {
	if g.Interval > 0 {
		return time.Duration(g.Interval).Milliseconds()
	}
	return m.opts.Step
}

func (m *Manager) subscribe(ctx context.Context, e *ruleEntry, r *Rule) {
	step := m.interval(e.group)
	e.step = step
	backfill := max(m.opts.Backfill, 2*time.Duration(r.For).Milliseconds())
	backfill -= backfill % step
	stop, err := m.opts.Subscribe(ctx, Request{Expr: r.Expr, Step: step, Backfill: backfill}, func(u Update) {
		m.enqueue(e, u)
	})
	if err != nil {
		m.opts.Logger.Warn("subscribe rule", "rule", e.key, "err", err)
		end := m.opts.Now().UnixMilli()
		end -= end % step
		m.enqueue(e, Update{End: end + step, Err: err})
		return
	}
	e.stop = stop
}

// process runs the state machine over the steps of u not yet evaluated.
func (m *Manager) process(ctx context.Context, e *ruleEntry, step int64, u Update) {
	if e.gone.Load() {
		return
	}
	start := m.opts.Now()
	started := m.started.Load()
	e.mu.Lock()
	rs := e.state
	groupName := e.group.Name
	times := stepTimes(u, step)
	fresh := rs.lastEval == 0
	health := rs.health
	var trs []Transition
	var alertsSeries []alertsPoint
	evaluated := 0
	for _, t := range times {
		if t <= rs.lastEval || fresh && t != times[len(times)-1] {
			continue
		}
		if !fresh && rs.lastEval > 0 && t-rs.lastEval > step {
			m.missed.Add(float64((t-rs.lastEval)/step - 1))
		}
		// Steps that closed before this process ran hold on missing data.
		hold := rs.restored && t < started+step
		trs = append(trs, rs.eval(t, rs.cached(samplesAt(u.Lines, t), u.Lines), u.Err, hold)...)
		alertsSeries = appendAlertsPoints(alertsSeries, rs, t)
		evaluated++
	}
	var snapshot []byte
	var alerts []*Alert
	// Saved on a transition, and when the health changes (for the other
	// nodes' view in cluster mode): not at every step, which would write
	// a record per rule and step.
	if len(trs) > 0 || rs.health != health {
		snapshot = rs.marshal()
	}
	if evaluated > 0 {
		alerts = m.alertsToSend(rs)
	}
	e.mu.Unlock()
	if evaluated == 0 {
		return
	}
	if u.Err != nil {
		m.evalFails.Increment()
	}
	if snapshot != nil && !e.gone.Load() {
		if err := m.opts.KV.Put(ctx, keyState+e.key, snapshot); err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("save rule state", "rule", e.key, "err", err)
		}
		m.recordHistory(ctx, e.key, trs)
	}
	m.appendAlerts(ctx, alertsSeries)
	m.addExemplars(ctx, e, trs, alerts)
	if len(alerts) > 0 && m.opts.Notifier != nil {
		m.opts.Notifier.Notify(ctx, alerts)
	}
	m.opts.Registry.Timer("alerting.groupEvaluationTime", "group", groupName).Record(m.opts.Now().Sub(start))
	m.evalTime.Record(m.opts.Now().Sub(start))
}

// stepTimes lists the step times u covers, ascending: every value's time,
// or the last step before End when there is no line.
func stepTimes(u Update, step int64) []int64 {
	var ts []int64
	for _, l := range u.Lines {
		for i := range l.Values {
			ts = append(ts, l.Start+int64(i)*l.Step)
		}
	}
	if len(ts) == 0 || u.Err != nil {
		return []int64{u.End - step}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// samplesAt picks each line's value at t.
func samplesAt(lines []Line, t int64) []Sample {
	out := make([]Sample, 0, len(lines))
	for _, l := range lines {
		if l.Step <= 0 || t < l.Start || (t-l.Start)%l.Step != 0 {
			continue
		}
		i := int((t - l.Start) / l.Step)
		if i >= len(l.Values) {
			continue
		}
		out = append(out, Sample{Tags: l.Tags, Value: l.Values[i], id: l.ID})
	}
	return out
}

// alertsToSend lists the rule's firing alerts and recently resolved ones.
func (m *Manager) alertsToSend(rs *ruleState) []*Alert {
	var out []*Alert
	for _, fp := range slices.Sorted(maps.Keys(rs.instances)) {
		in := rs.instances[fp]
		if in.State == Firing || in.State == Resolved {
			out = append(out, m.alert(rs, in))
		}
	}
	return out
}

func (m *Manager) alert(rs *ruleState, in *Instance) *Alert {
	a := &Alert{
		Rule: rs.rule.Alert, Labels: in.Labels, Annotations: in.Annotations, Fingerprint: in.Fingerprint,
		StartsAt:     time.UnixMilli(in.FiredAt).UTC(),
		GeneratorURL: RuleURL(m.opts.ExternalURL, rs.rule.Alert),
		Value:        in.Value,
		TraceIDs:     in.traceIDs,
	}
	if in.ActiveAt > 0 {
		a.StartsAt = time.UnixMilli(in.ActiveAt).UTC()
	}
	if in.State == Resolved {
		a.EndsAt = time.UnixMilli(in.ResolvedAt).UTC()
	}
	return a
}

// addExemplars looks up trace ids for instances that started firing.
func (m *Manager) addExemplars(ctx context.Context, e *ruleEntry, trs []Transition, alerts []*Alert) {
	if m.opts.Exemplars == nil {
		return
	}
	for _, tr := range trs {
		if tr.To != Firing {
			continue
		}
		fp := Fingerprint(tr.Labels)
		e.mu.Lock()
		in := e.state.instances[fp]
		var start int64
		if in != nil {
			start = in.ActiveAt
		}
		expr := e.state.rule.Expr
		e.mu.Unlock()
		if in == nil {
			continue
		}
		step := e.step
		ids, err := m.opts.Exemplars(ctx, expr, tr.Labels, start-step, tr.At+step, 3)
		if err != nil {
			m.opts.Logger.Warn("look up exemplars", "rule", e.key, "err", err)
			continue
		}
		e.mu.Lock()
		in.traceIDs = ids
		e.mu.Unlock()
		for _, a := range alerts {
			if a.Fingerprint == fp {
				a.TraceIDs = ids
			}
		}
	}
}

// stateRecord is the persisted form of a rule's state.
type stateRecord struct {
	LastEval  int64            `json:"lastEval"`
	Instances []instanceRecord `json:"instances"`
	// Health and LastError, for the other nodes' view of the rule
	// (cluster mode) and for the owner that takes it over.
	Health    string `json:"health,omitempty"`
	LastError string `json:"lastError,omitempty"`
}

type instanceRecord struct {
	Instance
	V        *float64 `json:"value,omitempty"`
	TraceIDs []string `json:"traceIDs,omitempty"`
}

func (rs *ruleState) marshal() []byte {
	rec := stateRecord{LastEval: rs.lastEval, Health: rs.health, LastError: rs.lastErr}
	for _, fp := range slices.Sorted(maps.Keys(rs.instances)) {
		in := rs.instances[fp]
		rec.Instances = append(rec.Instances, instanceRecord{Instance: *in, V: in.jsonValue(), TraceIDs: in.traceIDs})
	}
	b, _ := json.Marshal(rec)
	return b
}

// loadState restores a rule's persisted state, or starts it fresh.
func (m *Manager) loadState(ctx context.Context, key string, r *Rule, group string) *ruleState {
	rs := newRuleState(r, group)
	b, err := m.opts.KV.Get(ctx, keyState+key)
	if err != nil {
		if !errors.Is(err, tsdb.ErrNotFound) {
			m.opts.Logger.Warn("load rule state", "rule", key, "err", err)
		}
		return rs
	}
	var rec stateRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		m.opts.Logger.Warn("decode rule state", "rule", key, "err", err)
		return rs
	}
	rs.lastEval = rec.LastEval
	rs.restored = true
	if rec.Health != "" {
		rs.health, rs.lastErr = rec.Health, rec.LastError
	}
	for _, in := range rec.instances() {
		rs.instances[in.Fingerprint] = in
	}
	return rs
}

// instances returns the saved instances, new copies.
func (rec *stateRecord) instances() []*Instance {
	out := make([]*Instance, 0, len(rec.Instances))
	for _, ir := range rec.Instances {
		in := ir.Instance
		in.Value = math.NaN()
		if ir.V != nil {
			in.Value = *ir.V
		}
		in.traceIDs = slices.Clone(ir.TraceIDs)
		out = append(out, &in)
	}
	return out
}
