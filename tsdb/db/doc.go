// Package db opens the time-series store: Open puts tsdb/head (memory),
// tsdb/wal (the write-ahead log) and tsdb/disk (Pebble) together behind
// the tsdb contract: DB implements tsdb.Appender and tsdb.Querier, and
// DB.KV returns the store's tsdb.KV. cmd/sextant opens one per data directory; tests open one with
// an empty directory, which keeps everything in memory.
//
// Write path: Append hands the batch to the head, which normalizes it and
// logs one WAL record per touched shard under that shard's lock; Append
// returns once the records are as durable as Options.Fsync promises. When
// the log falls more than MaxLogBacklog behind, Append sheds load with
// tsdb.ErrOverloaded instead of queueing without bound.
//
// Marks: a cluster store node applies its partitions of the log through
// AppendMarked (tsdb.MarkedAppender), which logs a batch between a begin
// and a mark record and returns once the mark is durable; replay keeps a
// batch only when its mark follows it, and checkpoints keep the marks, so
// after any crash the store holds a mark if and only if it holds the
// batches up to it (mark.go, FORMAT.md). A single node never logs them.
//
// Read path: Fetch selects series ids from the head's index, then reads
// each period's blocks from memory (recent) or disk (older than the memory
// retention), consolidates storage steps into the query step and
// aggregates across series while it reads, so a grouped sum holds one
// array per group, not per series. Series come from the head in batches
// of up to 128 (head.ScanBatches); with more than one core and a batch
// large enough, a second goroutine owned by the fetch and waited for
// before the batch ends reads part of it: a segment of the range, about a
// block, of every series when the fetch aggregates at the storage step
// over several blocks (fetch_segment.go), otherwise some of the series,
// which the fetch then aggregates (fetch_batch.go). Either way every point
// adds its series in id order, so the answer is the same bits as on one
// core. MaxSeriesPerQuery and MaxDatapointsPerQuery refuse a
// fetch with a *tsdb.LimitError before it reads anything.
//
// Durability: a maintenance goroutine, owned by the DB and stopped by
// Close, seals idle blocks and enforces retention every
// MaintenanceInterval, and checkpoints every CheckpointInterval: it writes
// the head's changed state to disk shard by shard, then deletes the WAL
// segments every shard's stamp has passed. Open reads the checkpoint and
// replays the WAL records above each shard's stamp, so a crash at any
// point loses nothing that Append acknowledged (crash_test.go kills a
// writing process and checks every acknowledged step). Time comes from Options.Now.
package db
