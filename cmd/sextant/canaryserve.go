package main

import (
	"net/http"
	"time"

	queryapi "github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/canary"
)

// setupCanary serves the canary judgement API and runs the continuous
// canary runs (kept in the store's KV under canary/, or in cluster mode in
// the shared state, judged by the query node that owns each run).
func setupCanary(n *node, g *runGroup) error {
	logger := n.logger.With("component", "canary")
	j, err := canary.New(canary.Options{
		Querier:     n.querier(),
		StorageStep: ms(n.cfg.Step),
		Logger:      logger,
		Registry:    n.reg,
	})
	if err != nil {
		return err
	}
	runner, err := canary.NewRunner(canary.RunnerOptions{
		Judge:    j,
		KV:       n.stateKV(),
		Owns:     n.canaryOwner(), // nil on a single node: every run
		Notify:   queryapi.Webhook(&http.Client{Timeout: 30 * time.Second}),
		Logger:   logger,
		Registry: n.reg,
	})
	if err != nil {
		return err
	}
	api, err := queryapi.NewCanary(queryapi.CanaryOptions{Judge: j, Runner: runner, Logger: logger, Registry: n.reg})
	if err != nil {
		return err
	}
	api.Register(n.mux)
	n.state.onCanary(runner.Sync)
	g.Go("canary", runner.Run)
	return nil
}
