package notify

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/alerting"
)

// router is the clock-free core of the dispatcher: it puts alerts into
// aggregation groups and says when a group is due and whether a flush
// must notify. Backtests drive it in virtual time; the Dispatcher drives it
// with the clock. Not safe for concurrent use.
type router struct {
	cfg    *Config
	groups map[string]*aggGroup // by receiver + group key
}

// aggGroup is the alerts of one route with the same group labels.
type aggGroup struct {
	id      string // receiver + "\x00" + key
	route   *Route
	key     string // Alertmanager's group key: route key:group labels
	labels  map[string]string
	alerts  map[string]*alerting.Alert // by fingerprint
	next    time.Time                  // when it is due
	flushed bool                       // flushed at least once
	sending bool                       // a flush is in flight
}

func newRouter(cfg *Config) *router {
	return &router{cfg: cfg, groups: map[string]*aggGroup{}}
}

// add routes alerts into groups; a new group is due group_wait after now.
func (r *router) add(alerts []*alerting.Alert, now time.Time) {
	for _, a := range alerts {
		for _, rt := range r.cfg.Route.match(a.Labels) {
			if rt.Receiver == "" {
				continue
			}
			gl := rt.groupLabels(a.Labels)
			key := rt.key + ":" + alerting.LabelString(gl)
			id := rt.Receiver + "\x00" + key
			g := r.groups[id]
			if g == nil {
				// A resolved alert may open a group too: after a restart,
				// the notification log decides whether it is news.
				g = &aggGroup{id: id, route: rt, key: key, labels: gl, alerts: map[string]*alerting.Alert{},
					next: now.Add(time.Duration(*rt.GroupWait))}
				r.groups[id] = g
			}
			g.alerts[a.Fingerprint] = a
		}
	}
}

// due returns the groups due at or before now that are not flushing,
// earliest first.
func (r *router) due(now time.Time) []*aggGroup {
	var out []*aggGroup
	for _, g := range r.groups {
		if !g.sending && !g.next.After(now) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *aggGroup) int {
		if c := a.next.Compare(b.next); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// nextDue is the earliest time a group is due (zero: none).
func (r *router) nextDue() time.Time {
	var t time.Time
	for _, g := range r.groups {
		if !g.sending && (t.IsZero() || g.next.Before(t)) {
			t = g.next
		}
	}
	return t
}

// snapshot lists a group's alerts sorted by labels and schedules its next
// flush a group_interval after now.
func (r *router) snapshot(g *aggGroup, now time.Time) []*alerting.Alert {
	out := slices.Collect(maps.Values(g.alerts))
	slices.SortFunc(out, func(a, b *alerting.Alert) int {
		return strings.Compare(alerting.LabelString(a.Labels), alerting.LabelString(b.Labels))
	})
	g.next = now.Add(time.Duration(*g.route.GroupInterval))
	g.flushed = true
	return out
}

// done removes the resolved alerts a flush handled (unless they changed
// since) and drops an empty group.
func (r *router) done(g *aggGroup, handled []*alerting.Alert) {
	for _, a := range handled {
		if a.Resolved() && g.alerts[a.Fingerprint] == a {
			delete(g.alerts, a.Fingerprint)
		}
	}
	if len(g.alerts) == 0 {
		delete(r.groups, g.id)
	}
}

// logEntry is what was notified for a group through an integration (the
// notification log).
type logEntry struct {
	Firing   []string  `json:"firing"`
	Resolved []string  `json:"resolved"`
	At       time.Time `json:"at"`
}

// needsUpdate decides, as Alertmanager does, whether a flush with these
// firing and resolved fingerprints must notify given what was notified
// last (nil: nothing).
func needsUpdate(prev *logEntry, firing, resolved []string, sendRes bool, repeat time.Duration, now time.Time) (bool, string) {
	if prev == nil {
		if len(firing) > 0 {
			return true, "new_alerts"
		}
		return false, ""
	}
	if !subset(firing, prev.Firing) {
		return true, "new_alerts"
	}
	if len(firing) == 0 {
		// Everything resolved: tell once, if anything was notified firing.
		if len(prev.Firing) > 0 {
			return true, "resolved"
		}
		return false, ""
	}
	if sendRes && !subset(resolved, prev.Resolved) {
		return true, "resolved"
	}
	if !prev.At.Add(repeat).After(now) {
		return true, "repeat_interval"
	}
	return false, ""
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
