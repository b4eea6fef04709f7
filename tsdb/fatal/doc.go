// Package fatal is the one place where the stores (tsdb/disk and
// tracing/spanstore) handle Pebble's fatal errors: a corrupt table, a
// write or sync the disk refused, a broken invariant. Pebble calls its
// Logger's Fatalf and expects it not to return; the default panics with a
// goroutine dump. A Trap instead records the first fatal error, logs it,
// and unwinds with a private panic value that the store's operations turn
// back into an error (Trap.Recover). Data corruption seen by a read is
// reported through Pebble's DataCorruption event, which a Trap records
// without unwinding, so the read itself fails with an error. Once failed,
// the store answers Err() on every operation and the server stops cleanly
// with the error named, rather than crash-looping.
//
// The package uses the standard library only: Pebble's Logger interface is
// satisfied structurally, so both stores (which may not import each
// other) share it.
package fatal
