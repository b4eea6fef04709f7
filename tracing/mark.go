package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Mark is a position in a log a span store applies (in cluster mode: a
// partition of the spans topic in Kafka): every record of partition
// Partition of Log before offset Next is in the store.
type Mark struct {
	Log       string // the log's name: not empty, no 0x00 byte
	Partition int    // >= 0, < 2^31
	Next      int64  // offset of the next record to apply, >= 0
}

// Validate checks the mark's fields.
func (m Mark) Validate() error {
	switch {
	case m.Log == "":
		return errors.New("tracing: mark without a log")
	case strings.IndexByte(m.Log, 0) >= 0:
		return fmt.Errorf("tracing: mark of log %q: a log name holds no 0x00", m.Log)
	case m.Partition < 0 || int64(m.Partition) >= 1<<31:
		return fmt.Errorf("tracing: mark of partition %d", m.Partition)
	case m.Next < 0:
		return fmt.Errorf("tracing: mark at offset %d", m.Next)
	}
	return nil
}

// MarkedWriter is an optional ability of a Writer, found by a type
// assertion: writing spans (or exemplars) together with the position in a
// log that the write brings the store to, so that whoever applies the log
// resumes exactly after what the store holds, whatever moment the process
// died at. It is the span store's side of tsdb.MarkedAppender.
//
// Version 1 of this extension; the consumer of the cluster log
// (ingest/kafkalog) is its only caller.
type MarkedWriter interface {
	// WriteTracesMarked is WriteTraces, and records m atomically with
	// td's spans and everything they index (trace and search entries,
	// dependency counts): when it returns nil both are durable; after a
	// crash at any moment, the store holds m if and only if it holds the
	// spans of every marked write up to it. A td without spans records m
	// alone. An error means neither may be assumed stored, and a failed
	// write leaves the previous mark in place. Marks of one log and
	// partition must be written one at a time, with non-decreasing Next.
	// Safe for concurrent use.
	WriteTracesMarked(ctx context.Context, td ptrace.Traces, m Mark) error
	// WriteExemplarsMarked is ExemplarStore.WriteExemplars, and records m
	// with the exemplars as WriteTracesMarked does with spans, durable
	// before it returns.
	WriteExemplarsMarked(ctx context.Context, ex []Exemplar, m Mark) error
	// Marked returns Next of the newest mark of partition p of log the
	// store holds (read when it opened, or written since), and false when
	// it holds none. Safe for concurrent use.
	Marked(log string, p int) (next int64, ok bool)
}
