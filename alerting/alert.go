package alerting

import (
	"context"
	"net/url"
	"time"
)

// Alert is an instance as notifiers see it: firing (EndsAt zero) or
// resolved.
type Alert struct {
	Rule        string
	Labels      map[string]string
	Annotations map[string]string
	Fingerprint string
	StartsAt    time.Time
	// EndsAt is zero while the alert fires, and the resolution time after.
	EndsAt       time.Time
	GeneratorURL string
	Value        float64
	// TraceIDs are up to three exemplar trace ids of the firing window,
	// from span metrics behind the rule's series.
	TraceIDs []string
}

// Resolved reports whether the alert has ended.
func (a *Alert) Resolved() bool { return !a.EndsAt.IsZero() }

// Notifier receives alerts.
//
// Notify is called after every evaluation of a rule that has alerts, with
// all its firing alerts and those resolved within the last 15 minutes, so a
// receiver that lost them gets them again; implementations deduplicate by
// Fingerprint. The Alerts are the callee's to keep; Notify must not block
// on network I/O (queue and return). Safe for concurrent use.
type Notifier interface {
	Notify(ctx context.Context, alerts []*Alert)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, alerts []*Alert)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, alerts []*Alert) { f(ctx, alerts) }

// RuleURL is the UI's view of a rule under externalURL: /ui/alerts/{rule}.
func RuleURL(externalURL, rule string) string {
	if externalURL == "" {
		return ""
	}
	u := externalURL
	for len(u) > 0 && u[len(u)-1] == '/' {
		u = u[:len(u)-1]
	}
	return u + "/ui/alerts/" + url.PathEscape(rule)
}
