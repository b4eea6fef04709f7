package kafkalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Brokers are the Kafka bootstrap brokers, host:port.
	Brokers []string
	// Prefix names the topics; default "sextant".
	Prefix string
	// Partitions is the number of partitions of both topics; required.
	Partitions int
	// Appender and Traces are the local stores the records go to; KV keeps
	// the offsets. All three are required. An Appender that is a
	// tsdb.MarkedAppender keeps the position in the metrics topic with the
	// datapoints, so that each is applied once (tsdb/db: Options.Marks);
	// a Traces writer that is a tracing.MarkedWriter does the same for
	// the spans topic (tracing/spanstore).
	Appender tsdb.Appender
	Traces   tracing.Writer
	KV       tsdb.KV
	// Exemplars, when set, keeps the exemplars records of the spans topic;
	// nil: they are skipped. When it is a tracing.MarkedWriter too, it
	// gets the mark of records that carry exemplars only; the marks read
	// back are Traces' (on a store node both are its span store).
	Exemplars tracing.ExemplarStore
	// Assign delivers the partitions this node must consume now, each value
	// the whole set (cluster membership sends a new one when ownership
	// changes). Nil: every partition, for good.
	Assign <-chan []int
	// PollWait bounds one wait for records, so that a new assignment is
	// taken up within it; default 500 ms.
	PollWait time.Duration
	// AfterApply, when set, is called after the records of a fetch of a
	// partition are in the local stores (durably) and before the next
	// offset is kept in KV, with what was applied: a fault hook for
	// tests, which stop the process there.
	AfterApply func(Applied)
	Logger     *slog.Logger
	Registry   *lib.Registry
}

func (o ConsumerOptions) withDefaults() ConsumerOptions {
	if o.Prefix == "" {
		o.Prefix = "sextant"
	}
	if o.PollWait <= 0 {
		o.PollWait = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate checks the options.
func (o ConsumerOptions) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("kafkalog: no brokers")
	case o.Partitions <= 0:
		return fmt.Errorf("kafkalog: %d partitions", o.Partitions)
	case o.Appender == nil || o.Traces == nil || o.KV == nil:
		return errors.New("kafkalog: a consumer needs an appender, a trace writer and a KV")
	}
	return nil
}

// Applied is what ConsumerOptions.AfterApply is told: the records of one
// fetch of one partition, applied. It is valid during the call only.
type Applied struct {
	Topic     string
	Partition int
	// Next is the offset after the last record applied, the one the
	// consumer keeps next.
	Next int64
	// Points are the datapoints applied (metrics topic).
	Points []tsdb.Datapoint
	// Spans are the span writes made (spans topic), in order: the spans
	// of consecutive records merged into one write.
	Spans []ptrace.Traces
}

// Progress is how far a Consumer got in one partition of one topic.
type Progress struct {
	Topic     string
	Partition int
	// Applied is the offset of the next record to apply: every record
	// before it is in the local store (durably, once its offset is kept).
	Applied int64
	// End is the log's end offset (high watermark) as last seen in a fetch,
	// -1 before the first.
	End int64
	// Time is the Kafka timestamp of the last record applied; zero when
	// none was applied since the consumer started.
	Time time.Time
}

// Consumer applies the records of its assigned partitions to the local
// stores. Run does the work; Progress may be called concurrently.
type Consumer struct {
	opts           ConsumerOptions
	metrics, spans string
	mu             struct {
		sync.Mutex
		progress map[topicPartition]*Progress
		// changed is closed, and replaced, whenever an applied offset
		// moves or a partition is dropped: WaitApplied waits on it.
		changed chan struct{}
	}
	batch tsdb.Batch // reused by Run
	// noMarks is set, by Run, once the store answered tsdb.ErrNoMarks.
	noMarks bool
	// spanMarks is Traces as a tracing.MarkedWriter, nil when it is not.
	spanMarks tracing.MarkedWriter

	mRecords, mPoints, mSpans, mErrors, mCorrupt *lib.Counter
	mRejected                                    *lib.Counter
}

type topicPartition struct {
	topic string
	p     int32
}

// NewConsumer returns a Consumer; nothing connects before Run.
func NewConsumer(opts ConsumerOptions) (*Consumer, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	reg := opts.Registry
	c := &Consumer{
		opts: opts, metrics: MetricsTopic(opts.Prefix), spans: SpansTopic(opts.Prefix),
		mRecords:  reg.Counter("sextant.cluster.consumed", "unit", "records"),
		mPoints:   reg.Counter("sextant.cluster.consumed", "unit", "datapoints"),
		mSpans:    reg.Counter("sextant.cluster.consumed", "unit", "spans"),
		mErrors:   reg.Counter("sextant.cluster.applyErrors", "reason", "store"),
		mCorrupt:  reg.Counter("sextant.cluster.applyErrors", "reason", "corrupt"),
		mRejected: reg.Counter("sextant.cluster.rejected"),
	}
	c.mu.progress = map[topicPartition]*Progress{}
	c.mu.changed = make(chan struct{})
	c.spanMarks, _ = opts.Traces.(tracing.MarkedWriter)
	return c, nil
}

// Progress returns, for every partition the consumer has been assigned,
// how far it applied the log, sorted by topic and partition.
func (c *Consumer) Progress() []Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Progress, 0, len(c.mu.progress))
	for _, p := range c.mu.progress {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Progress) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return a.Partition - b.Partition
	})
	return out
}

// ErrNotConsumed means the consumer does not consume the partition a
// WaitApplied asks about (it is not assigned to this node).
var ErrNotConsumed = errors.New("kafkalog: partition not consumed here")

// WaitApplied returns once the consumer has applied partition p of topic
// up to offset (every record before offset is in the local store), at
// once when it has already. It returns ErrNotConsumed when the partition
// is not (or no longer) consumed here, and ctx.Err() when ctx ends first.
// A query waits here for strong read consistency: offset is the log's end
// when the query arrived. Safe for concurrent use with Run.
func (c *Consumer) WaitApplied(ctx context.Context, topic string, p int, offset int64) error {
	tp := topicPartition{topic, int32(p)}
	for {
		c.mu.Lock()
		pr, changed := c.mu.progress[tp], c.mu.changed
		applied := int64(-1)
		if pr != nil {
			applied = pr.Applied
		}
		c.mu.Unlock()
		switch {
		case pr == nil:
			return fmt.Errorf("%w: %s/%d", ErrNotConsumed, topic, p)
		case applied >= offset:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkalog: wait for %s/%d to reach offset %d (applied %d): %w", topic, p, offset, applied, ctx.Err())
		case <-changed:
		}
	}
}

// notifyLocked wakes the waiters of WaitApplied.
func (c *Consumer) notifyLocked() {
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// Run consumes until ctx ends, then returns nil. It returns an error only
// when it cannot read the kept offsets of a partition it is assigned. When
// Assign is closed, the last assignment stays.
func (c *Consumer) Run(ctx context.Context) error {
	assign := c.opts.Assign
	var assigned []int
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	take := func(next []int) (err error) {
		cl, err = c.reassign(ctx, cl, assigned, next)
		assigned = slices.Clone(next)
		return err
	}
	if assign == nil {
		all := make([]int, c.opts.Partitions)
		for p := range all {
			all[p] = p
		}
		if err := take(all); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		if cl != nil {
			// Take up a new assignment, if any, then poll.
			select {
			case next, ok := <-assign:
				if !ok {
					assign = nil
				} else if err := take(next); err != nil {
					return err
				}
			default:
				c.poll(ctx, cl)
			}
			continue
		}
		// No client before the first non-empty assignment: wait for one.
		select {
		case <-ctx.Done():
		case next, ok := <-assign:
			if !ok {
				assign = nil
			} else if err := take(next); err != nil {
				return err
			}
		}
	}
	return nil
}

// reassign moves the client from partitions old to partitions next,
// resuming each added partition at its kept offset. It creates the client
// on the first non-empty assignment.
func (c *Consumer) reassign(ctx context.Context, cl *kgo.Client, old, next []int) (*kgo.Client, error) {
	add := map[string]map[int32]kgo.Offset{c.metrics: {}, c.spans: {}}
	remove := map[string][]int32{}
	for _, p := range next {
		if p < 0 || p >= c.opts.Partitions || slices.Contains(old, p) {
			continue
		}
		for _, topic := range []string{c.metrics, c.spans} {
			off, err := c.keptOffset(ctx, topic, p)
			if err != nil {
				return cl, err
			}
			add[topic][int32(p)] = kgo.NewOffset().At(off)
			c.setProgress(topic, int32(p), off, -1)
		}
	}
	for _, p := range old {
		if !slices.Contains(next, p) {
			remove[c.metrics] = append(remove[c.metrics], int32(p))
			remove[c.spans] = append(remove[c.spans], int32(p))
			c.mu.Lock()
			delete(c.mu.progress, topicPartition{c.metrics, int32(p)})
			delete(c.mu.progress, topicPartition{c.spans, int32(p)})
			c.notifyLocked()
			c.mu.Unlock()
		}
	}
	c.opts.Logger.Info("partitions assigned", "partitions", len(next), "added", len(add[c.metrics]), "removed", len(remove[c.metrics]))
	if cl == nil {
		if len(add[c.metrics]) == 0 {
			return nil, nil
		}
		var err error
		cl, err = kgo.NewClient(
			kgo.SeedBrokers(c.opts.Brokers...),
			kgo.ConsumePartitions(add),
			kgo.FetchMaxWait(c.opts.PollWait),
			kgo.WithLogger(kgoLogger{c.opts.Logger}),
		)
		if err != nil {
			return nil, fmt.Errorf("kafkalog: new consumer: %w", err)
		}
		return cl, nil
	}
	if len(remove) > 0 {
		cl.RemoveConsumePartitions(remove)
	}
	if len(add[c.metrics]) > 0 {
		cl.AddConsumePartitions(add)
	}
	return cl, nil
}

// poll waits up to PollWait for records and applies them.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) {
	pctx, cancel := context.WithTimeout(ctx, c.opts.PollWait)
	fetches := cl.PollFetches(pctx)
	cancel()
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		c.opts.Logger.Warn("fetch from kafka", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			c.setEnd(fp.Topic, fp.Partition, fp.HighWatermark)
			return
		}
		c.apply(ctx, fp)
	})
}

// apply applies the records of one partition of a fetch, in order, then
// keeps the next offset. Records before the applied offset (fetched again
// after a reassignment) are skipped: a record is applied once.
func (c *Consumer) apply(ctx context.Context, fp kgo.FetchTopicPartition) {
	tp := topicPartition{fp.Topic, fp.Partition}
	applied := c.applied(tp)
	recs := fp.Records
	for len(recs) > 0 && recs[0].Offset < applied {
		recs = recs[1:]
	}
	if len(recs) == 0 {
		return
	}
	next := recs[len(recs)-1].Offset + 1
	var err error
	var spans []ptrace.Traces
	if fp.Topic == c.metrics {
		err = c.applyDatapoints(ctx, recs, tsdb.Mark{Log: fp.Topic, Partition: int(fp.Partition), Next: next})
	} else {
		spans, err = c.applySpans(ctx, recs, fp.Topic, int(fp.Partition))
	}
	if err != nil {
		return // ctx ended; the records are applied again on the next start
	}
	if c.opts.AfterApply != nil {
		a := Applied{Topic: fp.Topic, Partition: int(fp.Partition), Next: next, Spans: spans}
		if fp.Topic == c.metrics {
			a.Points = c.batch.Points
		}
		c.opts.AfterApply(a)
	}
	c.batch.Reset()
	if err := c.keepOffset(ctx, fp.Topic, int(fp.Partition), next); err != nil {
		// The data is stored; a restart applies these records again.
		c.opts.Logger.Warn("keep offset", "topic", fp.Topic, "partition", fp.Partition, "err", err)
	}
	c.mRecords.Add(float64(len(recs)))
	c.setProgress(fp.Topic, fp.Partition, next, fp.HighWatermark)
	c.mu.Lock()
	if pr := c.mu.progress[tp]; pr != nil {
		pr.Time = recs[len(recs)-1].Timestamp
	}
	c.mu.Unlock()
}

// applyDatapoints appends the datapoints of recs in one batch (left in
// c.batch for AfterApply), retrying while the store fails (a record is
// never skipped for a store error, only for a corrupt body). A store that
// keeps marks (tsdb.MarkedAppender) gets m with the batch, so that it
// holds the position atomically with the data. It returns an error only
// when ctx ends.
func (c *Consumer) applyDatapoints(ctx context.Context, recs []*kgo.Record, m tsdb.Mark) error {
	b := &c.batch
	b.Reset()
	for _, r := range recs {
		if err := DecodeDatapoints(r.Value, b); err != nil {
			c.mCorrupt.Increment()
			c.opts.Logger.Error("skip corrupt record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		}
	}
	if len(b.Points) == 0 {
		return nil // only corrupt records: the offset in KV moves past them
	}
	err := c.retry(ctx, func() error {
		if ma := c.marked(); ma != nil {
			err := ma.AppendMarked(ctx, b, m)
			if !errors.Is(err, tsdb.ErrNoMarks) {
				return err
			}
			// Nothing was stored: append without marks from now on.
			c.opts.Logger.Warn("the store keeps no marks: a crash may apply records twice", "err", err)
			c.noMarks = true
		}
		return c.opts.Appender.Append(ctx, b)
	})
	if err != nil {
		return err
	}
	c.mPoints.Add(float64(len(b.Points) - len(b.Rejected)))
	if len(b.Rejected) > 0 {
		c.mRejected.Add(float64(len(b.Rejected)))
		c.opts.Logger.Debug("store rejected datapoints", "count", len(b.Rejected), "reason", b.Rejected[0].Reason.String())
	}
	return nil
}

// Span records are applied in groups: the spans of consecutive records
// merged into one write (one block and one sync in the span store), with
// the mark of the group's last record. A group is bounded, so that a
// fetch of large records does not make one huge batch.
const (
	maxGroupSpans = 20_000
	maxGroupBytes = 4 << 20 // of records, as fetched
)

// spanGroup is the records of a group, decoded.
type spanGroup struct {
	td           ptrace.Traces
	ex           []tracing.Exemplar
	spans, bytes int
}

// applySpans writes the spans and exemplars of recs, records of partition
// p of topic, group by group (each with its mark when Traces keeps
// marks), retrying while the stores fail (a record is skipped only when
// it is corrupt). It returns the span writes made when AfterApply is
// set, and an error only when ctx ends.
func (c *Consumer) applySpans(ctx context.Context, recs []*kgo.Record, topic string, p int) ([]ptrace.Traces, error) {
	var written []ptrace.Traces
	g := spanGroup{td: ptrace.NewTraces()}
	for i, r := range recs {
		c.addRecord(&g, r)
		if i < len(recs)-1 && g.spans < maxGroupSpans && g.bytes < maxGroupBytes {
			continue
		}
		if err := c.writeGroup(ctx, &g, tracing.Mark{Log: topic, Partition: p, Next: r.Offset + 1}); err != nil {
			return written, err
		}
		if g.spans > 0 && c.opts.AfterApply != nil {
			written = append(written, g.td)
		}
		g = spanGroup{td: ptrace.NewTraces()}
	}
	return written, nil
}

// addRecord decodes r into g: its spans moved into g's traces, or its
// exemplars appended (skipped without an exemplar store). A corrupt
// record is counted, logged and skipped.
func (c *Consumer) addRecord(g *spanGroup, r *kgo.Record) {
	g.bytes += len(r.Value)
	var err error
	if k, kerr := KindOf(r.Value); kerr == nil && k == KindExemplars {
		if c.opts.Exemplars == nil {
			return
		}
		var ex []tracing.Exemplar
		if ex, err = DecodeExemplars(r.Value); err == nil {
			g.ex = append(g.ex, ex...)
		}
	} else {
		var td ptrace.Traces
		if td, err = DecodeSpans(r.Value); err == nil {
			g.spans += td.SpanCount()
			td.ResourceSpans().MoveAndAppendTo(g.td.ResourceSpans())
		}
	}
	if err != nil {
		c.mCorrupt.Increment()
		c.opts.Logger.Error("skip corrupt record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
	}
}

// writeGroup writes g's exemplars, then its spans, each retried while its
// store fails. With a span store that keeps marks, the group's last write
// carries m: the spans' (on a store node the exemplars, written just
// before without a sync, precede them in the same Pebble log, so the
// mark's sync covers them), or the exemplars' when the group has no
// spans. A group with neither (only corrupt or skipped records) writes
// no mark: the offset kept in KV moves past it.
func (c *Consumer) writeGroup(ctx context.Context, g *spanGroup, m tracing.Mark) error {
	mw := c.spanMarks
	if len(g.ex) > 0 {
		ew, _ := c.opts.Exemplars.(tracing.MarkedWriter)
		marked := mw != nil && ew != nil && g.spans == 0
		err := c.retry(ctx, func() error {
			if marked {
				return ew.WriteExemplarsMarked(ctx, g.ex, m)
			}
			return c.opts.Exemplars.WriteExemplars(ctx, g.ex)
		})
		if err != nil {
			return err
		}
	}
	if g.spans == 0 {
		return nil
	}
	err := c.retry(ctx, func() error {
		if mw != nil {
			return mw.WriteTracesMarked(ctx, g.td, m)
		}
		return c.opts.Traces.WriteTraces(ctx, g.td)
	})
	if err != nil {
		return err
	}
	c.mSpans.Add(float64(g.spans))
	return nil
}

// retry calls fn until it succeeds or ctx ends, backing off from 100 ms to
// 5 s: a store that cannot write now (overloaded, a disk fault) holds its
// partitions back rather than losing records.
func (c *Consumer) retry(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.mErrors.Increment()
		c.opts.Logger.Warn("apply records", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// offsetKey is the KV key of a partition's kept offset.
func offsetKey(topic string, p int) string {
	return "cluster/offsets/" + topic + "/" + strconv.Itoa(p)
}

// keptOffset returns the offset to resume partition p of topic at: the
// newer of the one kept in KV and the store's mark of the topic (the
// time-series store's for the metrics topic, the span store's for the
// spans topic), which a crash between the store's write and the KV's
// leaves ahead, or 0 (the log's start; franz-go moves a trimmed start
// forward).
func (c *Consumer) keptOffset(ctx context.Context, topic string, p int) (int64, error) {
	var kept int64
	v, err := c.opts.KV.Get(ctx, offsetKey(topic, p))
	switch {
	case errors.Is(err, tsdb.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("kafkalog: read offset of %s/%d: %w", topic, p, err)
	case len(v) != 8:
		return 0, fmt.Errorf("kafkalog: offset of %s/%d: %w: %d bytes", topic, p, tsdb.ErrCorrupt, len(v))
	default:
		kept = int64(binary.BigEndian.Uint64(v))
	}
	var markOf func(string, int) (int64, bool)
	if ma := c.marked(); ma != nil && topic == c.metrics {
		markOf = ma.Marked
	} else if c.spanMarks != nil && topic == c.spans {
		markOf = c.spanMarks.Marked
	}
	if markOf != nil {
		if next, ok := markOf(topic, p); ok && next > kept {
			c.opts.Logger.Info("resume after the store's mark", "topic", topic, "partition", p, "offset", next, "kept", kept)
			kept = next
		}
	}
	return kept, nil
}

func (c *Consumer) keepOffset(ctx context.Context, topic string, p int, next int64) error {
	return c.opts.KV.Put(ctx, offsetKey(topic, p), binary.BigEndian.AppendUint64(nil, uint64(next)))
}

// marked returns the store as a tsdb.MarkedAppender, or nil when it keeps
// no marks.
func (c *Consumer) marked() tsdb.MarkedAppender {
	if ma, ok := c.opts.Appender.(tsdb.MarkedAppender); ok && !c.noMarks {
		return ma
	}
	return nil
}

func (c *Consumer) applied(tp topicPartition) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.mu.progress[tp]; p != nil {
		return p.Applied
	}
	return 0
}

func (c *Consumer) setProgress(topic string, p int32, applied, end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pr := c.mu.progress[topicPartition{topic, p}]
	if pr == nil {
		pr = &Progress{Topic: topic, Partition: int(p), End: -1}
		c.mu.progress[topicPartition{topic, p}] = pr
	}
	if pr.Applied != applied {
		pr.Applied = applied
		c.notifyLocked()
	}
	if end >= 0 {
		pr.End = end
	}
}

func (c *Consumer) setEnd(topic string, p int32, end int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pr := c.mu.progress[topicPartition{topic, p}]; pr != nil && end >= 0 {
		pr.End = end
	}
}
