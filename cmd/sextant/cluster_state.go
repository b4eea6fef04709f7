package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/ingest/cluster"
	"github.com/sextant-dev/sextant/ingest/kafkalog"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// The shared state of a cluster's nodes (issue 16, docs/cluster.md "Shared
// state"): the server records (dashboards, alert rules and their state,
// silences, the notification and delivery logs, canary runs) live in the
// compacted topic <prefix>-state, which every node reads into a copy
// (kafkalog.State), instead of each node's local KV. The live query nodes
// share the work that one node must do for all: each alert rule and each
// canary run is evaluated by one of them (rendezvous hashing of its id
// over the live query nodes of the membership), and one of them, the
// notifier, runs the built-in notifier for every rule, the others
// forwarding their alerts to it, so that an alert pages once.

// ownerGrace is how long a query node that became live waits before it
// takes up rules and canary runs: time for the other query nodes to read
// its first heartbeat (a members topic fetch) and let go of what it takes,
// so that two nodes evaluate a rule at once only by accident, not at every
// join.
const ownerGrace = 3 * time.Second

// notifierKey is the key whose owner is the cluster's notifier.
const notifierKey = "sextant/notifier"

// pathForward is the internal endpoint where query nodes forward their
// alerts to the notifier.
const pathForward = "/api/v1/internal/alerts"

// clusterState is a cluster node's shared state and the work sharing of
// its query nodes; nil on a single node.
type clusterState struct {
	kv     *kafkalog.State
	ev     *evaluators
	logger *slog.Logger

	// The hooks of the components that keep state from the KV in
	// memory, set while they are built (setupAlerting, setupCanary);
	// run by the sync loop when the KV or the owners change.
	hooks struct {
		sync.Mutex
		refreshRules    func(context.Context) error
		refreshSilences func(context.Context) error
		syncCanary      func()
		// notifier is told when this node stops being the notifier.
		notifier func(leader bool)
	}
	dirty struct{ rules, silences, canary atomic.Bool }
	wake  chan struct{} // capacity 1
}

// setupClusterState, with --kafka-brokers, opens the shared state (it
// reads the state topic to its end before the node starts) and runs the
// loop that keeps the node's components in step with it and with the
// live query nodes. Without it, it does nothing.
func setupClusterState(n *node, g *runGroup) error {
	cfg := n.cfg.Cluster
	if !cfg.enabled() || n.members == nil {
		return nil
	}
	logger := n.logger.With("component", "cluster-state")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kv, err := kafkalog.OpenState(ctx, kafkalog.StateOptions{Brokers: cfg.brokers(), Prefix: cfg.TopicPrefix,
		Logger: logger, Registry: n.reg})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cs := &clusterState{kv: kv, logger: logger, wake: make(chan struct{}, 1),
		ev: &evaluators{live: func() []cluster.Node { return n.members.LiveNodes(cluster.RoleQuery) },
			self: n.members.Status().Self, grace: ownerGrace, now: time.Now}}
	kv.Watch(cs.changed)
	n.state = cs
	// Added before the components that use the KV, so stopped after them.
	g.Go("cluster-state", func(ctx context.Context) error {
		err := cs.run(ctx)
		return errors.Join(err, kv.Close())
	})
	return nil
}

// stateKV is where the node keeps its server records: the cluster's shared
// state in cluster mode, else the local store's KV.
func (n *node) stateKV() tsdb.KV {
	if n.state != nil {
		return n.state.kv
	}
	return n.store.KV()
}

// ruleOwner is the alerting.Options.Owns of the node: nil (every rule) on
// a single node.
func (n *node) ruleOwner() func(string) bool {
	if n.state == nil {
		return nil
	}
	return func(id string) bool { return n.state.ev.owns("rule/" + id) }
}

// canaryOwner is the canary.RunnerOptions.Owns of the node.
func (n *node) canaryOwner() func(string) bool {
	if n.state == nil {
		return nil
	}
	return func(id string) bool { return n.state.ev.owns("canary/" + id) }
}

// changed is the shared state's watcher: it notes which component must
// read the KV again and wakes the sync loop (never blocks).
func (cs *clusterState) changed(key string) {
	switch {
	case strings.HasPrefix(key, "alerting/groups/"):
		cs.dirty.rules.Store(true)
	case strings.HasPrefix(key, "alerting/silences/"):
		cs.dirty.silences.Store(true)
	case strings.HasPrefix(key, "canary/runs/") && !strings.Contains(key[len("canary/runs/"):], "/"):
		cs.dirty.canary.Store(true) // a run record (not one of its intervals)
	default:
		return
	}
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

// run keeps the components in step until ctx ends: every 250 ms it reads
// the live query nodes (a change moves rules and canary runs, and maybe
// the notifier), and on a wake-up it has the components read what other
// nodes changed.
func (cs *clusterState) run(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	leader := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-cs.wake:
		}
		if cs.ev.update() {
			cs.dirty.rules.Store(true)
			cs.dirty.canary.Store(true)
			now := cs.ev.isLeader()
			if now != leader {
				cs.logger.Info("cluster notifier", "node", cs.ev.self, "notifier", now)
				cs.hooks.Lock()
				fn := cs.hooks.notifier
				cs.hooks.Unlock()
				if fn != nil {
					fn(now)
				}
				leader = now
			}
		}
		cs.hooks.Lock()
		rules, silences, canary := cs.hooks.refreshRules, cs.hooks.refreshSilences, cs.hooks.syncCanary
		cs.hooks.Unlock()
		if cs.dirty.rules.Swap(false) && rules != nil {
			if err := rules(ctx); err != nil && ctx.Err() == nil {
				cs.logger.Warn("refresh alert rules", "err", err)
				cs.dirty.rules.Store(true) // again at the next tick
			}
		}
		if cs.dirty.silences.Swap(false) && silences != nil {
			if err := silences(ctx); err != nil && ctx.Err() == nil {
				cs.logger.Warn("refresh silences", "err", err)
				cs.dirty.silences.Store(true)
			}
		}
		if cs.dirty.canary.Swap(false) && canary != nil {
			canary()
		}
	}
}

// evaluators are the live query nodes as this node goes by them, for
// sharing work by rendezvous hashing.
type evaluators struct {
	// live returns the live query nodes of the membership, sorted by id.
	live  func() []cluster.Node
	self  string
	grace time.Duration
	now   func() time.Time

	// nodes are the live query nodes this node goes by, sorted by id:
	// itself only once it has been live for grace.
	nodes atomic.Pointer[[]cluster.Node]
	// liveSince is when this node last became live (zero while it is
	// not); used by update only.
	liveSince time.Time
}

// update reads the live query nodes from the membership and reports
// whether the nodes this node goes by changed. It is called from one
// goroutine.
func (e *evaluators) update() bool {
	live := e.live()
	i := slices.IndexFunc(live, func(n cluster.Node) bool { return n.ID == e.self })
	if i < 0 {
		e.liveSince = time.Time{}
	} else {
		if e.liveSince.IsZero() {
			e.liveSince = e.now()
		}
		if e.now().Sub(e.liveSince) < e.grace {
			live = slices.Delete(live, i, i+1)
		}
	}
	if old := e.nodes.Load(); old != nil && slices.Equal(*old, live) {
		return false
	}
	e.nodes.Store(&live)
	return true
}

// owns says whether this node does the work of key.
func (e *evaluators) owns(key string) bool {
	nodes := e.nodes.Load()
	return nodes != nil && cluster.Pick(*nodes, key).ID == e.self
}

// leader returns the cluster's notifier, the zero Node when no query node
// is live.
func (e *evaluators) leader() cluster.Node {
	nodes := e.nodes.Load()
	if nodes == nil {
		return cluster.Node{}
	}
	return cluster.Pick(*nodes, notifierKey)
}

// isLeader says whether this node is the cluster's notifier.
func (e *evaluators) isLeader() bool { return e.leader().ID == e.self }

// forwarder is the built-in notifier of a query node in a cluster: the
// notifier node hands its alerts to its own dispatcher, the others
// forward theirs to it over HTTP (pathForward). A forward that fails is
// not retried: the rule's owner hands over its firing alerts, and those
// resolved in the last 15 minutes, after every evaluation, so the next
// one makes up for it.
type forwarder struct {
	ev     *evaluators
	local  alerting.Notifier
	client *http.Client
	token  string
	logger *slog.Logger
	q      chan forward // bounded; full: the batch is dropped (and counted)

	sent, failed, dropped *lib.Counter
}

// forward is one batch of alerts on its way to the notifier.
type forward struct {
	addr   string
	alerts []*alerting.Alert
}

// forwardQueue bounds the batches waiting to be forwarded; the batches
// waiting when one is sent go in the same request.
const forwardQueue = 1024

// maxForwardBytes bounds a forwarded batch.
const maxForwardBytes = 16 << 20

func newForwarder(ev *evaluators, local alerting.Notifier, token string, logger *slog.Logger, reg *lib.Registry) *forwarder {
	return &forwarder{ev: ev, local: local, token: token, logger: logger,
		client: &http.Client{Timeout: 5 * time.Second}, q: make(chan forward, forwardQueue),
		sent:    reg.Counter("sextant.cluster.alertForwards", "outcome", "sent"),
		failed:  reg.Counter("sextant.cluster.alertForwards", "outcome", "failed"),
		dropped: reg.Counter("sextant.cluster.alertForwards", "outcome", "dropped"),
	}
}

// Notify implements alerting.Notifier: it never blocks on the network.
func (f *forwarder) Notify(ctx context.Context, alerts []*alerting.Alert) {
	l := f.ev.leader()
	if l.ID == "" || l.ID == f.ev.self {
		f.local.Notify(ctx, alerts)
		return
	}
	select {
	case f.q <- forward{addr: l.Addr, alerts: alerts}:
	default:
		f.dropped.Add(float64(len(alerts)))
	}
}

// Run sends the queued batches until ctx ends: each request carries every
// batch queued for the same node by then (the rules evaluated at one step
// go in one request).
func (f *forwarder) Run(ctx context.Context) error {
	for {
		var fw forward
		select {
		case <-ctx.Done():
			return nil
		case fw = <-f.q:
		}
		byAddr := map[string][]*alerting.Alert{fw.addr: fw.alerts}
	drain:
		for range forwardQueue {
			select {
			case more := <-f.q:
				byAddr[more.addr] = append(byAddr[more.addr], more.alerts...)
			default:
				break drain
			}
		}
		for addr, alerts := range byAddr {
			if err := f.post(ctx, addr, alerts); err != nil && ctx.Err() == nil {
				f.failed.Add(float64(len(alerts)))
				f.logger.Warn("forward alerts to the notifier", "addr", addr, "alerts", len(alerts), "err", err)
				continue
			}
			f.sent.Add(float64(len(alerts)))
		}
	}
}

func (f *forwarder) post(ctx context.Context, addr string, alerts []*alerting.Alert) error {
	body, err := encodeAlerts(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+pathForward, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// serve is pathForward on the notifier: the alerts go to its dispatcher.
// A node that is not the notifier (the sender's view of the members was
// ahead of or behind its own) answers 503; the sender's next evaluation
// sends them again.
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) {
	if !f.ev.isLeader() {
		writeJSONError(w, http.StatusServiceUnavailable, "this node is not the cluster's notifier")
		return
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForwardBytes))
	if err != nil {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", maxForwardBytes))
		return
	}
	alerts, err := decodeAlerts(b)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.local.Notify(r.Context(), alerts)
	w.WriteHeader(http.StatusNoContent)
}

// wireAlert is an alerting.Alert as forwarded (JSON: Value may be NaN,
// which JSON cannot carry, so it is null then).
type wireAlert struct {
	Rule         string            `json:"rule"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Fingerprint  string            `json:"fingerprint"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Value        *float64          `json:"value,omitempty"`
	TraceIDs     []string          `json:"traceIDs,omitempty"`
}

// encodeAlerts is the body of a forward: {"alerts":[...]}.
func encodeAlerts(alerts []*alerting.Alert) ([]byte, error) {
	ws := make([]wireAlert, len(alerts))
	for i, a := range alerts {
		ws[i] = wireAlert{Rule: a.Rule, Labels: a.Labels, Annotations: a.Annotations, Fingerprint: a.Fingerprint,
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL, TraceIDs: a.TraceIDs}
		if !math.IsNaN(a.Value) && !math.IsInf(a.Value, 0) {
			v := a.Value
			ws[i].Value = &v
		}
	}
	return json.Marshal(struct {
		Alerts []wireAlert `json:"alerts"`
	}{ws})
}

// decodeAlerts reads the body of a forward; errors name the field.
func decodeAlerts(b []byte) ([]*alerting.Alert, error) {
	var body struct {
		Alerts []wireAlert `json:"alerts"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	out := make([]*alerting.Alert, len(body.Alerts))
	for i, w := range body.Alerts {
		switch {
		case len(w.Labels) == 0:
			return nil, fmt.Errorf("alerts[%d].labels: empty", i)
		case w.Fingerprint == "":
			return nil, fmt.Errorf("alerts[%d].fingerprint: empty", i)
		}
		a := &alerting.Alert{Rule: w.Rule, Labels: w.Labels, Annotations: w.Annotations, Fingerprint: w.Fingerprint,
			StartsAt: w.StartsAt, EndsAt: w.EndsAt, GeneratorURL: w.GeneratorURL, Value: math.NaN(), TraceIDs: w.TraceIDs}
		if w.Value != nil {
			a.Value = *w.Value
		}
		out[i] = a
	}
	return out, nil
}

// setupAlertSharing, in cluster mode, wires the alerting of a node into
// the cluster: rules move with their owners and read what other nodes
// saved, silences too, and the built-in notifier (disp) runs on the
// notifier node only, the others forwarding to it. It returns the
// notifier the rule manager must use (disp itself on a single node).
func setupAlertSharing(n *node, g *runGroup, mgr func() *alerting.Manager, sil *alerting.Silences, disp interface {
	alerting.Notifier
	Reset()
}) alerting.Notifier {
	cs := n.state
	if cs == nil {
		return disp
	}
	f := newForwarder(cs.ev, disp, n.cfg.AuthToken, n.logger.With("component", "alert-forward"), n.reg)
	n.mux.HandleFunc("POST "+pathForward, f.serve)
	g.Go("alert-forward", f.Run)
	cs.hooks.Lock()
	defer cs.hooks.Unlock()
	cs.hooks.refreshRules = func(ctx context.Context) error { return mgr().Refresh(ctx) }
	cs.hooks.refreshSilences = sil.Refresh
	cs.hooks.notifier = func(leader bool) {
		if !leader {
			disp.Reset() // another node notifies now
		}
	}
	return f
}

// alertingRefresh is the alerting API's Refresh in cluster mode (nil on a
// single node): reads see what other nodes saved.
func (n *node) alertingRefresh(mgr *alerting.Manager, sil *alerting.Silences) func(context.Context) error {
	if n.state == nil {
		return nil
	}
	return func(ctx context.Context) error { return errors.Join(mgr.Refresh(ctx), sil.Refresh(ctx)) }
}

// onCanary sets the hook that makes the canary runner read the runs again
// (nil cs: a single node, nothing to do).
func (cs *clusterState) onCanary(sync func()) {
	if cs == nil {
		return
	}
	cs.hooks.Lock()
	defer cs.hooks.Unlock()
	cs.hooks.syncCanary = sync
}
