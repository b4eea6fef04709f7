package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// MetricsTopic and SpansTopic name the topics of a cluster with prefix.
func MetricsTopic(prefix string) string { return prefix + "-metrics" }

// SpansTopic names the spans topic of a cluster with prefix.
func SpansTopic(prefix string) string { return prefix + "-spans" }

// ProducerOptions configure a Producer.
type ProducerOptions struct {
	// Brokers are the Kafka bootstrap brokers, host:port.
	Brokers []string
	// Prefix names the topics (MetricsTopic, SpansTopic); default "sextant".
	Prefix string
	// Partitions is the number of partitions of both topics (see
	// EnsureTopics); required.
	Partitions int
	// MaxAge and MaxFuture bound accepted timestamps relative to Now, as the
	// store does (tsdb/db Options.IngestMaxAge and MaxFuture); defaults 1 h
	// and 5 m, in ms.
	MaxAge, MaxFuture int64
	// DeliveryTimeout bounds how long a write waits for Kafka's
	// acknowledgement before failing with ErrUnavailable; default 10 s.
	DeliveryTimeout time.Duration
	// MaxRecordBytes splits a partition's datapoints into records of about
	// this size; default 256 KiB (Kafka's default message limit is 1 MB).
	MaxRecordBytes int
	// MaxRefs bounds the series refs remembered for callers that send a
	// Ref without tags; default 1 << 20.
	MaxRefs int
	// Now is the clock, Unix ms.
	Now      func() int64
	Logger   *slog.Logger
	Registry *lib.Registry
}

func (o ProducerOptions) withDefaults() ProducerOptions {
	if o.Prefix == "" {
		o.Prefix = "sextant"
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 3600_000
	}
	if o.MaxFuture <= 0 {
		o.MaxFuture = 300_000
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 10 * time.Second
	}
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = 256 << 10
	}
	if o.MaxRefs <= 0 {
		o.MaxRefs = 1 << 20
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate checks the options.
func (o ProducerOptions) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("kafkalog: no brokers")
	case o.Partitions <= 0:
		return fmt.Errorf("kafkalog: %d partitions", o.Partitions)
	case o.DeliveryTimeout < time.Second:
		return fmt.Errorf("kafkalog: delivery timeout %s is under 1s", o.DeliveryTimeout)
	}
	return nil
}

// Producer writes datapoints and spans to the log. It implements
// tsdb.Appender and tracing.Writer; both return only after Kafka
// acknowledged every record of the call (acks from all in-sync replicas).
// Safe for concurrent use.
type Producer struct {
	opts    ProducerOptions
	cl      *kgo.Client
	metrics string
	spans   string
	refs    refCache
	scratch sync.Pool // *produceScratch

	mRecords, mPoints, mSpans, mFailed *lib.Counter
	mLatency                           *lib.Timer
}

// NewProducer connects to the brokers (lazily: the first write dials).
func NewProducer(opts ProducerOptions) (*Producer, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(opts.DeliveryTimeout),
		// Kafka's idempotent producer (franz-go's default, kept on): the
		// brokers drop a batch the client sends again after a lost answer
		// (a broker gone mid-request, a timeout), so a record is in the
		// log once however often the client retried it. It never fails a
		// request in flight (that would break its sequence numbers), which
		// is why produce bounds its own wait: a write still gets its 503
		// within DeliveryTimeout, and its records, which the client may
		// still deliver, are never reused (docs/cluster.md, "Delivery").
		// A write waits for its acknowledgement: lingering only delays it.
		// Concurrent writes still share produce requests.
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(int32(max(1<<20, 2*opts.MaxRecordBytes))),
		kgo.WithLogger(kgoLogger{opts.Logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: new producer: %w", err)
	}
	reg := opts.Registry
	p := &Producer{
		opts: opts, cl: cl,
		metrics: MetricsTopic(opts.Prefix), spans: SpansTopic(opts.Prefix),
		mRecords: reg.Counter("sextant.cluster.produced", "unit", "records"),
		mPoints:  reg.Counter("sextant.cluster.produced", "unit", "datapoints"),
		mSpans:   reg.Counter("sextant.cluster.produced", "unit", "spans"),
		mFailed:  reg.Counter("sextant.cluster.produceErrors"),
		mLatency: reg.Timer("sextant.cluster.produceLatency"),
	}
	p.refs.init(opts.MaxRefs)
	p.scratch.New = func() any { return new(produceScratch) }
	return p, nil
}

// Close flushes nothing (every write waited for its acknowledgement) and
// closes the connections.
func (p *Producer) Close() error {
	p.cl.Close()
	return nil
}

// produceScratch is the working space of one Append: an encoder per
// partition, and the records to produce.
type produceScratch struct {
	enc  []pointsEncoder
	used []int // partitions with datapoints, in first-use order
	recs []*kgo.Record
	pool []kgo.Record
}

// Append validates the datapoints of b as the store would (a missing name,
// too old or too far ahead by the ingest node's clock), writes the others to
// their series' partitions and returns once Kafka acknowledged them. It
// fills b.Rejected and the Ref of accepted datapoints (a ref this Producer
// remembers, for callers that send a Ref without tags). What it cannot know
// here — the store's series limits, a counter sample out of order — the
// store node decides when it applies the record; such datapoints are
// acknowledged to the client and counted there (sextant.cluster.rejected).
// A write Kafka did not acknowledge fails with an error wrapping
// tsdb.ErrUnavailable: some of it may be stored, and a retry is safe.
func (p *Producer) Append(ctx context.Context, b *tsdb.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sc := p.scratch.Get().(*produceScratch)
	keep := true // put sc back unless Kafka may still hold its records
	defer func() {
		if keep {
			p.scratch.Put(sc)
		}
	}()
	if len(sc.enc) != p.opts.Partitions {
		sc.enc = make([]pointsEncoder, p.opts.Partitions)
	}
	sc.used, sc.recs, sc.pool = sc.used[:0], sc.recs[:0], sc.pool[:0]

	now := p.opts.Now()
	minT, maxT := now-p.opts.MaxAge, now+p.opts.MaxFuture
	b.Rejected = b.Rejected[:0]
	accepted := 0
	for i := range b.Points {
		pt := &b.Points[i]
		reason := tsdb.Accepted
		s := pt.Tags
		switch {
		case pt.T < minT:
			reason = tsdb.TooOld
		case pt.T > maxT:
			reason = tsdb.FromFuture
		case pt.Ref != 0:
			var ok bool
			if s, ok = p.refs.get(pt.Ref); !ok {
				reason = tsdb.MissingName // a ref this node never handed out
			}
		case !s.Has(tags.NameKey):
			reason = tsdb.MissingName
		}
		if reason != tsdb.Accepted {
			b.Rejected = append(b.Rejected, tsdb.Rejection{Index: i, Reason: reason})
			continue
		}
		h := tags.Hash(s)
		part := tags.PartitionOfHash(h, p.opts.Partitions)
		e := &sc.enc[part]
		if e.n == 0 {
			e.reset()
			sc.used = append(sc.used, part)
		}
		e.add(s, pt.T, pt.V)
		if len(e.buf) >= p.opts.MaxRecordBytes {
			sc.addRecord(p.metrics, part, e.finish())
			e.buf, e.n = nil, 0 // the record owns the buffer now
		}
		if pt.Ref == 0 {
			pt.Ref = p.refs.put(h, s)
		}
		accepted++
	}
	for _, part := range sc.used {
		if e := &sc.enc[part]; e.n > 0 {
			sc.addRecord(p.metrics, part, e.finish())
			e.n = 0
		}
	}
	if len(sc.recs) == 0 {
		return nil
	}
	abandoned, err := p.produce(ctx, sc.recs)
	keep = !abandoned
	if err != nil {
		return fmt.Errorf("kafkalog: write %d datapoints: %w", accepted, errors.Join(tsdb.ErrUnavailable, err))
	}
	p.mPoints.Add(float64(accepted))
	return nil
}

func (sc *produceScratch) addRecord(topic string, part int, value []byte) {
	if len(sc.pool) == cap(sc.pool) {
		sc.pool = make([]kgo.Record, 0, max(16, 2*cap(sc.pool)))
	}
	sc.pool = append(sc.pool, kgo.Record{Topic: topic, Partition: int32(part), Value: value})
	sc.recs = append(sc.recs, &sc.pool[len(sc.pool)-1])
}

// WriteTraces writes the spans of td to their traces' partitions and
// returns once Kafka acknowledged them. A write Kafka did not acknowledge
// fails with an error wrapping tracing.ErrUnavailable.
func (p *Producer) WriteTraces(ctx context.Context, td ptrace.Traces) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	parts := splitTraces(td, p.opts.Partitions)
	recs := make([]*kgo.Record, 0, len(parts))
	spans := 0
	for part, t := range parts {
		v, err := AppendSpans(nil, t)
		if err != nil {
			return err
		}
		spans += t.SpanCount()
		recs = append(recs, &kgo.Record{Topic: p.spans, Partition: int32(part), Value: v})
	}
	if len(recs) == 0 {
		return nil
	}
	if _, err := p.produce(ctx, recs); err != nil {
		return fmt.Errorf("kafkalog: write %d spans: %w", spans, errors.Join(tracing.ErrUnavailable, err))
	}
	p.mSpans.Add(float64(spans))
	return nil
}

// errDeliveryTimeout is the cause of a write Kafka did not acknowledge
// within ProducerOptions.DeliveryTimeout.
var errDeliveryTimeout = errors.New("kafkalog: no acknowledgement from kafka")

// produce writes recs and waits for every acknowledgement, at most
// DeliveryTimeout. The client checks RecordDeliveryTimeout (and a record's
// context) only around produce requests, so with every broker gone a
// record waiting for metadata outlives it by seconds (7 s measured, 21 s
// under load, for a 1 s timeout): the wait here is bounded on its own.
// When it gives up, the client may still hold recs (and write them later:
// at least once, as a client's retry after the 503 would), so abandoned
// reports that recs and their memory must not be reused.
func (p *Producer) produce(ctx context.Context, recs []*kgo.Record) (abandoned bool, err error) {
	start := time.Now()
	pctx, cancel := context.WithTimeoutCause(ctx, p.opts.DeliveryTimeout, errDeliveryTimeout)
	defer cancel()
	w := &produceWait{done: make(chan struct{})}
	w.left.Store(int64(len(recs)))
	for _, r := range recs {
		p.cl.Produce(pctx, r, w.promise)
	}
	select {
	case <-w.done:
		err = w.first()
	case <-pctx.Done():
		abandoned = true
		err = context.Cause(pctx)
		if errors.Is(err, errDeliveryTimeout) {
			err = fmt.Errorf("%w after %s", errDeliveryTimeout, p.opts.DeliveryTimeout)
		}
	}
	if err != nil {
		p.mFailed.Increment()
		if ctx.Err() != nil {
			return abandoned, ctx.Err()
		}
		p.opts.Logger.Warn("produce to kafka", "records", len(recs), "err", err)
		return abandoned, err
	}
	p.mLatency.Record(time.Since(start))
	p.mRecords.Add(float64(len(recs)))
	return false, nil
}

// produceWait collects the acknowledgements of one produce call.
type produceWait struct {
	left atomic.Int64  // records not yet acknowledged or failed
	done chan struct{} // closed when left reaches 0
	mu   sync.Mutex
	err  error // the first failure
}

// promise is the client's callback for each record.
func (w *produceWait) promise(_ *kgo.Record, err error) {
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	if w.left.Add(-1) == 0 {
		close(w.done)
	}
}

// first returns the first failure, once every record has an answer.
func (w *produceWait) first() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// splitTraces groups the spans of td by the partition of their trace id,
// keeping each span's resource and scope.
func splitTraces(td ptrace.Traces, n int) map[int]ptrace.Traces {
	out := map[int]ptrace.Traces{}
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		// Per partition, this resource's copy (made on its first span).
		dests := map[int]ptrace.ResourceSpans{}
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			ss := sss.At(j)
			scopes := map[int]ptrace.SpanSlice{}
			spans := ss.Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				part := tracing.TracePartition(sp.TraceID(), n)
				dst, ok := scopes[part]
				if !ok {
					drs, ok := dests[part]
					if !ok {
						t, ok := out[part]
						if !ok {
							t = ptrace.NewTraces()
							out[part] = t
						}
						drs = t.ResourceSpans().AppendEmpty()
						rs.Resource().CopyTo(drs.Resource())
						drs.SetSchemaUrl(rs.SchemaUrl())
						dests[part] = drs
					}
					dss := drs.ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(dss.Scope())
					dss.SetSchemaUrl(ss.SchemaUrl())
					dst = dss.Spans()
					scopes[part] = dst
				}
				sp.CopyTo(dst.AppendEmpty())
			}
		}
	}
	return out
}

// refCache remembers the tags of the refs Append handed out, so that a
// caller may send a Ref alone. A ref is the series' tags.Hash (with the
// low bit set, so never zero). The cache is striped by ref; each stripe
// holds at most max/refStripes sets and starts over when full (a forgotten
// ref is rejected, and the caller sends tags again).
type refCache struct {
	max     int
	stripes [refStripes]refStripe
}

const refStripes = 64

type refStripe struct {
	mu struct {
		sync.RWMutex
		m map[tsdb.SeriesRef]tags.Set
	}
	_ [32]byte // 64 bytes a stripe: writers on other cores do not share a cache line
}

func (c *refCache) init(max int) {
	c.max = max / refStripes
	for i := range c.stripes {
		c.stripes[i].mu.m = make(map[tsdb.SeriesRef]tags.Set)
	}
}

func (c *refCache) stripe(ref tsdb.SeriesRef) *refStripe {
	return &c.stripes[(ref>>1)%refStripes]
}

func (c *refCache) get(ref tsdb.SeriesRef) (tags.Set, bool) {
	st := c.stripe(ref)
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.mu.m[ref]
	return s, ok
}

// put returns the ref of s, whose tags.Hash is h, remembering s if it is
// new.
func (c *refCache) put(h uint64, s tags.Set) tsdb.SeriesRef {
	ref := tsdb.SeriesRef(h | 1)
	st := c.stripe(ref)
	st.mu.RLock()
	_, ok := st.mu.m[ref]
	st.mu.RUnlock()
	if ok {
		// Fast path: a known series.
		return ref
	}
	s = s.Clone() // the batch's tags may alias a request buffer
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.mu.m) >= max(1, c.max) {
		clear(st.mu.m)
	}
	st.mu.m[ref] = s
	return ref
}

// kgoLogger passes franz-go's log lines to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		k.l.Error(msg, append([]any{"component", "kafka"}, keyvals...)...)
	case kgo.LogLevelWarn:
		k.l.Warn(msg, append([]any{"component", "kafka"}, keyvals...)...)
	}
}
