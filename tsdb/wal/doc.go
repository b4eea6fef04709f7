// Package wal is the store's write-ahead log: every accepted write is
// appended here and made durable before it is acknowledged, and on start the
// store replays what its checkpoints do not yet cover.
//
// Records are framed with their length and a CRC-32C and numbered by a log
// sequence number (LSN) that continues across segment files. Writers Log a
// record (a copy into a buffer, under a mutex) and then Sync: the first
// writer to find no flush running becomes the leader, writes the whole
// buffer and fsyncs, and every writer whose record went out with it is done
// (group commit). A crash can tear only the tail of the last segment, which
// Replay cuts off; damage followed by valid records is reported as a
// *CorruptError naming file and offset, and Repair quarantines it. The
// segments live on a pebble vfs.FS, the store's. FORMAT.md gives the file
// layout.
package wal
