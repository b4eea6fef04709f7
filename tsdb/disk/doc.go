// Package disk is the persistent part of the time-series store, on Pebble:
// the series table, each series' checkpointed state, sealed blocks, the
// checkpoint stamps of the shards, the records of tsdb.KV, and the marks
// (tsdb.Mark) of a cluster store node. FORMAT.md
// gives the key layout; its first byte is the kind of record, and integers
// are big-endian so that byte order is numeric order.
//
// Blocks sort by period first, so retention is one range deletion and a
// query reads one period's blocks in id order with a single forward
// iterator. Only tsdb/db calls this package: it writes a checkpoint per
// shard atomically (new series, changed states and blocks, the new stamp)
// and reads everything back on open before replaying the WAL above the
// stamps.
//
// A disk that refuses a write or a sync is not retried around: once Pebble
// reports a fatal error every later operation returns ErrFailed, and the
// process should restart, since the WAL holds every acknowledged write.
// Options.FS is Pebble's vfs.FS, so tests run on vfs.NewMem() and inject
// faults with vfs/errorfs. Only this package and tracing/spanstore import
// Pebble.
package disk
