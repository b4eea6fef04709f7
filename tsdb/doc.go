// Package tsdb is the contract of Sextant's time-series store, with no
// implementation: what a store accepts (Appender, Batch, Datapoint), what it
// answers (Querier, FetchRequest, SeriesSet, TagsRequest), a small durable
// key/value store beside the series (KV), and the sentinel errors callers
// test with errors.Is (ErrClosed, ErrOverloaded, ErrCorrupt, ...).
//
// Everything above the store — ingest, the stack language, alerting, the UI
// — depends on this package and tsdb/tags only, never on an
// implementation, the way Prometheus's engine sees storage only through
// storage/interface.go. That keeps the language testable against a small
// in-memory store (query/querytest) and lets a clustered querier implement
// the same interfaces later without its callers noticing.
//
// The model, in the store's own units: a series is a normalized tag set
// (tags.Set, always with a name tag). Timestamps are int64 Unix
// milliseconds and ranges are [start, end). Datapoints are normalized on
// the way in to a fixed storage step according to their data source type
// (DSType, from the atlas.dstype tag): rates are time-weighted, gauges keep
// the step's maximum, counters become per-second rates, sums add up. A
// fetch consolidates storage steps into the query's step (Consolidation)
// and may aggregate across series inside the store (Aggregation, GroupBy),
// so that a grouped sum over a hundred thousand series never materializes
// one array per series above the store.
//
// The interfaces' comments are their contracts: ownership of returned
// slices, concurrency, durability on return, and behaviour at the edges.
// tsdb/tsdbtest holds the conformance suite every implementation passes.
//
// This package imports no net/http and nothing of the query language: the
// store does not know that HTTP or stack programs exist (deps_test.go).
package tsdb
