package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// SeriesRef identifies a series inside one store for the store's lifetime,
// across restarts. Zero is never a valid reference.
type SeriesRef uint64

// DSType is the data source type of a series, from its atlas.dstype tag. It
// selects how datapoints are normalized to step boundaries on the way in and
// how they are consolidated on the way out.
type DSType uint8

// Data source types. Rate is the default for a missing or unknown tag.
const (
	Rate    DSType = iota // a per-second rate: time-weighted normalization
	Gauge                 // a sampled value: max of the samples in a step
	Counter               // a monotonic count: converted to a rate, reset-aware
	Sum                   // partial sums: added up within a step
	// MinGauge is a sampled minimum: the smallest of the samples in a step
	// (the lower end of an OTLP histogram's [min, max], which :percentiles
	// clamps to, so that two exports in one step keep the smaller min).
	MinGauge
)

// DSTypeKey is the tag that carries the data source type.
const DSTypeKey = "atlas.dstype"

// ParseDSType maps an atlas.dstype value to a DSType; anything unknown is Rate.
func ParseDSType(s string) DSType {
	switch s {
	case "gauge":
		return Gauge
	case "counter":
		return Counter
	case "sum":
		return Sum
	case "min-gauge":
		return MinGauge
	}
	return Rate
}

// String returns the atlas.dstype value of d.
func (d DSType) String() string {
	switch d {
	case Gauge:
		return "gauge"
	case Counter:
		return "counter"
	case Sum:
		return "sum"
	case MinGauge:
		return "min-gauge"
	}
	return "rate"
}

// IsGauge reports whether consolidation treats the series as a gauge. Only
// gauges (and min gauges) are; everything else is consolidated as a rate
// (Atlas DsType.apply).
func (d DSType) IsGauge() bool { return d == Gauge || d == MinGauge }

// Datapoint is one sample on its way into the store.
type Datapoint struct {
	// Tags identify the series. The store only borrows them for the duration
	// of the call and copies what it keeps, so they may alias a request buffer.
	Tags tags.Set
	// Ref, when non-zero, names the series directly and Tags are ignored.
	// Append fills it in for every accepted datapoint, so callers that send
	// the same series again can skip the tag lookup.
	Ref SeriesRef
	T   int64 // Unix milliseconds
	V   float64
}

// Reason says why a datapoint was rejected. The zero value means accepted.
type Reason uint8

// Rejection reasons.
const (
	Accepted    Reason = iota
	TooOld             // older than the store's ingest max age
	FromFuture         // too far ahead of the store's clock
	MissingName        // no name tag
	SeriesLimit        // a new series beyond the store's total series limit
	NameLimit          // a new series beyond the per-name series limit
	OutOfOrder         // a counter sample older than the series' last one
	NumReasons         // number of reasons, for per-reason arrays
)

var reasonNames = [NumReasons]string{
	Accepted:    "Accepted",
	TooOld:      "DataTooOld",
	FromFuture:  "DataFromFuture",
	MissingName: "MissingName",
	SeriesLimit: "SeriesLimitExceeded",
	NameLimit:   "NameSeriesLimitExceeded",
	OutOfOrder:  "OutOfOrder",
}

// String returns the reason as Atlas names it in publish responses.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", r)
}

// Rejection names one rejected datapoint of a Batch.
type Rejection struct {
	Index  int // index into Batch.Points
	Reason Reason
}

// Batch is a set of datapoints appended together. A Batch may be reused
// after Reset; reuse keeps its slices and so avoids allocation.
type Batch struct {
	Points []Datapoint
	// Rejected lists, in index order, the datapoints Append did not store.
	Rejected []Rejection
}

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	clear(b.Points) // drop references to borrowed tags
	b.Points = b.Points[:0]
	b.Rejected = b.Rejected[:0]
}

// Appender stores datapoints.
type Appender interface {
	// Append normalizes and stores the datapoints of b. It fills in b.Rejected
	// with the datapoints it refused (too old, over a cardinality limit, ...)
	// and Ref of the others. When it returns nil, every accepted datapoint is
	// durable as the store's fsync policy promises. An error means no
	// guarantee about the accepted datapoints; ErrOverloaded means nothing
	// was stored and the caller should retry later. Safe for concurrent use.
	Append(ctx context.Context, b *Batch) error
}

// Mark is a position in a log a store applies (in cluster mode: a
// partition of the metrics topic in Kafka): every record of partition
// Partition of Log before offset Next is in the store.
type Mark struct {
	Log       string // the log's name, not empty
	Partition int    // >= 0
	Next      int64  // offset of the next record to apply, >= 0
}

// Validate checks the mark's fields.
func (m Mark) Validate() error {
	switch {
	case m.Log == "":
		return errors.New("tsdb: mark without a log")
	case m.Partition < 0:
		return fmt.Errorf("tsdb: mark of partition %d", m.Partition)
	case m.Next < 0:
		return fmt.Errorf("tsdb: mark at offset %d", m.Next)
	}
	return nil
}

// MarkedAppender is an optional ability of an Appender, found by a type
// assertion: appending a batch together with the position in a log that
// it brings the store to, so that whoever applies the log resumes exactly
// after what the store holds, whatever moment the process died at.
//
// Version 1 of this extension; the consumer of the cluster log
// (ingest/kafkalog) is its only caller.
type MarkedAppender interface {
	// AppendMarked is Append, and records m atomically with b: when it
	// returns nil, b's accepted datapoints and m are durable together as
	// the store's fsync policy promises; after a crash at any moment, the
	// store holds a mark if and only if it holds the datapoints of every
	// AppendMarked call up to it. An error means b and m are not both
	// stored (and neither is when the error is ErrOverloaded or
	// ErrNoMarks, the answer of a store not set up for marks). Marks of one
	// log and partition must be appended with non-decreasing Next. Safe
	// for concurrent use.
	AppendMarked(ctx context.Context, b *Batch, m Mark) error
	// Marked returns Next of the newest mark of partition p of log the
	// store holds (recovered when it opened, or appended since), and false
	// when it holds none. Safe for concurrent use.
	Marked(log string, p int) (next int64, ok bool)
}

// Consolidation combines the primary (storage-step) values that fall into
// one output step when a query's step is a multiple of the storage step.
type Consolidation uint8

// Consolidation functions (Atlas :cf-avg, :cf-sum, :cf-min, :cf-max).
const (
	CFAvg Consolidation = iota // rates: sum/m; gauges: mean of present values
	CFSum
	CFMin
	CFMax
)

// String returns the Atlas name of the function.
func (c Consolidation) String() string {
	return [...]string{"avg", "sum", "min", "max"}[c&3]
}

// Aggregation combines series per output step. NaN means no data.
type Aggregation uint8

// Aggregations pushed down into the store.
const (
	AggNone  Aggregation = iota // every matching series
	AggSum                      // NaN only if every input is NaN
	AggCount                    // number of non-NaN inputs; NaN if none
	AggMin
	AggMax
)

// String returns the stack-language word of the aggregation.
func (a Aggregation) String() string {
	return [...]string{"all", "sum", "count", "min", "max", "?", "?", "?"}[a&7]
}

// FetchRequest asks for the series matching Query over [Start, End) at Step.
// Output point i is at Start + i*Step and covers the storage-step buckets in
// (T - Step, T]. Start and End must be multiples of Step, and Step a
// multiple of the storage step.
type FetchRequest struct {
	Query       *tags.Query
	Start, End  int64 // Unix ms, [Start, End)
	Step        int64 // ms
	CF          Consolidation
	Aggregation Aggregation
	// GroupBy, with an aggregation, aggregates per distinct tuple of values of
	// these keys; series lacking any key are left out.
	GroupBy []string
	// Selection, when set, caches the series Query matches across fetches
	// of a caller that asks for the same query again and again (the live
	// evaluator, every step). The store may read and fill it in; it is
	// otherwise ignored. The answer is the same with or without it. A
	// Querier that forwards the request to several stores (a fan-out)
	// clears it, or keeps one Selection per store.
	Selection *Selection
	// Partitions, when set, keeps only the series of some partitions of a
	// cluster: a store node answers a query node for the partitions it
	// was asked for and nothing else it may hold.
	Partitions *Partitions
	// Admit, when set, is called once with the fetch's Cost as soon as the
	// store knows it: after it selected the series, before it checks its
	// own query limits and before it reads any data. An error from Admit
	// ends the fetch with that error. A cluster's store node uses it to
	// tell the query node what its share costs and to refuse a share over
	// what is left of the query's limits, so that the limits bound the
	// total over every store node as they bound one store.
	Admit func(Cost) error
}

// Cost is what a fetch needs, by the measures of a store's query limits
// (the LimitError names in parentheses). It is known before any data is
// read, and costs of fetches over disjoint series add up: a fan-out over
// several stores sums them to check its limits on the total.
type Cost struct {
	Series     int // series the query selected (max-series-per-query)
	Datapoints int // storage-step values to read (max-datapoints-per-query)
	Bytes      int // memory the fetch holds at most (max-bytes-per-query)
}

// Add returns the sum of c and d, saturating at the largest int.
func (c Cost) Add(d Cost) Cost {
	add := func(a, b int) int {
		if a > math.MaxInt-b {
			return math.MaxInt
		}
		return a + b
	}
	return Cost{Series: add(c.Series, d.Series), Datapoints: add(c.Datapoints, d.Datapoints), Bytes: add(c.Bytes, d.Bytes)}
}

// Exceeds returns the *LimitError of the first of c's measures over the
// same measure of limits (series, then datapoints, then bytes, the order a
// store checks them in), or nil; a zero measure of limits is no limit.
func (c Cost) Exceeds(limits Cost) error {
	for _, m := range [...]struct {
		name     string
		got, max int
	}{
		{"max-series-per-query", c.Series, limits.Series},
		{"max-datapoints-per-query", c.Datapoints, limits.Datapoints},
		{"max-bytes-per-query", c.Bytes, limits.Bytes},
	} {
		if m.max > 0 && m.got > m.max {
			return &LimitError{Limit: m.name, Max: m.max, Got: m.got}
		}
	}
	return nil
}

// Selection is a query resolved to its series, kept by a caller between
// fetches of that query (FetchRequest.Selection) so that the store need
// not select again while no series that could match it was added or
// removed. The zero value is empty; its fields belong to the store that
// filled it in, which checks them on every use (a Selection handed to
// another store, or with another query, is simply refilled). A Selection
// is used by one fetch at a time.
type Selection struct {
	// Query is the query the series were selected for (compared by
	// pointer).
	Query *tags.Query
	// Epoch is the store's index generation for Query when it selected.
	Epoch uint64
	// Refs are the matching series, in the store's order.
	Refs []SeriesRef
}

// Partitions selects the series of some partitions of a cluster's metric
// log, by tags.PartitionOf(series tags, N).
type Partitions struct {
	N    int   // number of partitions, > 0
	Want []int // the partitions kept, each in [0, N)
}

// Mask returns Want as a set indexed by partition.
func (p *Partitions) Mask() []bool {
	m := make([]bool, p.N)
	for _, w := range p.Want {
		m[w] = true
	}
	return m
}

// Validate checks the partition numbers.
func (p *Partitions) Validate() error {
	if p.N <= 0 {
		return fmt.Errorf("tsdb: %d partitions", p.N)
	}
	for _, w := range p.Want {
		if w < 0 || w >= p.N {
			return fmt.Errorf("tsdb: partition %d out of [0, %d)", w, p.N)
		}
	}
	return nil
}

// Points returns the number of output points per series.
func (r *FetchRequest) Points() int {
	if r.Step <= 0 || r.End <= r.Start {
		return 0
	}
	return int((r.End - r.Start) / r.Step)
}

// Validate checks the request against the storage step.
func (r *FetchRequest) Validate(storageStep int64) error {
	switch {
	case r.Query == nil:
		return errors.New("tsdb: fetch without a query")
	case r.Step <= 0 || r.Step%storageStep != 0:
		return fmt.Errorf("tsdb: step %dms is not a positive multiple of the storage step %dms", r.Step, storageStep)
	case r.Start%r.Step != 0 || r.End%r.Step != 0:
		return fmt.Errorf("tsdb: range [%d, %d) is not aligned to step %dms", r.Start, r.End, r.Step)
	case r.End < r.Start:
		return fmt.Errorf("tsdb: end %d before start %d", r.End, r.Start)
	case len(r.GroupBy) > 0 && r.Aggregation == AggNone:
		return errors.New("tsdb: group by without an aggregation")
	case r.Partitions != nil:
		return r.Partitions.Validate()
	}
	return nil
}

// Series is one line of a fetch result.
type Series struct {
	// Tags are the series' tags for AggNone, and the group-by keys with their
	// values for a grouped aggregate (empty for an ungrouped one).
	Tags   tags.Set
	DSType DSType    // for AggNone; Rate for aggregates
	Values []float64 // Values[i] is at FetchRequest.Start + i*Step
}

// Stats describes the work a fetch did.
type Stats struct {
	SeriesScanned     int // series whose data was read
	DatapointsScanned int // storage-step values read
}

// SeriesSet is the result of a fetch. Series are sorted by tags (AggNone) or
// by group key values. The caller owns it and may modify it.
type SeriesSet struct {
	Series []Series
	Stats  Stats
}

// TagsRequest lists tag keys, or values of Key when Key is set, restricted to
// series matching Query (nil: all series). Results are sorted and start after
// After (paging), at most Limit of them.
type TagsRequest struct {
	Key   string
	Query *tags.Query
	// Start and End (Unix ms), when End > Start, restrict the answer to the
	// series with data in [Start, End), to the store's block: a series counts
	// when it has a block whose period meets the range, as the store knows
	// without reading the blocks. Zero: every series the index holds.
	Start, End int64
	After      string
	Limit      int
	// Partitions, when set, counts only the series of these partitions
	// (see FetchRequest.Partitions).
	Partitions *Partitions
}

// SeriesRequest asks for the tags of the series matching Query with data in
// [Start, End) (Unix ms; to the block, as TagsRequest), at most Limit of them
// (0: no limit).
type SeriesRequest struct {
	Query      *tags.Query
	Start, End int64
	Limit      int
	// Partitions, when set, lists only the series of these partitions
	// (see FetchRequest.Partitions).
	Partitions *Partitions
	// Admit, when set, is called once with the listing's Cost (its Series
	// only) before the store checks its own limits, as
	// FetchRequest.Admit; an error from it ends the listing with that
	// error.
	Admit func(Cost) error
}

// SeriesLister is an optional ability of a Querier, found by a type
// assertion: listing series without reading their data.
type SeriesLister interface {
	// Series returns the tags of the series req asks for, sorted by tags
	// (key, then value, tag by tag), the first req.Limit of them, and
	// whether there were more. The caller owns the slice and the sets. It
	// returns a *LimitError past the store's query limits, and ctx.Err()
	// when the context ends first. Safe for concurrent use.
	Series(ctx context.Context, req SeriesRequest) ([]tags.Set, bool, error)
}

// TagCount is a tag key or value with the number of matching series having it.
type TagCount struct {
	Name  string
	Count int
}

// Querier reads the store.
type Querier interface {
	// Fetch returns the series matching req, consolidated and aggregated.
	// Aggregation happens inside the store, so a grouped sum over many series
	// does not materialize one array per series. It returns a *LimitError when
	// the request would exceed a query limit, and ctx.Err() when the context
	// ends first. Safe for concurrent use.
	Fetch(ctx context.Context, req FetchRequest) (*SeriesSet, error)
	// Tags lists tag keys or values. Safe for concurrent use.
	Tags(ctx context.Context, req TagsRequest) ([]TagCount, error)
}

// Sentinel errors.
var (
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("tsdb: closed")
	// ErrOverloaded means the store sheds load: its log or memory is
	// saturated. Nothing of the batch was stored; retry later.
	ErrOverloaded = errors.New("tsdb: overloaded, retry later")
	// ErrUnavailable means the store cannot be reached now (in cluster
	// mode: the log, Kafka, did not acknowledge the write in time). Some of
	// the batch may have been stored; retrying is safe, as a cluster's
	// store applies a record once.
	ErrUnavailable = errors.New("tsdb: store unavailable, retry later")
	// ErrCorrupt marks data on disk that cannot be decoded.
	ErrCorrupt = errors.New("tsdb: corrupt data")
	// ErrNoMarks is MarkedAppender.AppendMarked on a store not set up to
	// keep marks: nothing was stored; append without a mark instead.
	ErrNoMarks = errors.New("tsdb: this store keeps no marks")
)

// LimitError reports a query that would exceed a limit.
type LimitError struct {
	Limit  string // the option's name, e.g. "max-series-per-query"
	Max    int
	Got    int    // the amount the query needed (at least)
	Detail string // optional: what ran out, for the user
}

// Error implements error.
func (e *LimitError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("tsdb: query exceeds %s (limit %d): %s", e.Limit, e.Max, e.Detail)
	}
	return fmt.Sprintf("tsdb: query exceeds %s: needs at least %d, limit is %d", e.Limit, e.Got, e.Max)
}

// ErrNotFound is returned by KV.Get for a key that holds no value.
var ErrNotFound = errors.New("tsdb: not found")

// ErrValueTooLarge is wrapped by the error of a KV.Put whose key or value
// is larger than the store holds (in cluster mode, the shared state store
// is bounded by Kafka's message size). Nothing was written.
var ErrValueTooLarge = errors.New("tsdb: value too large")

// KV is a small durable key/value store beside the time series, for the
// server's own records: saved dashboards, alert rules and their state,
// silences, canary runs. It is not meant for bulk data: values are read and
// written whole, and a Scan visits every key under a prefix.
//
// Implementations are safe for concurrent use. Put is durable (synced to
// disk where there is one) before it returns. Get returns a copy the caller
// owns, or ErrNotFound. Keys are compared as bytes; each user of the store
// keeps its records under a prefix of its own ("alerting/", "ui/", ...).
type KV interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put sets key to value; a nil value deletes key (no error if absent).
	Put(ctx context.Context, key string, value []byte) error
	// Scan calls fn for every key with prefix, in key order. value is only
	// valid during the call; an error from fn stops the scan and is returned.
	Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}
