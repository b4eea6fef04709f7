// Package canary judges a canary against its baseline, as Netflix's
// Kayenta does for Atlas, but inside the server that holds the metrics.
//
// A judgement takes a window [start, end), a baseline query and a canary
// query (tag queries of the stack language) and a list of metrics, each an
// ASL expression. Every metric is evaluated twice over the window: once
// with the baseline query ANDed into every data expression of its tree
// (expr.AndQuery, the :cq rewrite) and once with the canary query. The
// finite step values of each evaluation form a sample; the two samples are
// compared with a two-sided Mann-Whitney U test (stats.go) and the
// Hodges-Lehmann estimate of the shift, and the ratio of their medians is
// the effect. A metric is high or low when its p-value is below its
// significance and the ratio moves beyond its allowed effect; a move in
// the harmless direction of the metric still passes. The score is the
// weighted share of passing metrics; a critical metric that fails fails
// the whole judgement.
//
// Runner keeps continuous runs: it judges a growing window every interval
// for a lifetime, stops early on fail, keeps each run's state, every
// interval's answer and the verdict in a tsdb.KV under the prefix
// "canary/", and calls a notify function (the webhook, built by the HTTP
// layer) on the verdict. Its clock is injected; cmd owns its Run. Runners
// sharing one KV (the query nodes of a cluster) each judge the runs
// RunnerOptions.Owns gives them, and Sync takes up the runs another node
// started or left.
//
// The package evaluates through the query facade and the tsdb contract
// only; it speaks no HTTP (query/api serves it).
package canary
