package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/ui"
)

// setupLive runs the live evaluator (n.live, shared with alert rules) and
// serves it as WebSocket and SSE streams.
func setupLive(n *node, g *runGroup) error {
	ev, err := live.New(live.Options{
		Querier:     n.ruleQuerier(), // strong reads on a query node (cluster_consistency.go)
		StorageStep: ms(n.cfg.Step),
		Delay:       n.cfg.LiveDelay,
		Registry:    n.reg,
		Logger:      n.logger.With("component", "live"),
	})
	if err != nil {
		return err
	}
	n.live = ev
	stream, err := ui.NewStream(ui.StreamOptions{
		Live:           ev,
		AllowedOrigins: splitList(n.cfg.AllowedOrigins),
		Registry:       n.reg,
		Logger:         n.logger.With("component", "stream"),
	})
	if err != nil {
		return err
	}
	stream.Register(n.mux)
	// The origins allowed to open streams may call the other APIs too.
	n.middleware = append(n.middleware, stream.CORS)
	// Streams end as shutdown starts: SSE responses would otherwise hold
	// the listener's drain up until its timeout.
	n.onShutdown = append(n.onShutdown, func() { _ = stream.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	g.Add("stream", func() error { <-ctx.Done(); return stream.Close() }, func(error) { cancel() })
	g.Go("live", ev.Run)
	return nil
}

// httpHandler is n.mux inside the middleware, the first outermost, with
// inner (the access check) closest to the mux: a CORS preflight is
// answered before it, as browsers send no credentials with one. Between
// the access check and the mux, a cluster node refuses what its roles do
// not serve (cluster_roles.go).
func (n *node) httpHandler(inner func(http.Handler) http.Handler) http.Handler {
	h := inner(n.gateRoles(n.mux)) // cluster_roles.go
	for i := len(n.middleware) - 1; i >= 0; i-- {
		h = n.middleware[i](h)
	}
	return h
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
