// Package tracing is the contract of Sextant's span store: how ingest
// writes OTLP spans (Writer), how the query side reads traces back
// (Reader, Catalog, DependencyReader) and the exemplars that link metrics
// to traces, and the span model those reads return. It has no
// implementation; tracing/spanstore implements it on Pebble.
//
// Times are Unix nanoseconds (int64) as in OTLP; the HTTP layer converts
// to Jaeger's microseconds.
package tracing

import (
	"context"
	"encoding/hex"
	"errors"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Errors of the store.
var (
	// ErrNotFound is returned by GetTrace for an unknown trace id.
	ErrNotFound = errors.New("tracing: trace not found")
	// ErrOverloaded means the store cannot take writes now; retry later.
	ErrOverloaded = errors.New("tracing: store overloaded")
	// ErrUnavailable means the store cannot be reached now (in cluster
	// mode: the log did not acknowledge the write in time); retry later.
	ErrUnavailable = errors.New("tracing: store unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("tracing: store closed")
)

// Writer stores spans.
type Writer interface {
	// WriteTraces stores every span of td and returns once they are
	// durable (they survive a crash of the process). It does not retain
	// td. An error means none of td's spans may be assumed stored. Safe
	// for concurrent use; concurrent writes share log syncs.
	WriteTraces(ctx context.Context, td ptrace.Traces) error
}

// Reader finds traces. The returned traces are the caller's to modify.
// Safe for concurrent use.
type Reader interface {
	// GetTrace returns every stored span of the trace, in start order, or
	// ErrNotFound.
	GetTrace(ctx context.Context, id TraceID) (Trace, error)
	// FindTraces returns the traces with at least one span matching q,
	// newest first (by their matching spans' start), complete (all
	// their spans), at most q.Limit of them.
	FindTraces(ctx context.Context, q Query) ([]Trace, error)
}

// Catalog lists what the store has seen.
type Catalog interface {
	// Services returns the service names, sorted.
	Services(ctx context.Context) ([]string, error)
	// Operations returns the operations of a service, sorted by name then
	// kind; kind SpanKindUnspecified means every kind.
	Operations(ctx context.Context, service string, kind SpanKind) ([]Operation, error)
}

// DependencyReader reports the calls between services.
type DependencyReader interface {
	// Dependencies returns, for spans that started in [start, end), how
	// often a span of one service was the parent of a span of another,
	// sorted by parent then child.
	Dependencies(ctx context.Context, start, end int64) ([]Dependency, error)
}

// DependencyPartitionReader is an optional ability of a DependencyReader,
// found by a type assertion: counting calls by partition of a cluster's
// span log, so that counts of disjoint partitions, from different stores,
// add up.
type DependencyPartitionReader interface {
	// DependenciesIn returns, as Dependencies does, the calls between
	// services counted in [start, end) in the traces of partitions want
	// of a log of n partitions (TracePartition). unplaced are the calls
	// of the window the store counted without a partition of n (before it
	// knew n, or with another n): they may be of any partition, so the
	// caller cannot add them up across stores. Both are sorted by parent
	// then child. Safe for concurrent use.
	DependenciesIn(ctx context.Context, start, end int64, n int, want []int) (in, unplaced []Dependency, err error)
}

// TraceID is a 16-byte trace id; its text form is 32 hex digits.
type TraceID [16]byte

// SpanID is an 8-byte span id; its text form is 16 hex digits.
type SpanID [8]byte

// String returns the id in hex.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// String returns the id in hex.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether the id is all zeros (invalid in OTLP).
func (id TraceID) IsZero() bool { return id == TraceID{} }

// IsZero reports whether the id is all zeros: no parent, for a parent id.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// ParseTraceID parses 1 to 32 hex digits; shorter ids (Jaeger's 64-bit
// ones, or ids written without leading zeros) are zero-padded on the left.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, errors.New("tracing: a trace id has 1 to 32 hex digits")
	}
	var buf [32]byte
	for i := range buf {
		buf[i] = '0'
	}
	copy(buf[32-len(s):], s)
	if _, err := hex.Decode(id[:], buf[:]); err != nil {
		return TraceID{}, errors.New("tracing: a trace id is hex digits")
	}
	return id, nil
}

// SpanKind is OTLP's span kind.
type SpanKind uint8

// The span kinds, with OTLP's numbers.
const (
	SpanKindUnspecified SpanKind = iota
	SpanKindInternal
	SpanKindServer
	SpanKindClient
	SpanKindProducer
	SpanKindConsumer
)

var kindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// String returns Jaeger's lowercase name of the kind ("" for unspecified).
func (k SpanKind) String() string {
	if k == SpanKindUnspecified || int(k) >= len(kindNames) {
		return ""
	}
	return kindNames[k]
}

// ParseSpanKind parses a kind name (server, client, ...); "" is
// SpanKindUnspecified.
func ParseSpanKind(s string) (SpanKind, bool) {
	if s == "" {
		return SpanKindUnspecified, true
	}
	for i, n := range kindNames {
		if i > 0 && n == s {
			return SpanKind(i), true
		}
	}
	return 0, false
}

// StatusCode is OTLP's span status code.
type StatusCode uint8

// The status codes, with OTLP's numbers.
const (
	StatusUnset StatusCode = iota
	StatusOK
	StatusError
)

// ValueType is the type of an attribute value.
type ValueType uint8

// Attribute value types. OTLP arrays and maps are stored as their JSON
// text, typed ValueString, as Jaeger's translator shows them.
const (
	ValueString ValueType = iota
	ValueBool
	ValueInt
	ValueFloat
	ValueBytes
)

// KeyValue is one attribute.
type KeyValue struct {
	Key   string
	Type  ValueType
	Str   string // ValueString; ValueBytes holds the raw bytes here too
	Int   int64  // ValueInt; ValueBool: 0 or 1
	Float float64
}

// Event is a timed annotation of a span (a Jaeger log).
type Event struct {
	Time              int64
	Name              string
	Attributes        []KeyValue
	DroppedAttributes uint32
}

// Link points at another span (a Jaeger FOLLOWS_FROM reference).
type Link struct {
	TraceID           TraceID
	SpanID            SpanID
	TraceState        string
	Attributes        []KeyValue
	DroppedAttributes uint32
}

// Resource is the process a span came from: service.name and the other
// resource attributes.
type Resource struct {
	Service    string
	Attributes []KeyValue // without service.name
}

// Span is one stored span.
type Span struct {
	TraceID       TraceID
	SpanID        SpanID
	ParentSpanID  SpanID // zero for a root
	TraceState    string
	Flags         uint32
	Name          string
	Kind          SpanKind
	Start, End    int64 // Unix ns
	Status        StatusCode
	StatusMessage string
	Attributes    []KeyValue
	Events        []Event
	Links         []Link
	Resource      *Resource // shared by the spans of one process; do not modify
	ScopeName     string
	ScopeVersion  string
	// What was dropped: by the sender (OTLP's dropped counts) plus what
	// ingest cut to stay within its limits.
	DroppedAttributes, DroppedEvents, DroppedLinks uint32
	// TruncatedValues counts attribute values ingest shortened.
	TruncatedValues uint32
}

// Duration is the span's length.
func (s *Span) Duration() time.Duration { return time.Duration(s.End - s.Start) }

// Trace is the spans of one trace id.
type Trace struct {
	ID    TraceID
	Spans []Span
}

// Operation is one operation name of a service and the kind of its spans.
type Operation struct {
	Name string
	Kind SpanKind
}

// Dependency counts the calls from one service to another.
type Dependency struct {
	Parent, Child string
	CallCount     int64
}

// AttrMatch is how an attribute filter compares values.
type AttrMatch uint8

// Attribute filter kinds.
const (
	MatchExact  AttrMatch = iota // the value's text equals Value
	MatchPrefix                  // the value's text starts with Value
	MatchRegex                   // Regex matches the whole value's text
)

// AttrFilter selects spans by one attribute: a span attribute, a resource
// attribute, or one of the derived tags span.kind, otel.status_code,
// error (true when the status is ERROR) and otel.scope.name.
type AttrFilter struct {
	Key   string
	Match AttrMatch
	Value string
	Regex *regexp.Regexp // MatchRegex; anchored by the caller
}

// Query selects traces: one span of the trace must satisfy every span
// condition (service, operation, kind, status, attributes, duration,
// start time), and the whole trace the trace-duration bounds.
type Query struct {
	Service   string // required
	Operation string // "" for any
	Kind      SpanKind
	// Status: StatusUnset means any; StatusError only failed spans;
	// StatusOK spans that did not fail.
	Status      StatusCode
	Attributes  []AttrFilter
	MinDuration time.Duration // of the span; 0 for no bound
	MaxDuration time.Duration
	// Trace duration: from the first span's start to the last span's end.
	MinTraceDuration time.Duration
	MaxTraceDuration time.Duration
	Start, End       int64 // span start in [Start, End), Unix ns
	Limit            int   // at most this many traces; > 0
}

// Exemplar is the slowest span of one span-metrics series in one step.
type Exemplar struct {
	Tags     map[string]string // the series' tags (service.name, operation, span.kind, status.code)
	T        int64             // step end, Unix ms
	TraceID  TraceID
	SpanID   SpanID
	Duration time.Duration
}

// ExemplarStore keeps exemplars.
type ExemplarStore interface {
	// WriteExemplars stores exemplars. They are derived data: a store may
	// make them durable with its next write rather than before returning.
	WriteExemplars(ctx context.Context, ex []Exemplar) error
	// Exemplars returns the exemplars with T in [start, end) (Unix ms).
	Exemplars(ctx context.Context, start, end int64) ([]Exemplar, error)
}
