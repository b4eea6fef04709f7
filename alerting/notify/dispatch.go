package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure a Dispatcher.
type Options struct {
	// Config is the route tree and receivers; nil routes nowhere.
	Config *Config
	// KV keeps the notification log. Required.
	KV tsdb.KV
	// Silences mute alerts; nil mutes nothing.
	Silences *alerting.Silences
	// Log records every notification; nil keeps none.
	Log *alerting.DeliveryLog
	// ExternalURL is the payloads' externalURL and the base of trace links.
	ExternalURL string
	// Client sends notifications; default a client with a 10 s timeout.
	Client *http.Client
	// MaxAttempts bounds the tries of one notification; default 5, with
	// backoff doubling from 1 s.
	MaxAttempts int
	// Now is the clock; default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

const keyLog = "alerting/nflog/"

// Dispatcher routes alerts to receivers. It implements alerting.Notifier
// and is safe for concurrent use; Run drives its timers and deliveries.
type Dispatcher struct {
	opts Options
	wake chan struct{} // capacity 1: one pending wake-up suffices

	mu struct {
		sync.Mutex
		cfg          *Config
		router       *router
		integrations map[string][]integration // by receiver
		muted        map[string][]string      // group id → muted fingerprints last logged
		// unsaved are notification-log entries whose write failed (the
		// store unavailable: Kafka, in cluster mode), by key: readLog
		// prefers them, so a notification sent is not sent again at the
		// next flush; a later successful write forgets them. Bounded by
		// the groups and integrations.
		unsaved map[string]logEntry
	}
}

// New returns a dispatcher.
func New(opts Options) (*Dispatcher, error) {
	if opts.KV == nil {
		return nil, errors.New("notify: no KV store")
	}
	if opts.Config == nil {
		opts.Config = DefaultConfig()
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	d := &Dispatcher{opts: opts, wake: make(chan struct{}, 1)}
	d.mu.muted = map[string][]string{}
	d.mu.unsaved = map[string]logEntry{}
	d.SetConfig(opts.Config)
	return d, nil
}

// SetConfig replaces the routes and receivers. Alerts are routed again on
// their next Notify; groups of the old tree are dropped.
func (d *Dispatcher) SetConfig(cfg *Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.cfg = cfg
	d.mu.router = newRouter(cfg)
	d.mu.integrations = map[string][]integration{}
	for _, r := range cfg.Receivers {
		d.mu.integrations[r.Name] = integrations(r, d.opts.Client)
	}
}

// Reset drops every aggregation group and the alerts in it, keeping the
// routes and receivers: for a query node that stops notifying for a
// cluster (another node does now), so that it sends nothing more from
// alerts it no longer hears about.
func (d *Dispatcher) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.router = newRouter(d.mu.cfg)
	d.mu.muted = map[string][]string{}
}

// Notify implements alerting.Notifier.
func (d *Dispatcher) Notify(_ context.Context, alerts []*alerting.Alert) {
	d.mu.Lock()
	d.mu.router.add(alerts, d.opts.Now())
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run flushes groups as they fall due until ctx ends, then waits for the
// deliveries in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := d.opts.Now()
		d.mu.Lock()
		rt := d.mu.router
		for _, g := range rt.due(now) {
			alerts := rt.snapshot(g, now)
			g.sending = true
			recv := g.route.Receiver
			ints := d.mu.integrations[recv]
			wg.Go(func() {
				d.flush(ctx, recv, ints, g, alerts, now)
				d.mu.Lock()
				g.sending = false
				if d.mu.router == rt {
					rt.done(g, alerts)
				}
				d.mu.Unlock()
				select {
				case d.wake <- struct{}{}:
				default:
				}
			})
		}
		next := rt.nextDue()
		d.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.opts.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// flush notifies a group's alerts through each integration of recv.
func (d *Dispatcher) flush(ctx context.Context, recv string, ints []integration, g *aggGroup, alerts []*alerting.Alert, now time.Time) {
	var kept []*alerting.Alert
	var muted []alerting.DeliveredAlert
	for _, a := range alerts {
		if d.opts.Silences != nil {
			if ids := d.opts.Silences.Muted(a.Labels, now); len(ids) > 0 {
				muted = append(muted, delivered(a, ids))
				continue
			}
		}
		kept = append(kept, a)
	}
	d.logMuted(ctx, recv, g, muted, now)
	var firing, resolved []string
	for _, a := range kept {
		if a.Resolved() {
			resolved = append(resolved, a.Fingerprint)
		} else {
			firing = append(firing, a.Fingerprint)
		}
	}
	for i, in := range ints {
		key := fmt.Sprintf("%s%s/%d/%s", keyLog, recv, i, g.key)
		prev := d.readLog(ctx, key)
		ok, reason := needsUpdate(prev, firing, resolved, in.sendResolved, time.Duration(*g.route.RepeatInterval), now)
		if !ok {
			continue
		}
		send := kept
		if !in.sendResolved {
			send = slices.DeleteFunc(slices.Clone(kept), (*alerting.Alert).Resolved)
		}
		var dl *alerting.Delivery
		if len(send) > 0 {
			msg := newMessage(recv, g, send, reason, d.opts.ExternalURL)
			var err error
			if dl, err = d.deliver(ctx, recv, in, msg, send, now); err != nil {
				d.record(ctx, dl)
				continue // the log is left as it was: the next flush retries
			}
		}
		// The notification log first, then the delivery log: whoever sees
		// a delivery logged can count on it not being sent again.
		entry := logEntry{Firing: firing, Resolved: resolved, At: now}
		if len(firing) == 0 {
			entry.Resolved = nil // nothing left to dedupe against
		}
		b, _ := json.Marshal(entry)
		err := d.opts.KV.Put(ctx, key, b)
		d.mu.Lock()
		if err != nil {
			d.mu.unsaved[key] = entry
		} else {
			delete(d.mu.unsaved, key)
		}
		d.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.opts.Logger.Warn("write notification log", "receiver", recv, "err", err)
		}
		d.record(ctx, dl)
	}
}

// record adds a delivery to the log.
func (d *Dispatcher) record(ctx context.Context, dl *alerting.Delivery) {
	if d.opts.Log == nil || dl == nil {
		return
	}
	if err := d.opts.Log.Record(context.WithoutCancel(ctx), *dl); err != nil {
		d.opts.Logger.Warn("record delivery", "err", err)
	}
}

// deliver sends msg with retries and backoff and returns the outcome for
// the delivery log.
func (d *Dispatcher) deliver(ctx context.Context, recv string, in integration, msg *Message, alerts []*alerting.Alert, now time.Time) (*alerting.Delivery, error) {
	var err error
	attempts := 0
	backoff := time.Second
	for attempts < d.opts.MaxAttempts {
		attempts++
		if err = in.send(ctx, msg); err == nil || !retryable(err) || ctx.Err() != nil {
			break
		}
		d.opts.Logger.Warn("notification failed, retrying", "receiver", recv, "integration", in.kind, "attempt", attempts, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
	outcome := "sent"
	if err != nil {
		outcome = "failed"
		d.opts.Registry.Counter("alerting.notificationsFailed", "receiver", recv, "integration", in.kind).Increment()
		d.opts.Logger.Error("notification failed", "receiver", recv, "integration", in.kind, "attempts", attempts, "err", err)
	} else {
		d.opts.Registry.Counter("alerting.notificationsSent", "receiver", recv, "integration", in.kind).Increment()
	}
	dl := &alerting.Delivery{At: now.UTC(), Receiver: recv, Integration: in.kind, GroupKey: msg.GroupKey, Status: msg.Status,
		Outcome: outcome, Attempts: attempts, Reason: msg.NotificationReason}
	if err != nil {
		dl.Error = err.Error()
	}
	for _, a := range alerts {
		dl.Alerts = append(dl.Alerts, delivered(a, nil))
	}
	return dl, err
}

// logMuted records firing alerts that silences kept out, once per change.
func (d *Dispatcher) logMuted(ctx context.Context, recv string, g *aggGroup, muted []alerting.DeliveredAlert, now time.Time) {
	var fps []string
	for _, a := range muted {
		if a.Status == "firing" {
			fps = append(fps, a.Fingerprint)
		}
	}
	d.mu.Lock()
	prev := d.mu.muted[g.id]
	d.mu.muted[g.id] = fps
	d.mu.Unlock()
	if len(fps) == 0 || subset(fps, prev) || d.opts.Log == nil {
		return
	}
	d.opts.Registry.Counter("alerting.notificationsMuted", "receiver", recv).Increment()
	_ = d.opts.Log.Record(ctx, alerting.Delivery{At: now.UTC(), Receiver: recv, GroupKey: g.key, Status: "firing", Outcome: "muted", Alerts: muted})
}

func (d *Dispatcher) readLog(ctx context.Context, key string) *logEntry {
	d.mu.Lock()
	u, ok := d.mu.unsaved[key]
	d.mu.Unlock()
	if ok {
		return &u
	}
	b, err := d.opts.KV.Get(ctx, key)
	if err != nil {
		return nil
	}
	var e logEntry
	if json.Unmarshal(b, &e) != nil {
		return nil
	}
	return &e
}

func delivered(a *alerting.Alert, mutedBy []string) alerting.DeliveredAlert {
	st := "firing"
	if a.Resolved() {
		st = "resolved"
	}
	return alerting.DeliveredAlert{Labels: a.Labels, Fingerprint: a.Fingerprint, Status: st, MutedBy: mutedBy}
}
