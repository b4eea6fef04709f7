// Package live is the live evaluator: it evaluates subscribed stack-language
// expressions once per step as each step closes and fans the lines out to
// every subscriber. The streaming API (ui.Stream) and the alert rules both
// run on it, so what a dashboard shows live and what pages someone are
// computed once, the same way.
//
// Model. A subscription is an expression, a step (a multiple of the storage
// step) and an optional backfill. Subscriptions with the same normalized
// expression and step share one group; a group is evaluated once for every
// step that closes, Delay after the close, by Run. The point at T stands
// for the interval (T-step, T], as everywhere in the store, so the point T
// is evaluated at wall time T+Delay.
//
// Identity with the graph API. A group evaluates through the same engine as
// /api/v1/graph (query.Engine) over a range ending with the new step. For an
// expression without stateful words the range is that one step. Stateful
// words (:des, :sdes, :trend, :rolling-*, :integral, :delay, ...) start
// empty at their subscription's origin (the start of its backfill, or its
// first live step) exactly as the graph API's start empty at the start of
// its range. Windowed words (:rolling-*, :delay, :trend, :derivative) need
// only their last N steps, so each step re-evaluates that window. Words
// whose state never forgets (:des, :sdes, :integral, :cumulative-max)
// carry their state from step to step (carry.go) when they sit at the root
// of a presentation: a step then reads only the window of the expression
// below them, and the first step builds the state from the origin once
// (:sdes counts its periods from the origin, as a graph from there does).
// Other unbounded shapes (an unbounded word below another operator)
// re-evaluate everything since the origin, up to Options.MaxWindow steps.
//
// Series sets. Each group evaluates through a view of the store that
// keeps, per query of its expression, the tsdb.Selection the store filled
// in: a live step selects no series unless the index gained one that the
// query could match (the store's epoch per name), and a one-step fetch
// reads the closed step's point from the head rather than its blocks. Either way the values a
// subscriber receives for the steps [origin, T] are exactly what the graph
// API returns for that range. Stateful subscriptions share a group when
// they share the origin. Range summaries (:filter with :stat-*, :topk,
// :bottomk, :sort, :limit) see the evaluated window, one step for an
// expression without stateful words, as Atlas' LWC does.
//
// Backfill then live. Subscribe evaluates the backfill range synchronously
// and delivers it before any live step; every subscription remembers the
// next step it needs, so a step evaluated while the backfill ran is
// evaluated again for it (no gap) and a step it already has is skipped (no
// duplicate).
//
// Late datapoints. A datapoint that arrives after its step was evaluated
// (the store accepts them within --ingest-max-age) is not sent again: the
// subscriber keeps the value it got, and a new subscription (or a
// reconnect with backfill) sees the corrected value. Delay exists to let
// normal reporting lag land before the evaluation.
//
// Concurrency. Run is the only goroutine that evaluates live steps; sinks
// are called from it (and from Subscribe for the backfill), in step order,
// never concurrently for one subscription, and must not block.
package live
