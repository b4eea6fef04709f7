// Package fanout is the read side of cluster mode: a query node's view of
// the store nodes, and the store nodes' internal endpoints that serve it.
//
// A cluster splits series into partitions (tags.PartitionOf) and spans by
// trace (tracing.TracePartition); each partition is served by several
// store nodes (Owners, from the membership). Querier implements the
// tsdb.Querier, tsdb.SeriesLister, tracing.Reader, tracing.Catalog and
// tracing.DependencyReader contracts over them, so the stack language, the
// Prometheus engine, the HTTP APIs, live streaming and alert rules read a
// cluster exactly as they read one store. For every read it asks one owner
// of each partition for that partition's data only (a node may hold
// others it once served); a node that fails or runs out of its share of
// the deadline is dropped for the rest of the read and its partitions go
// to their next owner. Aggregation is pushed down: a node answers a
// grouped sum as one line per group, and the query node merges partial
// aggregates (sum and count add, min and max take the extreme, NaN is no
// data). When every owner of a partition failed, the answer is what the
// others said, marked partial in the request's context (tsdb.MarkPartial,
// tracing.MarkPartial) so the HTTP layer flags it; it is never a quiet
// wrong number.
//
// A fetch is held to the query limits (Options.Limits) on the total over
// the store nodes, as one store holding all the data holds it: every node
// tells what its share costs (tsdb.Cost) once it selected the series and
// before it reads them, in an informational 103 answer; the querier adds
// the costs up and, over a limit, ends the read with the LimitError one
// store would give, the same limit and count (budget.go). Each node is
// also sent what is left of the limits and refuses a share over it at
// once. Dependencies add up the same way: every node counts the calls in
// the traces of the partitions asked of it.
//
// A read under WithConsistency(ctx, Strong) is read-after-write: the
// querier reads the end offsets of the log (Options.EndOffsets) when the
// read arrives and sends each store node those of the partitions asked of
// it; the node waits until its consumer applied them
// (HandlerOptions.WaitApplied) before it reads, or answers 503 and the
// partition goes to its next owner. So the answer holds every write Kafka
// acknowledged before the read, or is marked partial, or fails.
//
// Handler serves a store node's internal endpoints (POST
// /api/v1/internal/fetch, tags, series, trace, traces, catalog, dependencies)
// over the node's own stores. The metric messages are a compact binary
// format (FORMAT.md); the span messages are gob.
package fanout
