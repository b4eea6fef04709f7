package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/alerting"
)

// Prometheus' /api/v1/rules and /api/v1/alerts shapes, as Grafana reads
// them.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	Value       string            `json:"value"`
}

type promRule struct {
	State          string            `json:"state"`
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration"`
	KeepFiringFor  float64           `json:"keepFiringFor"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Alerts         []promAlert       `json:"alerts"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	Type           string            `json:"type"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	EvaluationTime float64           `json:"evaluationTime"`
}

type promGroup struct {
	Name           string     `json:"name"`
	File           string     `json:"file"`
	Interval       float64    `json:"interval"`
	Limit          int        `json:"limit"`
	Rules          []promRule `json:"rules"`
	LastEvaluation time.Time  `json:"lastEvaluation"`
	EvaluationTime float64    `json:"evaluationTime"`
}

func promState(in *alerting.Instance) string {
	if in.State == alerting.Pending {
		return "pending"
	}
	return "firing"
}

func promHealth(h string) string {
	switch h {
	case "ok", "nodata":
		return "ok"
	case "error":
		return "err"
	}
	return "unknown"
}

func (a *API) promRules(w http.ResponseWriter, r *http.Request) {
	groups := []promGroup{}
	for _, st := range a.opts.Manager.Rules() {
		if len(groups) == 0 || groups[len(groups)-1].Name != st.Group {
			groups = append(groups, promGroup{Name: st.Group, File: st.File, Interval: float64(st.Interval) / 1000, Rules: []promRule{}})
		}
		g := &groups[len(groups)-1]
		pr := promRule{State: "inactive", Name: st.Rule.Alert, Query: st.Rule.Expr, Duration: time.Duration(st.Rule.For).Seconds(),
			KeepFiringFor: time.Duration(st.Rule.KeepFiringFor).Seconds(), Labels: nonNil(st.Rule.Labels), Annotations: nonNil(st.Rule.Annotations),
			Alerts: []promAlert{}, Health: promHealth(st.Health), LastError: st.LastError, Type: "alerting"}
		if st.LastEval > 0 {
			pr.LastEvaluation = time.UnixMilli(st.LastEval).UTC()
			if pr.LastEvaluation.After(g.LastEvaluation) {
				g.LastEvaluation = pr.LastEvaluation
			}
		}
		for _, in := range st.Instances {
			if in.State != alerting.Pending && in.State != alerting.Firing {
				continue
			}
			s := promState(in)
			if s == "firing" || pr.State == "inactive" {
				pr.State = s
			}
			pr.Alerts = append(pr.Alerts, promAlertOf(in.Labels, in.Annotations, s, in.ActiveAt, in.Value))
		}
		g.Rules = append(g.Rules, pr)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"groups": groups}})
}

func promAlertOf(labels, annotations map[string]string, state string, activeAt int64, v float64) promAlert {
	return promAlert{Labels: labels, Annotations: nonNil(annotations), State: state, ActiveAt: msTime(activeAt),
		Value: strconv.FormatFloat(v, 'e', -1, 64)}
}

func (a *API) promAlerts(w http.ResponseWriter, r *http.Request) {
	out := []promAlert{}
	for _, al := range a.opts.Manager.Active() {
		s := "firing"
		if al.State == alerting.Pending {
			s = "pending"
		}
		out = append(out, promAlertOf(al.Labels, al.Annotations, s, al.ActiveAt, al.Value))
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"alerts": out}})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
