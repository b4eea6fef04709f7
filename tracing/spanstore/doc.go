// Package spanstore implements the tracing contract on Pebble, in its own
// database (under <data-dir>/traces).
//
// Each write (one OTLP export) becomes one block: the request's processes
// once, then its spans behind an offset table, so that reading a trace
// decodes only its own spans. Next to the block the same Pebble batch
// writes the indexes: per trace, where its spans are in the block; per
// service and trace, a search entry keyed by the hour and start time of
// its first span, whose value digests every span (operation, kind,
// status, start, duration) so searches filter without reading blocks; the
// catalog of operations; and the dependency edges the write completes.
// The batch commits with a sync before WriteTraces returns, and Pebble
// groups the syncs of concurrent writes.
//
// In a cluster a store node's span store also knows the partition count
// of the span log (SetPartitions) and counts the calls between services
// by the partition of their trace, so that the counts of store nodes
// answering for disjoint partitions add up (DependenciesIn). It keeps,
// in the batch of each write it applies from the log, the position in
// the log the write brings it to (a mark, tracing.MarkedWriter), so that
// after a crash the node resumes exactly after what the store holds.
//
// Memory: Pebble's memtables and block cache hold the recent blocks and
// index entries; the catalog and the edge tracker (recent span ids and
// children waiting for their parent, in bounded generations) live in
// memory and are rebuilt (catalog) or restart empty (edges).
//
// Retention deletes, every minute, the blocks whose spans all ended
// before the retention horizon (with their trace entries), and the
// search, dependency and exemplar entries of the hours before it, and
// the operations whose spans have all gone; over
// the size cap it drops the oldest hour early. FORMAT.md documents the
// keys.
package spanstore
