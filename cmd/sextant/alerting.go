package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/sextant-dev/sextant/alerting"
	alertapi "github.com/sextant-dev/sextant/alerting/api"
	"github.com/sextant-dev/sextant/alerting/notify"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// alertingConfig is the resolved alerting settings.
type alertingConfig struct {
	RulesDir        string
	ConfigFile      string
	AlertmanagerURL string // comma-separated
	ExternalURL     string
}

// alertmanagerURLs splits --alertmanager-url.
func (c alertingConfig) alertmanagerURLs() []string {
	var out []string
	for _, u := range strings.Split(c.AlertmanagerURL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// resolveAlerting reads the alerting settings.
func resolveAlerting(get func(string) string) (alertingConfig, error) {
	c := alertingConfig{RulesDir: get("rules-dir"), ConfigFile: get("alerting-config"), ExternalURL: get("external-url"),
		AlertmanagerURL: get("alertmanager-url")}
	for _, u := range c.alertmanagerURLs() {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return c, fmt.Errorf("--alertmanager-url: %q is not an http(s) URL", u)
		}
	}
	if c.ExternalURL != "" && !strings.HasPrefix(c.ExternalURL, "http://") && !strings.HasPrefix(c.ExternalURL, "https://") {
		return c, fmt.Errorf("--external-url: %q is not an http(s) URL", c.ExternalURL)
	}
	return c, nil
}

// externalURL is --external-url or http://<hostname>:<port of --listen>.
func (n *node) externalURL(listenAddr string) string {
	if n.cfg.Alerting.ExternalURL != "" {
		return strings.TrimRight(n.cfg.Alerting.ExternalURL, "/")
	}
	host, _ := os.Hostname()
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil || host == "" {
		return "http://localhost" + listenAddr
	}
	return "http://" + net.JoinHostPort(host, port)
}

// liveSubscribe adapts the node's live evaluator to alert rules.
func (n *node) liveSubscribe() alerting.SubscribeFunc {
	if n.live == nil {
		return nil
	}
	return func(ctx context.Context, req alerting.Request, sink func(alerting.Update)) (func(), error) {
		sub, err := n.live.Subscribe(ctx, live.Request{Expr: req.Expr, Step: req.Step, Backfill: req.Backfill}, func(u live.Update) {
			au := alerting.Update{End: u.End, Err: u.Err, Lines: make([]alerting.Line, len(u.Lines))}
			for i, l := range u.Lines {
				au.Lines[i] = alerting.Line{ID: l.ID, Tags: l.Tags, Start: l.Start, Step: l.Step, Values: l.Values}
			}
			sink(au)
		})
		if err != nil {
			return nil, err
		}
		return sub.Close, nil
	}
}

// setupAlerting runs the rule manager, the notifier and the alerting API.
func setupAlerting(n *node, g *runGroup) error {
	ctx := context.Background()
	kv := n.stateKV() // the cluster's shared state in cluster mode
	step := ms(n.cfg.Step)
	engine := query.NewEngine(n.ruleQuerier(), eval.Options{}) // strong reads on a query node
	subscribe := n.liveSubscribe()
	if subscribe == nil {
		// No live evaluator in this node: poll the query engine.
		source := alerting.NewPollSource(engine, alerting.PollOptions{Delay: n.cfg.LiveDelay, Logger: n.logger})
		subscribe = source.Subscribe
		g.Go("alerting-source", source.Run)
	}
	silences, err := alerting.OpenSilences(ctx, kv, nil)
	if err != nil {
		return err
	}
	deliveries := alerting.NewDeliveryLog(kv, n.cfg.Retention)
	ncfg, err := loadAlertingConfig(n.cfg.Alerting.ConfigFile)
	if err != nil {
		return err
	}
	// The listener binds after the components; the external URL needs its
	// port, so it is filled in lazily.
	extURL := n.externalURL(n.cfg.Listen)
	disp, err := notify.New(notify.Options{Config: ncfg, KV: kv, Silences: silences, Log: deliveries, ExternalURL: extURL,
		Logger: n.logger.With("component", "notify"), Registry: n.reg})
	if err != nil {
		return err
	}
	var mgr *alerting.Manager
	// In cluster mode one query node notifies for all (cluster_state.go).
	notifiers := []alerting.Notifier{setupAlertSharing(n, g, func() *alerting.Manager { return mgr }, silences, disp)}
	if urls := n.cfg.Alerting.alertmanagerURLs(); len(urls) > 0 {
		p, err := notify.NewPusher(notify.PusherOptions{URLs: urls, Logger: n.logger.With("component", "alertmanager-push"), Registry: n.reg})
		if err != nil {
			return err
		}
		notifiers = append(notifiers, p)
		g.Go("alertmanager-push", p.Run)
	}
	mgr, err = alerting.New(alerting.Options{
		Subscribe: subscribe, KV: kv, Appender: n.appender(), Step: step, // the log on a cluster node: a query node graphs ALERTS
		Notifier: alerting.NotifierFunc(func(ctx context.Context, alerts []*alerting.Alert) {
			for _, nt := range notifiers {
				nt.Notify(ctx, alerts)
			}
		}),
		Exemplars:   n.alertExemplars,
		Owns:        n.ruleOwner(), // nil on a single node: every rule
		Retention:   n.cfg.Retention,
		ExternalURL: extURL,
		Logger:      n.logger.With("component", "alerting"),
		Registry:    n.reg,
	})
	if err != nil {
		return err
	}
	reload := func(context.Context) error {
		groups, err := loadRules(n.cfg.Alerting.RulesDir, step)
		if err != nil {
			return err
		}
		cfg, err := loadAlertingConfig(n.cfg.Alerting.ConfigFile)
		if err != nil {
			return &alerting.RuleError{File: n.cfg.Alerting.ConfigFile, Msg: err.Error()}
		}
		if err := mgr.SetFileGroups(groups); err != nil {
			return err
		}
		disp.SetConfig(cfg)
		ncfg = cfg
		n.logger.Info("alert rules loaded", "groups", len(groups))
		return nil
	}
	if err := reload(ctx); err != nil {
		return fmt.Errorf("load alert rules: %w", err)
	}
	api, err := alertapi.New(alertapi.Options{
		Manager: mgr, Silences: silences, Log: deliveries, Reload: reload, Step: step, Refresh: n.alertingRefresh(mgr, silences),
		Backtest: func(ctx context.Context, r *alerting.Rule, start, end int64) (*alerting.BacktestResult, error) {
			cfg := ncfg
			return alerting.Backtest(ctx, engine, r, start, end, alerting.BacktestOptions{Step: step, Warmup: 3600_000,
				Simulate: func(steps []alerting.SimStep) int { return notify.Simulate(cfg, steps) }})
		},
		Logger: n.logger.With("component", "alerting-api"), Registry: n.reg,
	})
	if err != nil {
		return err
	}
	api.Register(n.mux)
	g.Go("notify", disp.Run)
	g.Go("alerting", mgr.Run)
	g.Go("sighup", func(ctx context.Context) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				if err := reload(ctx); err != nil {
					n.logger.Error("reload alert rules; the old rules stay", "err", err)
				}
			}
		}
	})
	return nil
}

// loadRules reads every *.yaml and *.yml file of dir; any bad file fails
// the whole load.
func loadRules(dir string, step int64) ([]*alerting.Group, error) {
	if dir == "" {
		return nil, nil
	}
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	var groups []*alerting.Group
	seen := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read rule file: %w", err)
		}
		gs, err := alerting.ParseFile(filepath.Base(f), b, alerting.ParseOptions{Step: step})
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			if other, ok := seen[g.Name]; ok {
				return nil, &alerting.RuleError{File: filepath.Base(f), Field: "name", Msg: fmt.Sprintf("group %q is also in %s", g.Name, other)}
			}
			seen[g.Name] = g.File
		}
		groups = append(groups, gs...)
	}
	return groups, nil
}

func loadAlertingConfig(file string) (*notify.Config, error) {
	if file == "" {
		return notify.DefaultConfig(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read --alerting-config: %w", err)
	}
	return notify.ParseConfig(b)
}

// spanMetricNames are the series span exemplars belong to.
var spanMetricNames = []string{"span.duration", "span.calls", "span.errors"}

// alertExemplars finds up to limit trace ids, slowest first, of span
// exemplars behind expr's data whose tags agree with the alert's labels.
func (n *node) alertExemplars(ctx context.Context, program string, labels map[string]string, start, end int64, limit int) ([]string, error) {
	styles, err := query.Parse(program, query.ParseOptions{})
	if err != nil {
		return nil, err
	}
	var qs []*tags.Query
	for _, st := range styles {
		for _, d := range expr.DataExprs(st.Expr) {
			qs = append(qs, d.DataQuery())
		}
	}
	exs, err := n.exemplarSource()(ctx, start, end)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(exs, func(a, b tracing.Exemplar) int { return int(b.Duration - a.Duration) })
	var ids []string
	for _, e := range exs {
		if len(ids) >= limit {
			break
		}
		if !exemplarAgrees(e.Tags, labels) || !exemplarMatches(qs, e.Tags) {
			continue
		}
		if id := e.TraceID.String(); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func exemplarAgrees(ex, labels map[string]string) bool {
	for k, v := range ex {
		if lv, ok := labels[k]; ok && lv != v {
			return false
		}
	}
	return true
}

func exemplarMatches(qs []*tags.Query, ex map[string]string) bool {
	base := tags.FromMap(ex)
	for _, name := range spanMetricNames {
		for _, stat := range []string{"count", "totalTime", "max", "percentile"} {
			c := append(tags.Set{{Key: tags.NameKey, Value: name}, {Key: "statistic", Value: stat}}, base...)
			if stat == "percentile" {
				c = append(c, tags.Tag{Key: "percentile", Value: "T0000"})
			}
			c = c.Normalize()
			for _, q := range qs {
				if q.Matches(c) {
					return true
				}
			}
		}
	}
	return false
}
