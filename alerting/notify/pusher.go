package notify

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/lib"
)

// PusherOptions configure a Pusher.
type PusherOptions struct {
	// URLs are Alertmanager base URLs; alerts go to {url}/api/v2/alerts.
	URLs []string
	// Interval is how often every active alert is sent again; default 1m.
	Interval time.Duration
	// Client sends; default a client with a 10 s timeout.
	Client   *http.Client
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

// Pusher pushes alerts to Alertmanagers' POST /api/v2/alerts: new and
// resolved alerts at once, and every active alert each Interval with
// endsAt set four intervals ahead as a lease, so an Alertmanager that
// stops hearing from us resolves them by itself. Resolved alerts are sent
// for 5 minutes after their end. It implements alerting.Notifier and is
// safe for concurrent use.
type Pusher struct {
	opts PusherOptions
	wake chan struct{} // capacity 1

	mu struct {
		sync.Mutex
		alerts map[string]*pushed // by fingerprint
		dirty  bool
	}
}

type pushed struct {
	a    *alerting.Alert
	seen time.Time // last Notify with it
}

// NewPusher returns a pusher; Run sends.
func NewPusher(opts PusherOptions) (*Pusher, error) {
	if len(opts.URLs) == 0 {
		return nil, errors.New("notify: no Alertmanager URL")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
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
	p := &Pusher{opts: opts, wake: make(chan struct{}, 1)}
	p.mu.alerts = map[string]*pushed{}
	return p, nil
}

// Notify implements alerting.Notifier.
func (p *Pusher) Notify(_ context.Context, alerts []*alerting.Alert) {
	now := p.opts.Now()
	p.mu.Lock()
	for _, a := range alerts {
		old := p.mu.alerts[a.Fingerprint]
		if old == nil || old.a.Resolved() != a.Resolved() {
			p.mu.dirty = true
		}
		p.mu.alerts[a.Fingerprint] = &pushed{a: a, seen: now}
	}
	dirty := p.mu.dirty
	p.mu.Unlock()
	if dirty {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// postableAlert is Alertmanager API v2's PostableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Run sends until ctx ends.
func (p *Pusher) Run(ctx context.Context) error {
	t := time.NewTicker(p.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.wake:
		}
		p.push(ctx)
	}
}

func (p *Pusher) push(ctx context.Context) {
	now := p.opts.Now()
	lease := now.Add(4 * p.opts.Interval).UTC()
	p.mu.Lock()
	p.mu.dirty = false
	var batch []postableAlert
	for _, fp := range slices.Sorted(maps.Keys(p.mu.alerts)) {
		e := p.mu.alerts[fp]
		a := e.a
		switch {
		case a.Resolved() && now.Sub(a.EndsAt) > 5*time.Minute,
			!a.Resolved() && now.Sub(e.seen) > 15*time.Minute:
			// Resolved long enough ago, or no longer evaluated: its lease
			// runs out in the Alertmanager.
			delete(p.mu.alerts, fp)
			continue
		}
		pa := postableAlert{Labels: a.Labels, Annotations: annotations(a, ""), StartsAt: a.StartsAt.UTC(), EndsAt: lease, GeneratorURL: a.GeneratorURL}
		if len(a.TraceIDs) == 0 {
			pa.Annotations = a.Annotations
		}
		if a.Resolved() {
			pa.EndsAt = a.EndsAt.UTC()
		}
		batch = append(batch, pa)
	}
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	for _, u := range p.opts.URLs {
		url := strings.TrimRight(u, "/") + "/api/v2/alerts"
		if err := postJSON(ctx, p.opts.Client, url, batch); err != nil {
			p.opts.Registry.Counter("alerting.notificationsFailed", "receiver", "alertmanager", "integration", "alertmanager").Increment()
			if ctx.Err() == nil {
				p.opts.Logger.Warn("push alerts to alertmanager", "url", url, "err", err)
			}
			continue
		}
		p.opts.Registry.Counter("alerting.notificationsSent", "receiver", "alertmanager", "integration", "alertmanager").Increment()
	}
}
