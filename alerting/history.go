package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// AlertsName is the name tag of the series of alert states.
const AlertsName = "ALERTS"

// alertsPoint is one datapoint of the ALERTS series.
type alertsPoint struct {
	tags tags.Set
	t    int64
}

// appendAlertsPoints adds a point at t for every pending or firing
// instance: name=ALERTS, alertname, alertstate and the instance's labels
// but its name.
func appendAlertsPoints(dst []alertsPoint, rs *ruleState, t int64) []alertsPoint {
	for _, in := range rs.instances {
		if in.State != Pending && in.State != Firing {
			continue
		}
		state := string(in.State)
		if in.State == Firing && (in.Kind == NoData || in.Kind == Error) {
			state = string(in.Kind)
		}
		kv := make([]string, 0, 2*len(in.Labels)+6)
		for k, v := range in.Labels {
			if k == tags.NameKey || k == StateLabel || k == tsdb.DSTypeKey || v == "" {
				continue
			}
			kv = append(kv, k, v)
		}
		kv = append(kv, tags.NameKey, AlertsName, StateLabel, state, tsdb.DSTypeKey, "gauge")
		dst = append(dst, alertsPoint{tags: tags.New(kv...), t: t})
	}
	return dst
}

func (m *Manager) appendAlerts(ctx context.Context, pts []alertsPoint) {
	if m.opts.Appender == nil || len(pts) == 0 {
		return
	}
	b := &tsdb.Batch{Points: make([]tsdb.Datapoint, len(pts))}
	for i, p := range pts {
		b.Points[i] = tsdb.Datapoint{Tags: p.tags, T: p.t, V: 1}
	}
	if err := m.opts.Appender.Append(ctx, b); err != nil && ctx.Err() == nil {
		m.opts.Logger.Warn("store ALERTS series", "err", err)
	}
}

// historyKey orders transitions by rule, then time.
func historyKey(rule string, t int64, seq int) string {
	return fmt.Sprintf("%s%s/%016x/%04d", keyHistory, rule, uint64(t), seq)
}

func (m *Manager) recordHistory(ctx context.Context, key string, trs []Transition) {
	for i, tr := range trs {
		b, err := json.Marshal(tr)
		if err != nil {
			continue
		}
		if err := m.opts.KV.Put(ctx, historyKey(key, tr.At, i), b); err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("record alert history", "rule", key, "err", err)
			return
		}
	}
}

// History returns the transitions of rule (its alert name; "" for all) in
// [start, end) ms, in time order.
func (m *Manager) History(ctx context.Context, rule string, start, end int64) ([]Transition, error) {
	var out []Transition
	err := m.opts.KV.Scan(ctx, keyHistory, func(k string, v []byte) error {
		var tr Transition
		if err := json.Unmarshal(v, &tr); err != nil {
			return nil
		}
		if (rule == "" || tr.Rule == rule) && tr.At >= start && tr.At < end {
			out = append(out, tr)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Transition) int {
		if a.At != b.At {
			return int(a.At - b.At)
		}
		return strings.Compare(LabelString(a.Labels), LabelString(b.Labels))
	})
	return out, err
}

// sweepHistory deletes transitions older than the retention.
func (m *Manager) sweepHistory(ctx context.Context) {
	cutoff := m.opts.Now().Add(-m.opts.Retention).UnixMilli()
	var old []string
	err := m.opts.KV.Scan(ctx, keyHistory, func(k string, v []byte) error {
		var tr Transition
		if json.Unmarshal(v, &tr) == nil && tr.At < cutoff {
			old = append(old, k)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		m.opts.Logger.Warn("sweep alert history", "err", err)
	}
	for _, k := range old {
		if err := m.opts.KV.Put(ctx, k, nil); err != nil {
			return
		}
	}
}

// RuleStatus is a rule with its evaluation state, for the API.
type RuleStatus struct {
	Group     string      `json:"group"`
	File      string      `json:"file,omitempty"`
	Interval  int64       `json:"interval"` // ms
	Rule      *Rule       `json:"rule"`
	Health    string      `json:"health"` // unknown, ok, nodata, error
	LastError string      `json:"lastError,omitempty"`
	LastEval  int64       `json:"lastEvaluation,omitempty"` // ms
	Instances []*Instance `json:"instances"`
}

// Rules returns every rule with a copy of its state, in group order.
func (m *Manager) Rules() []RuleStatus {
	m.mu.Lock()
	groups := m.groupsLocked()
	entries := maps.Clone(m.mu.rules)
	remote := m.mu.remote // replaced whole by Refresh, never modified
	m.mu.Unlock()
	var out []RuleStatus
	for _, g := range groups {
		for _, r := range g.Rules {
			key := ruleKey(g.Name, r.Alert)
			st := RuleStatus{Group: g.Name, File: g.File, Interval: m.interval(g), Rule: r, Health: "unknown"}
			if e := entries[key]; e != nil {
				e.mu.Lock()
				st.Health, st.LastError, st.LastEval = e.state.health, e.state.lastErr, e.state.lastEval
				for _, fp := range slices.Sorted(maps.Keys(e.state.instances)) {
					in := *e.state.instances[fp]
					st.Instances = append(st.Instances, &in)
				}
				e.mu.Unlock()
			} else if rec := remote[key]; rec != nil {
				// Another node evaluates it: its state as last saved.
				st.LastEval = rec.LastEval
				if rec.Health != "" {
					st.Health, st.LastError = rec.Health, rec.LastError
				}
				st.Instances = rec.instances()
			}
			out = append(out, st)
		}
	}
	return out
}

// Groups returns the rule groups, files first.
func (m *Manager) Groups() []*Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.groupsLocked()
}

// Active returns the pending and firing instances (and nodata and error
// ones) of every rule as alerts, with their state.
func (m *Manager) Active() []ActiveAlert {
	var out []ActiveAlert
	for _, st := range m.Rules() {
		for _, in := range st.Instances {
			if in.State != Pending && in.State != Firing {
				continue
			}
			state := in.State
			if in.State == Firing && (in.Kind == NoData || in.Kind == Error) {
				state = in.Kind
			}
			out = append(out, ActiveAlert{Rule: st.Rule.Alert, Group: st.Group, Labels: in.Labels, Annotations: in.Annotations,
				State: state, ActiveAt: in.ActiveAt, Value: in.Value, Fingerprint: in.Fingerprint})
		}
	}
	return out
}

// ActiveAlert is a pending or firing instance.
type ActiveAlert struct {
	Rule        string
	Group       string
	Labels      map[string]string
	Annotations map[string]string
	State       State
	ActiveAt    int64 // ms
	Value       float64
	Fingerprint string
}
