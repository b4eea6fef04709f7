package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sextant-dev/sextant/alerting"
)

// Config is the --alerting-config file: the route tree and the receivers.
type Config struct {
	Route     *Route      `yaml:"route" json:"route"`
	Receivers []*Receiver `yaml:"receivers" json:"receivers"`
}

// Route is a node of the route tree. A child inherits what it leaves unset.
type Route struct {
	Receiver       string             `yaml:"receiver" json:"receiver,omitempty"`
	GroupBy        []string           `yaml:"group_by" json:"group_by,omitempty"`
	GroupWait      *alerting.Duration `yaml:"group_wait" json:"group_wait,omitempty"`
	GroupInterval  *alerting.Duration `yaml:"group_interval" json:"group_interval,omitempty"`
	RepeatInterval *alerting.Duration `yaml:"repeat_interval" json:"repeat_interval,omitempty"`
	Matchers       []string           `yaml:"matchers" json:"matchers,omitempty"`
	Continue       bool               `yaml:"continue" json:"continue,omitempty"`
	Routes         []*Route           `yaml:"routes" json:"routes,omitempty"`

	matchers alerting.Matchers
	key      string // Alertmanager's route key: parent key / matchers
	groupAll bool   // group_by: ['...']
}

// Receiver names a set of integrations.
type Receiver struct {
	Name      string           `yaml:"name" json:"name"`
	Webhook   *WebhookConfig   `yaml:"webhook" json:"webhook,omitempty"`
	Slack     *SlackConfig     `yaml:"slack" json:"slack,omitempty"`
	PagerDuty *PagerDutyConfig `yaml:"pagerduty" json:"pagerduty,omitempty"`
}

// WebhookConfig posts Alertmanager's webhook payload version 4.
type WebhookConfig struct {
	URL          string            `yaml:"url" json:"url"`
	SendResolved *bool             `yaml:"send_resolved" json:"send_resolved,omitempty"`
	MaxAlerts    int               `yaml:"max_alerts" json:"max_alerts,omitempty"`
	Timeout      alerting.Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// SlackConfig posts to a Slack incoming webhook.
type SlackConfig struct {
	URL          string `yaml:"url" json:"url"`
	Channel      string `yaml:"channel" json:"channel,omitempty"`
	SendResolved *bool  `yaml:"send_resolved" json:"send_resolved,omitempty"`
}

// PagerDutyConfig sends PagerDuty Events API v2 events.
type PagerDutyConfig struct {
	RoutingKey   string `yaml:"routing_key" json:"routing_key"`
	URL          string `yaml:"url" json:"url,omitempty"` // default https://events.pagerduty.com/v2/enqueue
	Severity     string `yaml:"severity" json:"severity,omitempty"`
	SendResolved *bool  `yaml:"send_resolved" json:"send_resolved,omitempty"`
}

// Defaults of the root route, as in Alertmanager.
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// ParseConfig reads and checks a configuration. Errors name the field
// (and the line for YAML syntax errors).
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("alerting config: %w", err)
	}
	if err := c.compile(); err != nil {
		return nil, fmt.Errorf("alerting config: %w", err)
	}
	return &c, nil
}

// DefaultConfig is a configuration with no receiver: alerts are routed to
// nothing (the alerts API and Alertmanager pushes still see them).
func DefaultConfig() *Config {
	c := &Config{Route: &Route{}}
	_ = c.compile()
	return c
}

func (c *Config) compile() error {
	if c.Route == nil {
		return fmt.Errorf("route: missing")
	}
	names := map[string]bool{}
	for i, r := range c.Receivers {
		if r.Name == "" {
			return fmt.Errorf("receivers[%d].name: missing", i)
		}
		if names[r.Name] {
			return fmt.Errorf("receivers[%d].name: %q given twice", i, r.Name)
		}
		names[r.Name] = true
		if r.Webhook != nil && r.Webhook.URL == "" {
			return fmt.Errorf("receivers[%d].webhook.url: missing", i)
		}
		if r.Slack != nil && r.Slack.URL == "" {
			return fmt.Errorf("receivers[%d].slack.url: missing", i)
		}
		if r.PagerDuty != nil && r.PagerDuty.RoutingKey == "" {
			return fmt.Errorf("receivers[%d].pagerduty.routing_key: missing", i)
		}
	}
	root := c.Route
	d := func(v time.Duration) *alerting.Duration { x := alerting.Duration(v); return &x }
	if root.GroupWait == nil {
		root.GroupWait = d(DefaultGroupWait)
	}
	if root.GroupInterval == nil {
		root.GroupInterval = d(DefaultGroupInterval)
	}
	if root.RepeatInterval == nil {
		root.RepeatInterval = d(DefaultRepeatInterval)
	}
	if len(root.Matchers) > 0 {
		return fmt.Errorf("route.matchers: the root route matches everything")
	}
	if root.Receiver == "" && len(c.Receivers) > 0 {
		return fmt.Errorf("route.receiver: missing")
	}
	return compileRoute(root, nil, "route", names)
}

func compileRoute(r, parent *Route, path string, receivers map[string]bool) error {
	if parent != nil {
		if r.Receiver == "" {
			r.Receiver = parent.Receiver
		}
		if r.GroupBy == nil {
			r.GroupBy = parent.GroupBy
		}
		if r.GroupWait == nil {
			r.GroupWait = parent.GroupWait
		}
		if r.GroupInterval == nil {
			r.GroupInterval = parent.GroupInterval
		}
		if r.RepeatInterval == nil {
			r.RepeatInterval = parent.RepeatInterval
		}
	}
	if r.Receiver != "" && !receivers[r.Receiver] {
		return fmt.Errorf("%s.receiver: no receiver named %q", path, r.Receiver)
	}
	ms, err := alerting.ParseMatchers(r.Matchers)
	if err != nil {
		return fmt.Errorf("%s.matchers: %w", path, err)
	}
	r.matchers = ms
	r.groupAll = slices.Contains(r.GroupBy, "...")
	if r.groupAll && len(r.GroupBy) > 1 {
		return fmt.Errorf("%s.group_by: '...' must be alone", path)
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	k := "{" + strings.Join(parts, ",") + "}"
	if parent != nil {
		k = parent.key + "/" + k
	}
	r.key = k
	if *r.GroupInterval <= 0 {
		return fmt.Errorf("%s.group_interval: must be positive", path)
	}
	for i, c := range r.Routes {
		if err := compileRoute(c, r, fmt.Sprintf("%s.routes[%d]", path, i), receivers); err != nil {
			return err
		}
	}
	return nil
}

// match returns the routes an alert goes to: the deepest matching child of
// each level, depth first, following continue; the node itself when no
// child matches.
func (r *Route) match(labels map[string]string) []*Route {
	if !r.matchers.Matches(labels) {
		return nil
	}
	var out []*Route
	for _, c := range r.Routes {
		m := c.match(labels)
		out = append(out, m...)
		if len(m) > 0 && !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		out = append(out, r)
	}
	return out
}

// groupLabels picks the labels an alert is grouped by on r.
func (r *Route) groupLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	if r.groupAll {
		for k, v := range labels {
			out[k] = v
		}
		return out
	}
	for _, k := range r.GroupBy {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}

func sendResolved(p *bool) bool { return p == nil || *p }
