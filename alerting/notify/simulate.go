package notify

import (
	"time"

	"github.com/sextant-dev/sextant/alerting"
)

// Simulate counts the notifications cfg's route tree would send for the
// alerts a rule handed over at each step, in virtual time: the same
// grouping, timers and deduplication as the Dispatcher, every send
// succeeding, no silences.
func Simulate(cfg *Config, steps []alerting.SimStep) int {
	if cfg == nil || len(steps) == 0 {
		return 0
	}
	r := newRouter(cfg)
	nflog := map[string]*logEntry{}
	sent := 0
	flushUntil := func(until time.Time) {
		for {
			next := r.nextDue()
			if next.IsZero() || next.After(until) {
				return
			}
			for _, g := range r.due(next) {
				alerts := r.snapshot(g, next)
				var firing, resolved []string
				for _, a := range alerts {
					if a.Resolved() {
						resolved = append(resolved, a.Fingerprint)
					} else {
						firing = append(firing, a.Fingerprint)
					}
				}
				recv := findReceiver(cfg, g.route.Receiver)
				for i, in := range integrations(recv, nil) {
					key := g.id + "\x00" + string(rune('0'+i))
					ok, _ := needsUpdate(nflog[key], firing, resolved, in.sendResolved, time.Duration(*g.route.RepeatInterval), next)
					if !ok {
						continue
					}
					if in.sendResolved || len(firing) > 0 {
						sent++
					}
					e := &logEntry{Firing: firing, Resolved: resolved, At: next}
					if len(firing) == 0 {
						e.Resolved = nil
					}
					nflog[key] = e
				}
				r.done(g, alerts)
			}
		}
	}
	for _, s := range steps {
		flushUntil(s.At)
		r.add(s.Alerts, s.At)
	}
	// What the steps caused is notified even when its flush falls after
	// the last step: the longest group_wait plus group_interval of the tree.
	flushUntil(steps[len(steps)-1].At.Add(horizon(cfg.Route)))
	return sent
}

// horizon is the longest group_wait + group_interval of a route tree.
func horizon(r *Route) time.Duration {
	h := time.Duration(*r.GroupWait) + time.Duration(*r.GroupInterval)
	for _, c := range r.Routes {
		h = max(h, horizon(c))
	}
	return h
}

func findReceiver(cfg *Config, name string) *Receiver {
	for _, r := range cfg.Receivers {
		if r.Name == name {
			return r
		}
	}
	return &Receiver{Name: name}
}
