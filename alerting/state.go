package alerting

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// State is the state of an alert instance.
type State string

// Instance states. Inactive instances are not kept; Resolved ones are kept
// for a while so their resolution can be re-sent.
const (
	Inactive State = "inactive"
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
	// NoData is a rule whose expression yielded no line (nodata: nodata).
	NoData State = "nodata"
	// Error is a rule whose evaluation failed.
	Error State = "error"
)

// Special label values of the synthetic instances.
const (
	// AlertNameLabel is the label naming the rule.
	AlertNameLabel = "alertname"
	// StateLabel marks a nodata or error instance (and ALERTS series).
	StateLabel = "alertstate"
)

// Instance is one alert of a rule: one line of its expression.
type Instance struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Fingerprint string            `json:"fingerprint"`
	State       State             `json:"state"`
	// Kind is Firing for an ordinary instance, NoData or Error for the
	// synthetic instance of a rule without data or failing.
	Kind       State   `json:"kind,omitempty"`
	Value      float64 `json:"-"`
	ActiveAt   int64   `json:"activeAt,omitempty"`   // first evaluation found active (ms)
	FiredAt    int64   `json:"firedAt,omitempty"`    // became firing (ms)
	ResolvedAt int64   `json:"resolvedAt,omitempty"` // became resolved (ms)
	LastActive int64   `json:"lastActive,omitempty"` // last evaluation found active (ms)
	KeepSince  int64   `json:"keepSince,omitempty"`  // first inactive evaluation while kept firing (ms)
	Err        string  `json:"error,omitempty"`

	traceIDs []string // exemplars found when it started firing
}

// jsonValue is Value as JSON can carry it (NaN as nil).
func (in *Instance) jsonValue() *float64 {
	if math.IsNaN(in.Value) || math.IsInf(in.Value, 0) {
		return nil
	}
	v := in.Value
	return &v
}

// Transition is one change of an instance's state.
type Transition struct {
	Rule   string            `json:"rule"`
	Labels map[string]string `json:"labels"`
	From   State             `json:"from"`
	To     State             `json:"to"`
	At     int64             `json:"at"` // ms
	Value  *float64          `json:"value,omitempty"`
}

// Sample is the value of one line of a rule's expression at one step.
type Sample struct {
	Tags  map[string]string
	Value float64

	// labels and fp, when set, are the instance's labels and fingerprint
	// computed once for a line seen at many steps (backtests).
	labels map[string]string
	fp     string
	id     string // the line's ID, if it has one
}

// ruleState is the state machine of one rule. It is not safe for
// concurrent use: the Manager serializes evaluations of a rule.
type ruleState struct {
	rule      *Rule
	group     string
	instances map[string]*Instance // by fingerprint
	lastEval  int64                // ms of the last evaluated step
	health    string               // ok, nodata, error
	lastErr   string
	// resolvedKeep is how long resolved instances are kept (ms).
	resolvedKeep int64
	seen         map[string]bool // scratch of eval, kept to reuse its memory
	restored     bool            // state came from the store (a restart)
	// lines caches the labels and fingerprint of lines with an ID.
	lines map[string]lineInfo
}

type lineInfo struct {
	labels map[string]string
	fp     string
}

// maxLineCache bounds ruleState.lines; past it the cache starts over.
const maxLineCache = 100_000

// cached fills in the labels and fingerprints of samples whose lines have
// an ID, from the cache or computing them once.
func (rs *ruleState) cached(samples []Sample, lines []Line) []Sample {
	if len(lines) == 0 || lines[0].ID == "" {
		return samples
	}
	if rs.lines == nil || len(rs.lines) > maxLineCache {
		rs.lines = map[string]lineInfo{}
	}
	for i := range samples {
		id := samples[i].id
		if id == "" {
			continue
		}
		li, ok := rs.lines[id]
		if !ok {
			lb := rs.labels(samples[i].Tags)
			li = lineInfo{labels: lb, fp: Fingerprint(lb)}
			rs.lines[id] = li
		}
		samples[i].labels, samples[i].fp = li.labels, li.fp
	}
	return samples
}

func newRuleState(r *Rule, group string) *ruleState {
	return &ruleState{rule: r, group: group, instances: map[string]*Instance{}, health: "unknown", resolvedKeep: 15 * 60_000}
}

// eval runs one step at t over the lines' values at t (evalErr non-nil for
// a failed evaluation). It returns the transitions it made. With hold,
// nothing ends: steps replayed from while the server was down lack data
// that never reached it (and a comparison makes missing data 0), so they
// may start or advance alerts but not resolve them; the first step
// evaluated live decides.
func (rs *ruleState) eval(t int64, samples []Sample, evalErr error, hold bool) []Transition {
	r := rs.rule
	rs.lastEval = t
	var trs []Transition
	if rs.seen == nil {
		rs.seen = map[string]bool{}
	}
	seen := rs.seen
	clear(seen)
	step := func(labels map[string]string, fp string, kind State, v float64, active bool, errMsg string) {
		if fp == "" {
			fp = Fingerprint(labels)
		}
		seen[fp] = true
		in := rs.instances[fp]
		if !active {
			if in != nil && in.State != Resolved {
				in.Value = v // what ends it shows in the transition
			}
			return
		}
		if in == nil || in.State == Resolved {
			in = &Instance{Labels: labels, Fingerprint: fp, State: Inactive, Kind: kind}
			rs.instances[fp] = in
		}
		in.Value, in.LastActive, in.Err, in.KeepSince = v, t, errMsg, 0
		in.Annotations = rs.annotate(in)
		switch in.State {
		case Inactive:
			in.ActiveAt = t
			in.State = Pending
			trs = append(trs, rs.transition(in, Inactive, Pending, t))
			fallthrough
		case Pending:
			if t-in.ActiveAt >= int64(r.For)/1e6 {
				in.State = Firing
				in.FiredAt = t
				trs = append(trs, rs.transition(in, Pending, Firing, t))
			}
		}
	}
	switch {
	case evalErr != nil:
		rs.health, rs.lastErr = "error", evalErr.Error()
		// Ordinary instances keep their state: an error says nothing about
		// them. The error instance is active.
		for fp, in := range rs.instances {
			if in.Kind != Error {
				seen[fp] = true
			}
		}
		step(rs.synthetic(Error), "", Error, math.NaN(), true, evalErr.Error())
	case len(samples) == 0 && hold:
	case len(samples) == 0:
		rs.health, rs.lastErr = "nodata", ""
		switch r.NoData {
		case NoDataAlerting:
			step(rs.synthetic(""), "", Firing, math.NaN(), true, "")
		case NoDataNoData:
			step(rs.synthetic(NoData), "", NoData, math.NaN(), true, "")
		}
	default:
		rs.health, rs.lastErr = "ok", ""
		for _, s := range samples {
			active := s.Value != 0 && !math.IsNaN(s.Value)
			if s.labels != nil {
				step(s.labels, s.fp, Firing, s.Value, active, "")
				continue
			}
			if !active {
				// Only the fingerprint matters for an inactive line.
				step(rs.labels(s.Tags), "", Firing, s.Value, false, "")
				continue
			}
			step(rs.labels(s.Tags), "", Firing, s.Value, active, "")
		}
	}
	// Instances not found active this step.
	for fp, in := range rs.instances {
		if seen[fp] && in.LastActive == t {
			continue
		}
		if seen[fp] && evalErr != nil && in.Kind != Error {
			continue
		}
		if hold && in.State != Resolved {
			continue
		}
		switch in.State {
		case Pending:
			delete(rs.instances, fp)
			trs = append(trs, rs.transition(in, Pending, Inactive, t))
		case Firing:
			if r.KeepFiringFor > 0 {
				// As Prometheus: kept for keep_firing_for from the first
				// evaluation that found it inactive.
				if in.KeepSince == 0 {
					in.KeepSince = t
				}
				if t-in.KeepSince < int64(r.KeepFiringFor)/1e6 {
					continue
				}
			}
			in.State = Resolved
			in.ResolvedAt = t
			trs = append(trs, rs.transition(in, Firing, Resolved, t))
		case Resolved:
			if t-in.ResolvedAt >= rs.resolvedKeep {
				delete(rs.instances, fp)
			}
		}
	}
	if len(trs) > 1 {
		slices.SortFunc(trs, func(a, b Transition) int { return strings.Compare(LabelString(a.Labels), LabelString(b.Labels)) })
	}
	return trs
}

func (rs *ruleState) transition(in *Instance, from, to State, t int64) Transition {
	fs, ts := from, to
	if in.Kind == NoData || in.Kind == Error {
		// A synthetic instance shows its kind instead of firing.
		if fs == Firing {
			fs = in.Kind
		}
		if ts == Firing {
			ts = in.Kind
		}
	}
	return Transition{Rule: rs.rule.Alert, Labels: in.Labels, From: fs, To: ts, At: t, Value: in.jsonValue()}
}

// prepare computes the labels and fingerprints of lines once, for
// evaluations of many steps over the same lines.
func (rs *ruleState) prepare(lines []Line) []Sample {
	out := make([]Sample, len(lines))
	for i, l := range lines {
		lb := rs.labels(l.Tags)
		out[i] = Sample{Tags: l.Tags, labels: lb, fp: Fingerprint(lb)}
	}
	return out
}

// labels builds an instance's labels: the line's tags, the rule's labels
// (they win), and alertname.
func (rs *ruleState) labels(ts map[string]string) map[string]string {
	out := make(map[string]string, len(ts)+len(rs.rule.Labels)+1)
	for k, v := range ts {
		out[k] = v
	}
	for k, v := range rs.rule.Labels {
		if t := rs.rule.labelTmpls[k]; t != nil {
			var b bytes.Buffer
			if err := t.Execute(&b, templateData{Tags: ts, Rule: rs.rule.Alert}); err != nil {
				v = "template error: " + err.Error()
			} else {
				v = b.String()
			}
		}
		out[k] = v
	}
	out[AlertNameLabel] = rs.rule.Alert
	return out
}

// synthetic returns the labels of the rule's nodata or error instance.
func (rs *ruleState) synthetic(kind State) map[string]string {
	l := rs.labels(nil)
	if kind != "" {
		l[StateLabel] = string(kind)
	}
	return l
}

// templateData is what annotation templates see.
type templateData struct {
	Tags  map[string]string
	Value float64
	Rule  string
}

func (rs *ruleState) annotate(in *Instance) map[string]string {
	if len(rs.rule.annotations) == 0 && in.Err == "" {
		return nil
	}
	out := make(map[string]string, len(rs.rule.annotations)+1)
	var b bytes.Buffer
	for k, t := range rs.rule.annotations {
		b.Reset()
		if err := t.Execute(&b, templateData{Tags: in.Labels, Value: in.Value, Rule: rs.rule.Alert}); err != nil {
			out[k] = "template error: " + err.Error()
			continue
		}
		out[k] = b.String()
	}
	if in.Err != "" {
		out["error"] = in.Err
	}
	return out
}

// Fingerprint is the hex FNV-1a hash of the sorted labels, each name and
// value followed by a 0xff separator (Alertmanager's fingerprint model).
func Fingerprint(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := fnv.New64a()
	sep := []byte{0xff}
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write(sep)
		h.Write([]byte(labels[k]))
		h.Write(sep)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// LabelString renders labels sorted by name, the way Alertmanager and
// promtool print them: {a="1", b="2"}. The text also orders alerts in
// lists and names notification groups (alerting/notify), so that both
// packages agree on it.
func LabelString(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}
