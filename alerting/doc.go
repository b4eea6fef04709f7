// Package alerting evaluates alert rules written in the stack language and
// keeps their state.
//
// A rule's expression yields lines; each line is one alert instance keyed by
// its labels (the line's tags, the rule's labels, alertname). A value that is
// non-zero and not NaN means active. An instance moves inactive → pending →
// firing → resolved (Prometheus' for and keep_firing_for), and a rule whose
// expression yields no line or fails has a nodata or error instance, so a
// broken rule is never silent.
//
// The Manager owns the rules and their state. It does not evaluate anything
// itself: it subscribes each rule's expression through a SubscribeFunc that
// cmd builds on the live evaluator (query/live), and runs the state machine
// on every closed step it is given. State is written to a tsdb.KV after every
// change, so a restart neither re-pages a firing alert nor forgets a pending
// timer; steps missed while down are replayed from the subscription's
// backfill. Transitions are kept as history (KV, with retention) and as the
// ALERTS series (tsdb.Appender). Alerts to send go to a Notifier; the
// concrete notifiers, routing and grouping live in alerting/notify.
//
// Several managers may share one KV (the query nodes of a cluster, whose
// KV is replicated through Kafka): Options.Owns then says which rules this
// one evaluates, and Refresh reads again what the others saved (groups,
// the state of their rules). A rule handed to another manager is stopped
// without resolving anything; its new owner resumes from the saved state.
//
// Silences (matchers over labels) are stored here so that the notifier, the
// API and backtests share them. Backtest runs the same state machine over
// stored history through the query engine, step by step.
//
// Times inside the package are Unix milliseconds; time.Time appears only in
// the Alert type handed to notifiers and in Options' clock.
package alerting
