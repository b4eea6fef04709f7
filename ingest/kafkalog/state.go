package kafkalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// StateTopic names the compacted topic that holds the shared server records
// of a cluster with prefix (dashboards, alert rules and their state,
// silences, the notification log, canary runs).
func StateTopic(prefix string) string { return prefix + "-state" }

// stateVersion is the first byte of every state record's value (a tombstone,
// a null value, has none).
const stateVersion = 1

// Record size limits of the state topic. Kafka refuses a message over the
// topic's max.message.bytes (1 MB by default, 1 048 588 bytes) and franz-go
// a batch over ProducerBatchMaxBytes (1 000 012 by default): a key and a
// value together stay under the smaller with room for the batch header.
const (
	// MaxStateKeyBytes bounds a key of the state store.
	MaxStateKeyBytes = 1024
	// MaxStateRecordBytes bounds a key and its value together.
	MaxStateRecordBytes = 1_000_012 - 4096
)

// StateOptions configure a State.
type StateOptions struct {
	// Brokers are the Kafka bootstrap brokers, host:port.
	Brokers []string
	// Prefix names the topic (StateTopic); default "sextant".
	Prefix string
	// WriteTimeout bounds a Put: Kafka's acknowledgement and the node's own
	// copy applying the record. Past it Put fails with an error wrapping
	// tsdb.ErrUnavailable. Default 10 s.
	WriteTimeout time.Duration
	// ReadTimeout bounds how long Get and Scan wait for the node's copy to
	// catch up with the end of the topic as it was at the call; past it,
	// or when Kafka cannot be asked, they answer from the copy as it is
	// (counted as stale reads). Default 2 s.
	ReadTimeout time.Duration
	// OpenTimeout bounds OpenState: creating the topic and reading it to
	// its end. Default 1 min.
	OpenTimeout time.Duration
	// Now is the clock of the stale-read back-off; default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

func (o StateOptions) withDefaults() StateOptions {
	if o.Prefix == "" {
		o.Prefix = "sextant"
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{Logger: o.Logger})
	}
	return o
}

// Validate checks the options.
func (o StateOptions) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("kafkalog: state: no brokers")
	}
	return nil
}

// ValueTooLargeError is a Put whose record Kafka would refuse. It wraps
// tsdb.ErrValueTooLarge.
type ValueTooLargeError struct {
	Key       string
	Bytes     int // the key and the value
	Max       int
	KeyTooBig bool // the key alone is over MaxStateKeyBytes
}

// Error names the key, the size and the limit.
func (e *ValueTooLargeError) Error() string {
	if e.KeyTooBig {
		return fmt.Sprintf("kafkalog: state key of %d bytes exceeds %d bytes", len(e.Key), MaxStateKeyBytes)
	}
	return fmt.Sprintf("kafkalog: state record %s is %d bytes, more than the %d bytes a Kafka message holds", e.Key, e.Bytes, e.Max)
}

// Unwrap makes errors.Is(err, tsdb.ErrValueTooLarge) true.
func (e *ValueTooLargeError) Unwrap() error { return tsdb.ErrValueTooLarge }

// State is a tsdb.KV replicated through Kafka: the compacted, single
// partition topic StateTopic is the truth (key = the KV key, value = a
// version byte and the KV value, a tombstone for a delete), and every node
// that opens a State reads the whole topic into a copy in memory and then
// follows it.
//
// Put returns once Kafka acknowledged the record (acks from every in-sync
// replica) and the node's own copy applied it, so a Get on the same node
// sees it (read your writes); Kafka unreachable makes Put fail with an
// error wrapping tsdb.ErrUnavailable, never a write to the copy alone. Get
// and Scan first wait until the copy has applied the topic up to its end
// offset as listed at the call (one ListOffsets request, shared by the
// reads that arrive while it is in flight), so they see every Put
// acknowledged anywhere before they were called; when Kafka cannot be asked
// or the copy does not catch up within ReadTimeout they answer from the
// copy as it is. Writes of one key are ordered by the log: the last one
// acknowledged wins everywhere.
//
// Safe for concurrent use. OpenState starts a goroutine that follows the
// topic; Close stops it.
type State struct {
	opts   StateOptions
	topic  string
	cl     *kgo.Client
	adm    *kadm.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mWrites, mWriteErrors, mStale, mSkipped, mApplied *lib.Counter
	mWriteLatency                                     *lib.Timer

	// mu guards the copy. It is never held across I/O or a watcher call.
	mu struct {
		sync.Mutex
		vals map[string][]byte
		keys []string // sorted
		// applied is the offset after the last record applied; changed
		// is closed (and replaced) whenever it moves.
		applied int64
		changed chan struct{}
		bytes   int64
	}
	// bar batches the end-offset listings of concurrent reads.
	bar struct {
		sync.Mutex
		running bool
		next    *endCall
		// failedAt is when a listing last failed: reads answer from
		// the copy without asking Kafka for failBackoff after it.
		failedAt time.Time
		// closed: Close was called, no listing starts any more.
		closed bool
	}
	watch struct {
		sync.Mutex
		fns []func(key string)
	}
}

// failBackoff is how long reads answer from the copy without asking Kafka
// after asking failed: a Kafka outage costs each read nothing more.
const failBackoff = 5 * time.Second

var _ tsdb.KV = (*State)(nil)

// OpenState creates the state topic when it is missing (one partition,
// cleanup.policy=compact, the brokers' default replication), reads it to
// its end and starts following it. It fails when that takes longer than
// OpenTimeout or ctx ends.
func OpenState(ctx context.Context, opts StateOptions) (*State, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(opts.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(opts.WriteTimeout),
		// As the data producer: a write to a vanished broker must fail
		// within WriteTimeout. A record duplicated by a retry sets its key
		// to the same value again.
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchMaxWait(time.Second),
		kgo.WithLogger(kgoLogger{opts.Logger}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafkalog: state client: %w", err)
	}
	reg := opts.Registry
	s := &State{opts: opts, topic: StateTopic(opts.Prefix), cl: cl, adm: kadm.NewClient(cl),
		mWrites:       reg.Counter("sextant.cluster.state.writes"),
		mWriteErrors:  reg.Counter("sextant.cluster.state.writeErrors"),
		mStale:        reg.Counter("sextant.cluster.state.staleReads"),
		mSkipped:      reg.Counter("sextant.cluster.state.skipped"),
		mApplied:      reg.Counter("sextant.cluster.state.applied"),
		mWriteLatency: reg.Timer("sextant.cluster.state.writeLatency"),
	}
	s.mu.vals = map[string][]byte{}
	s.mu.changed = make(chan struct{})
	reg.FuncGauge(func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.mu.keys)) }, "sextant.cluster.state.keys")
	reg.FuncGauge(func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.mu.bytes) }, "sextant.cluster.state.bytes")

	octx, cancel := context.WithTimeout(ctx, opts.OpenTimeout)
	defer cancel()
	end, err := s.prepare(octx)
	if err != nil {
		cl.Close()
		return nil, err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}})
	rctx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	s.wg.Go(func() { s.follow(rctx) })
	if err := s.waitApplied(octx, end); err != nil {
		s.Close()
		return nil, fmt.Errorf("kafkalog: read state topic %s to offset %d: %w", s.topic, end, err)
	}
	s.opts.Logger.Info("state topic read", "topic", s.topic, "records", end, "keys", s.Len())
	return s, nil
}

// Close stops following the topic and closes the client. Calls after
// Close fail.
func (s *State) Close() error {
	s.bar.Lock()
	s.bar.closed = true
	s.bar.Unlock()
	s.cancel()
	s.wg.Wait()
	s.cl.Close()
	return nil
}

// Watch adds fn, called with the key of every record the copy applies
// (writes of this node and of others, deletes too), after it is applied,
// in log order. fn runs on the goroutine that follows the topic and must
// not block: it should note the change and return.
func (s *State) Watch(fn func(key string)) {
	s.watch.Lock()
	defer s.watch.Unlock()
	s.watch.fns = append(s.watch.fns, fn)
}

// Len returns the number of keys in the copy.
func (s *State) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.keys)
}

// Get returns a copy of key's value, or tsdb.ErrNotFound, after catching
// up with the topic (see State).
func (s *State) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.catchUp(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.mu.vals[key]
	if !ok {
		return nil, tsdb.ErrNotFound
	}
	return slices.Clone(v), nil
}

// Scan calls fn for every key with prefix, in key order, after catching up
// with the topic; the values are copies taken at once, fn runs without the
// lock.
func (s *State) Scan(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	i, _ := slices.BinarySearch(s.mu.keys, prefix)
	var keys []string
	var vals [][]byte
	for ; i < len(s.mu.keys) && strings.HasPrefix(s.mu.keys[i], prefix); i++ {
		k := s.mu.keys[i]
		keys = append(keys, k)
		vals = append(vals, slices.Clone(s.mu.vals[k]))
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Put writes key (a nil value deletes it) to the topic and returns once
// Kafka acknowledged it and this node's copy applied it. Kafka not
// acknowledging within WriteTimeout fails with an error wrapping
// tsdb.ErrUnavailable (the record may still reach the topic: a retry writes
// the same value again); a record over Kafka's message size fails with a
// *ValueTooLargeError.
func (s *State) Put(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("kafkalog: state key is empty")
	}
	if len(key) > MaxStateKeyBytes {
		return &ValueTooLargeError{Key: key, KeyTooBig: true}
	}
	rec := &kgo.Record{Topic: s.topic, Partition: 0, Key: []byte(key)}
	if value != nil {
		rec.Value = append(append(make([]byte, 0, 1+len(value)), stateVersion), value...)
	}
	if n := len(key) + len(rec.Value); n > MaxStateRecordBytes {
		return &ValueTooLargeError{Key: key, Bytes: n, Max: MaxStateRecordBytes}
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	off, err := s.produce(wctx, rec)
	if err == nil {
		err = s.waitApplied(wctx, off+1)
		if err != nil {
			err = fmt.Errorf("apply offset %d: %w", off, err)
		}
	}
	if err != nil {
		s.mWriteErrors.Increment()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			return &ValueTooLargeError{Key: key, Bytes: len(key) + len(rec.Value), Max: MaxStateRecordBytes}
		}
		s.opts.Logger.Warn("write state record", "key", key, "err", err)
		// The cause is rendered, not wrapped: a deadline of this write is
		// Kafka's unavailability, not the caller's.
		return fmt.Errorf("kafkalog: write state %s: %w: %v", key, tsdb.ErrUnavailable, err)
	}
	s.mWrites.Increment()
	s.mWriteLatency.Record(time.Since(start))
	return nil
}

// produce writes rec and returns its offset once acknowledged; it does not
// wait past ctx (the record, never reused, may still be written).
func (s *State) produce(ctx context.Context, rec *kgo.Record) (int64, error) {
	type result struct {
		off int64
		err error
	}
	done := make(chan result, 1)
	s.cl.Produce(ctx, rec, func(r *kgo.Record, err error) { done <- result{r.Offset, err} })
	select {
	case r := <-done:
		return r.off, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// prepare creates the topic when missing and returns its end offset,
// retrying while Kafka cannot be reached, until ctx ends.
func (s *State) prepare(ctx context.Context) (int64, error) {
	configs := map[string]*string{"cleanup.policy": new("compact")}
	var last error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		resp, err := s.adm.CreateTopic(ctx, 1, -1, configs, s.topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			var end int64
			if end, err = s.listEnd(ctx); err == nil {
				return end, nil
			}
		}
		last = err
		s.opts.Logger.Info("wait for the state topic", "topic", s.topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("kafkalog: create state topic %s: %w (last error: %w)", s.topic, ctx.Err(), last)
		case <-time.After(wait):
		}
	}
}

// listEnd asks Kafka for the topic's end offset.
func (s *State) listEnd(ctx context.Context) (int64, error) {
	listed, err := s.adm.ListEndOffsets(ctx, s.topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("list end offset of %s: %w", s.topic, err)
	}
	o, ok := listed.Lookup(s.topic, 0)
	if !ok {
		return 0, fmt.Errorf("list end offset of %s: partition 0 missing", s.topic)
	}
	return o.Offset, nil
}

// follow applies the topic's records to the copy until ctx ends.
func (s *State) follow(ctx context.Context) {
	var keys []string
	for {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			s.opts.Logger.Warn("read state topic", "topic", topic, "partition", p, "err", err)
		})
		keys = keys[:0]
		s.mu.Lock()
		last := s.mu.applied
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < s.mu.applied {
				return // a record seen before
			}
			if s.applyLocked(r) {
				keys = append(keys, string(r.Key))
			}
			s.mu.applied = r.Offset + 1
		})
		if s.mu.applied != last {
			close(s.mu.changed)
			s.mu.changed = make(chan struct{})
		}
		s.mu.Unlock()
		s.mApplied.Add(float64(len(keys)))
		if len(keys) > 0 {
			s.notify(keys)
		}
	}
}

// applyLocked applies one record to the copy; it reports whether the
// record was a valid one (a write or a delete).
func (s *State) applyLocked(r *kgo.Record) bool {
	key := string(r.Key)
	if r.Value == nil {
		if old, ok := s.mu.vals[key]; ok {
			s.mu.bytes -= int64(len(key) + len(old))
			delete(s.mu.vals, key)
			if i, found := slices.BinarySearch(s.mu.keys, key); found {
				s.mu.keys = slices.Delete(s.mu.keys, i, i+1)
			}
		}
		return true
	}
	v, err := decodeState(r.Value)
	if err != nil {
		s.mSkipped.Increment()
		s.opts.Logger.Warn("skip state record", "key", key, "offset", r.Offset, "err", err)
		return false
	}
	old, ok := s.mu.vals[key]
	if ok {
		s.mu.bytes -= int64(len(key) + len(old))
	} else {
		i, _ := slices.BinarySearch(s.mu.keys, key)
		s.mu.keys = slices.Insert(s.mu.keys, i, key)
	}
	s.mu.vals[key] = slices.Clone(v) // not the fetch buffer: it would stay pinned
	s.mu.bytes += int64(len(key) + len(v))
	return true
}

// decodeState returns the KV value of a state record's (non-null) value.
func decodeState(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("kafkalog: empty state record")
	}
	if b[0] != stateVersion {
		return nil, fmt.Errorf("kafkalog: state record version %d, want %d", b[0], stateVersion)
	}
	return b[1:], nil
}

// notify calls the watchers with the keys applied.
func (s *State) notify(keys []string) {
	s.watch.Lock()
	fns := slices.Clone(s.watch.fns)
	s.watch.Unlock()
	for _, k := range keys {
		for _, fn := range fns {
			fn(k)
		}
	}
}

// waitApplied waits until the copy has applied every record before offset
// end, or ctx ends.
func (s *State) waitApplied(ctx context.Context, end int64) error {
	for {
		s.mu.Lock()
		applied, ch := s.mu.applied, s.mu.changed
		s.mu.Unlock()
		if applied >= end {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("copy at offset %d: %w", applied, ctx.Err())
		}
	}
}

// catchUp waits until the copy has applied the topic to its end as listed
// after the call began, within ReadTimeout; it answers nil also when it
// could not (the read is then stale, and counted), and ctx's error only
// when ctx ended.
func (s *State) catchUp(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.bar.Lock()
	failed := s.bar.failedAt
	s.bar.Unlock()
	if !failed.IsZero() && s.opts.Now().Sub(failed) < failBackoff {
		s.mStale.Increment()
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.ReadTimeout)
	defer cancel()
	end, err := s.endOffset(rctx)
	if err == nil {
		err = s.waitApplied(rctx, end)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.mStale.Increment()
	s.bar.Lock()
	s.bar.failedAt = s.opts.Now()
	s.bar.Unlock()
	s.opts.Logger.Warn("state read answers from the local copy", "topic", s.topic, "err", err)
	return nil
}

// endCall is one listing of the end offset, shared by the reads that
// joined it before it was sent.
type endCall struct {
	done chan struct{}
	end  int64
	err  error
}

// endOffset returns the topic's end offset as listed after the call
// began: it joins the listing that will be sent next, and starts it when
// none is in flight.
func (s *State) endOffset(ctx context.Context) (int64, error) {
	s.bar.Lock()
	if s.bar.closed {
		s.bar.Unlock()
		return 0, tsdb.ErrClosed
	}
	c := s.bar.next
	if c == nil {
		c = &endCall{done: make(chan struct{})}
		s.bar.next = c
	}
	if !s.bar.running {
		s.bar.running = true
		s.bar.next = nil
		s.wg.Go(func() { s.listLoop(c) })
	}
	s.bar.Unlock()
	select {
	case <-c.done:
		return c.end, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// listLoop sends c, then each listing reads joined while it was in flight,
// until none is waiting.
func (s *State) listLoop(c *endCall) {
	for c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReadTimeout)
		c.end, c.err = s.listEnd(ctx)
		cancel()
		close(c.done)
		s.bar.Lock()
		c, s.bar.next = s.bar.next, nil
		if c == nil {
			s.bar.running = false
		}
		s.bar.Unlock()
	}
}
