// Package promql evaluates PromQL over the store: the subset Grafana's
// Prometheus data source needs (docs/prometheus.md lists it with every
// difference from Prometheus), parsed with Prometheus's own parser and
// evaluated here, through query/eval and the tsdb contract.
//
// The model is Sextant's, not Prometheus's. The store holds one value per
// series per storage step S, stamped with the end of the step; counters
// are already per-second rates. A query is evaluated at points
// T_i = start + i*step, and a selector at T answers the storage step that
// ends at or before T - offset (no five-minute lookback: a step without
// data is a missing point). A range selector x[r] stands for the storage
// steps ending in (T-r, T]: rate(x[r]) is the average stored rate over
// them, increase(x[r]) that rate times r.
//
// Every intermediate value is held for all points at once: a scalar is one
// value per point and a vector a list of series with one value per point,
// NaN where the series has no sample. Selectors are fetched once per
// evaluation over the storage steps the points need, through
// eval.Evaluator, so sum, min, max and count (and avg as sum/count) by a
// list of tags over a plain selector are pushed down into the store as
// tsdb.FetchRequest aggregations, as for the stack language.
//
// Anything outside the subset is a bad_data *Error naming the construct,
// never a wrong answer. A query containing ",:" that is not PromQL is the
// stack language and is evaluated by the query package instead.
package promql
