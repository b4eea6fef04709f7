package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/alerting"
)

// Message is the webhook payload version 4 of Alertmanager, field for
// field; the other integrations are rendered from it.
type Message struct {
	Version            string            `json:"version"`
	GroupKey           string            `json:"groupKey"`
	TruncatedAlerts    int               `json:"truncatedAlerts"`
	Status             string            `json:"status"`
	Receiver           string            `json:"receiver"`
	GroupLabels        map[string]string `json:"groupLabels"`
	CommonLabels       map[string]string `json:"commonLabels"`
	CommonAnnotations  map[string]string `json:"commonAnnotations"`
	ExternalURL        string            `json:"externalURL"`
	NotificationReason string            `json:"notification_reason"`
	Alerts             []MessageAlert    `json:"alerts"`
}

// MessageAlert is one alert of a Message.
type MessageAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Annotations added to alerts that carry exemplars.
const (
	// TraceIDsAnnotation lists up to three exemplar trace ids, comma-separated.
	TraceIDsAnnotation = "trace_ids"
	// TraceLinksAnnotation lists links to those traces in the UI, space-separated.
	TraceLinksAnnotation = "trace_links"
)

// newMessage renders a group's alerts.
func newMessage(receiver string, g *aggGroup, alerts []*alerting.Alert, reason, externalURL string) *Message {
	m := &Message{Version: "4", GroupKey: g.key, Status: "resolved", Receiver: receiver, GroupLabels: g.labels,
		ExternalURL: externalURL, NotificationReason: reason, CommonLabels: map[string]string{}, CommonAnnotations: map[string]string{}}
	for i, a := range alerts {
		ma := MessageAlert{Status: "firing", Labels: a.Labels, Annotations: annotations(a, externalURL), StartsAt: a.StartsAt.UTC(),
			EndsAt: a.EndsAt.UTC(), GeneratorURL: a.GeneratorURL, Fingerprint: a.Fingerprint}
		if a.Resolved() {
			ma.Status = "resolved"
		} else {
			m.Status = "firing"
			ma.EndsAt = time.Time{}
		}
		if i == 0 {
			maps.Copy(m.CommonLabels, a.Labels)
			maps.Copy(m.CommonAnnotations, ma.Annotations)
		} else {
			keepCommon(m.CommonLabels, a.Labels)
			keepCommon(m.CommonAnnotations, ma.Annotations)
		}
		m.Alerts = append(m.Alerts, ma)
	}
	return m
}

func keepCommon(common, m map[string]string) {
	for k, v := range common {
		if w, ok := m[k]; !ok || w != v {
			delete(common, k)
		}
	}
}

func annotations(a *alerting.Alert, externalURL string) map[string]string {
	out := maps.Clone(a.Annotations)
	if out == nil {
		out = map[string]string{}
	}
	if len(a.TraceIDs) > 0 {
		out[TraceIDsAnnotation] = strings.Join(a.TraceIDs, ",")
		links := make([]string, len(a.TraceIDs))
		for i, id := range a.TraceIDs {
			links[i] = strings.TrimRight(externalURL, "/") + "/ui/traces/" + id
		}
		out[TraceLinksAnnotation] = strings.Join(links, " ")
	}
	return out
}

// integration sends a message somewhere.
type integration struct {
	kind         string // webhook, slack, pagerduty
	sendResolved bool
	send         func(ctx context.Context, m *Message) error
}

// permanentError is an answer not worth retrying (4xx).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func integrations(r *Receiver, client *http.Client) []integration {
	var out []integration
	if w := r.Webhook; w != nil {
		out = append(out, integration{kind: "webhook", sendResolved: sendResolved(w.SendResolved), send: func(ctx context.Context, m *Message) error {
			if w.MaxAlerts > 0 && len(m.Alerts) > w.MaxAlerts {
				c := *m
				c.TruncatedAlerts = len(m.Alerts) - w.MaxAlerts
				c.Alerts = m.Alerts[:w.MaxAlerts]
				m = &c
			}
			if w.Timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(w.Timeout))
				defer cancel()
			}
			return postJSON(ctx, client, w.URL, m)
		}})
	}
	if s := r.Slack; s != nil {
		out = append(out, integration{kind: "slack", sendResolved: sendResolved(s.SendResolved), send: func(ctx context.Context, m *Message) error {
			body := map[string]any{"text": slackText(m)}
			if s.Channel != "" {
				body["channel"] = s.Channel
			}
			return postJSON(ctx, client, s.URL, body)
		}})
	}
	if p := r.PagerDuty; p != nil {
		out = append(out, integration{kind: "pagerduty", sendResolved: sendResolved(p.SendResolved), send: func(ctx context.Context, m *Message) error {
			url := p.URL
			if url == "" {
				url = "https://events.pagerduty.com/v2/enqueue"
			}
			return postJSON(ctx, client, url, pagerDutyEvent(p, m))
		}})
	}
	return out
}

func postJSON(ctx context.Context, client *http.Client, url string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &permanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Sextant")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return &permanentError{fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, bytes.TrimSpace(msg))}
}

func retryable(err error) bool {
	var p *permanentError
	return !errors.As(err, &p)
}

// slackText is a short plain-text summary of a message.
func slackText(m *Message) string {
	var b strings.Builder
	firing := 0
	for _, a := range m.Alerts {
		if a.Status == "firing" {
			firing++
		}
	}
	if m.Status == "firing" {
		fmt.Fprintf(&b, "[FIRING:%d] %s", firing, labelValues(m.GroupLabels))
	} else {
		fmt.Fprintf(&b, "[RESOLVED] %s", labelValues(m.GroupLabels))
	}
	for _, a := range m.Alerts {
		fmt.Fprintf(&b, "\n• %s %s", a.Status, alerting.LabelString(a.Labels))
		if s := a.Annotations["summary"]; s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
		if a.GeneratorURL != "" {
			fmt.Fprintf(&b, " <%s|rule>", a.GeneratorURL)
		}
		for _, l := range strings.Fields(a.Annotations[TraceLinksAnnotation]) {
			fmt.Fprintf(&b, " <%s|trace>", l)
		}
	}
	return b.String()
}

func labelValues(l map[string]string) string {
	var vs []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		vs = append(vs, l[k])
	}
	return strings.Join(vs, " ")
}

// pagerDutyEvent is an Events API v2 event for a group: trigger while
// anything fires, resolve after; one dedup key per group.
func pagerDutyEvent(p *PagerDutyConfig, m *Message) map[string]any {
	sum := sha256.Sum256([]byte(m.GroupKey))
	action := "trigger"
	if m.Status == "resolved" {
		action = "resolve"
	}
	sev := p.Severity
	if sev == "" {
		sev = "critical"
	}
	summary := slackText(m)
	if i := strings.IndexByte(summary, '\n'); i > 0 {
		summary = summary[:i]
	}
	if len(summary) > 1024 {
		summary = summary[:1024]
	}
	var links []map[string]string
	for _, a := range m.Alerts {
		if a.GeneratorURL != "" && len(links) == 0 {
			links = append(links, map[string]string{"href": a.GeneratorURL, "text": "rule"})
		}
		for _, l := range strings.Fields(a.Annotations[TraceLinksAnnotation]) {
			links = append(links, map[string]string{"href": l, "text": "trace"})
		}
	}
	ev := map[string]any{
		"routing_key": p.RoutingKey, "event_action": action, "dedup_key": hex.EncodeToString(sum[:]),
		"client": "Sextant", "client_url": m.ExternalURL,
	}
	if action == "trigger" {
		ev["payload"] = map[string]any{"summary": summary, "source": "sextant", "severity": sev,
			"custom_details": map[string]any{"firing": m.Alerts, "groupLabels": m.GroupLabels}}
		if len(links) > 0 {
			ev["links"] = links
		}
	}
	return ev
}
