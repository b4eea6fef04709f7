// Package head is the in-memory part of the time-series store: every
// series, its normalization state, its open block and its recent sealed
// blocks, and the inverted tag index (tsdb/index). tsdb/db owns a Head and
// puts the write-ahead log and tsdb/disk around it; nothing else writes to
// one.
//
// Series live in Shards stripes chosen by the hash of their tags, each with
// its own lock, so that concurrent appends to different series rarely
// contend (Prometheus's stripeSeries makes the same cut). A series id packs
// the shard and the index inside it and never changes, so a fetch or a
// checkpoint can go from an id to its series without a map lookup by tags.
//
// Memory per series is what a head of a million series costs beside its
// data, so the series structures are kept small and mostly free of
// pointers the collector must follow (docs/benchmarks.md, "Memory per
// series at a million series"): a series' struct is 144 bytes, allocated
// 128 at a time; a shard finds its series by tag hash in an open-addressing
// table of 8-byte slots (head_table.go); and the tags are interned once
// per head (head_tags.go), a series keeping the ids of its tags in its
// shard's tag slab, a dozen bytes rather than its hundred-byte encoding,
// which readers rebuild.
//
// Append is the hot path and allocates nothing for a series that exists
// (TestAppendAllocs holds it to that). It takes each touched shard's lock
// once per batch, normalizes the samples into storage steps, and writes the
// shard's WAL record through Options.Log while still holding the lock: the
// log order of a shard's records is then their apply order, which is what
// makes replay reproduce the memory exactly. Appends older than MaxAge or
// further than MaxFuture ahead of Options.Now, and new series beyond the
// cardinality limits, are rejected per datapoint in Batch.Rejected, never
// with an error for the whole batch.
//
// Data that leaves the head is immutable or copied: sealed block bytes are
// shared read-only, open blocks are copied under the shard lock (Scan;
// ScanAhead collects the next batch while the reader works on one).
// Blocks are sealed when a write of a later period comes, or when their
// period ended SealDelay ago and the series got no write for SealDelay of
// wall time (SealIdle: a backfill of old periods is not sealed under its
// senders), and dropped once persisted and older than the
// memory retention (DropBefore); tsdb/db's maintenance loop calls both.
// Late writes, into a period before a series' newest block, go to the
// series' late block, an open block of that period (head_late.go), rather
// than decode and re-encode the sealed block per datapoint.
// CaptureShard, Restore* and Replay are the checkpoint and recovery side;
// FORMAT.md describes the WAL records and state snapshots they exchange.
package head
