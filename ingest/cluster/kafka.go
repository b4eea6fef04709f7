package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// membersRetention is how long the members topic keeps a record that no
// newer heartbeat of its key replaced: a dead member's last heartbeat is
// listed (as dead) this long. Live members heartbeat every Interval.
const membersRetention = 24 * time.Hour

// Run joins the cluster until ctx ends: it creates the members topic when
// missing, reads it to its end, then heartbeats every Interval and keeps
// the view current. A stopped node sends no farewell: its partitions move
// after Timeout, so a restart within Timeout moves nothing. Run returns
// nil when ctx ends, or the error that kept it from starting.
func (m *Membership) Run(ctx context.Context) error {
	defer m.closeSubs()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(m.opts.Brokers...),
		kgo.ClientID("sextant-"+m.opts.NodeID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A heartbeat to a broker that went away must fail (and the next
		// one be tried), not wait forever: Kafka's idempotent producer may
		// never fail a request in flight, which hung a node's shutdown when
		// its brokers were gone. A heartbeat written twice is harmless (the
		// topic is compacted by node id).
		kgo.DisableIdempotentWrite(),
		kgo.RecordDeliveryTimeout(max(5*m.opts.Interval, 5*time.Second)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(m.opts.Interval),
	)
	if err != nil {
		return fmt.Errorf("cluster: kafka client: %w", err)
	}
	defer cl.Close()
	k := &kafkaLog{m: m, cl: cl, adm: kadm.NewClient(cl)}
	end, err := m.prepare(ctx, k.adm)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if m.Partitions() == 0 {
		n, err := m.discoverPartitions(ctx, k.adm)
		if err != nil {
			return nil // ctx ended
		}
		m.mu.Lock()
		m.setPartitionsLocked(n)
		m.mu.Unlock()
	}
	cl.AddConsumeTopics(m.opts.Topic)
	m.run(ctx, k, end)
	return nil
}

// memberLog is the members topic and the data topics' end offsets, as the
// membership uses them: Kafka in Run, an in-memory log in tests.
type memberLog interface {
	// send writes a heartbeat record and returns once it is acknowledged.
	send(ctx context.Context, key string, value []byte) error
	// poll blocks until records of the members topic arrive (in order,
	// from its start) or ctx ends.
	poll(ctx context.Context) []message
	// ends lists the end offsets of the data topics' partitions.
	ends(ctx context.Context) (map[topicPartition]int64, error)
}

// message is one record of the members topic.
type message struct {
	offset int64
	key    string
	value  []byte // nil: a tombstone
}

// run heartbeats and follows the log until ctx ends; the view is complete
// once the members topic is read to offset end (its end at start).
func (m *Membership) run(ctx context.Context, l memberLog, end int64) {
	defer m.closeSubs()
	if end == 0 {
		m.setSynced()
	}
	var wg sync.WaitGroup
	wg.Go(func() { m.consume(ctx, l, end) })
	m.heartbeatLoop(ctx, l)
	wg.Wait()
}

// prepare creates the members topic when missing and returns its end
// offset, retrying while Kafka is unreachable.
func (m *Membership) prepare(ctx context.Context, adm *kadm.Client) (int64, error) {
	retention := fmt.Sprint(membersRetention.Milliseconds())
	configs := map[string]*string{"cleanup.policy": new("compact,delete"), "retention.ms": &retention}
	backoff := 100 * time.Millisecond
	for {
		end, err := m.tryPrepare(ctx, adm, configs)
		if err == nil {
			return end, nil
		}
		m.opts.Logger.Warn("prepare members topic", "topic", m.opts.Topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (m *Membership) tryPrepare(ctx context.Context, adm *kadm.Client, configs map[string]*string) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(rctx, 1, -1, configs, m.opts.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", m.opts.Topic, err)
	}
	ends, err := adm.ListEndOffsets(rctx, m.opts.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("list end offset of %s: %w", m.opts.Topic, err)
	}
	o, ok := ends.Lookup(m.opts.Topic, 0)
	if !ok {
		return 0, fmt.Errorf("list end offset of %s: partition 0 missing", m.opts.Topic)
	}
	return o.Offset, nil
}

// discoverPartitions returns the number of partitions of the first data
// topic, waiting until it exists; it fails only when ctx ends.
func (m *Membership) discoverPartitions(ctx context.Context, adm *kadm.Client) (int, error) {
	topic := m.opts.DataTopics[0]
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		details, err := adm.ListTopics(rctx, topic)
		cancel()
		if err == nil {
			if d, ok := details[topic]; ok && d.Err == nil && len(d.Partitions) > 0 {
				n := min(len(d.Partitions), maxPartitions)
				m.opts.Logger.Info("cluster partitions", "topic", topic, "partitions", n)
				return n, nil
			}
			err = fmt.Errorf("topic %s not created yet", topic)
		}
		m.opts.Logger.Info("wait for data topic", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// consume reads the members topic into the table until ctx ends.
func (m *Membership) consume(ctx context.Context, l memberLog, end int64) {
	for {
		msgs := l.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		synced, changed := false, false
		for _, msg := range msgs {
			if m.applyRecord(msg.key, msg.value) {
				changed = true
			}
			if msg.offset+1 >= end {
				synced = true
			}
		}
		if synced && m.setSynced() {
			changed = true
		}
		if changed {
			m.recompute(m.opts.Now())
		}
	}
}

// setSynced marks the view complete; it reports whether it was not yet.
func (m *Membership) setSynced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.synced {
		return false
	}
	m.mu.synced = true
	m.opts.Logger.Info("members topic read", "topic", m.opts.Topic, "members", len(m.mu.table))
	return true
}

// heartbeatLoop heartbeats every Interval until ctx ends; each heartbeat
// also recomputes the view, so liveness follows the clock.
func (m *Membership) heartbeatLoop(ctx context.Context, l memberLog) {
	t := time.NewTicker(m.opts.Interval)
	defer t.Stop()
	ends := map[topicPartition]int64{}
	for {
		m.mu.Lock()
		synced := m.mu.synced
		m.mu.Unlock()
		if synced {
			if m.opts.Progress != nil && len(m.opts.DataTopics) > 0 {
				if e, err := l.ends(ctx); err == nil {
					ends = e
				} else if ctx.Err() == nil {
					m.opts.Logger.Warn("list end offsets", "topics", m.opts.DataTopics, "err", err)
				}
			}
			if err := m.heartbeat(ctx, l, ends); err != nil && ctx.Err() == nil {
				m.heartbeatErrors.Increment()
				m.opts.Logger.Warn("send heartbeat", "topic", m.opts.Topic, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat sends this node's record and applies it to the table at once.
func (m *Membership) heartbeat(ctx context.Context, l memberLog, ends map[topicPartition]int64) error {
	now := m.opts.Now()
	var states []PartitionState
	if m.opts.Progress != nil && slices.Contains(m.opts.Roles, RoleStore) {
		states = m.lag.states(now, ends, m.opts.Progress())
	}
	m.updateMetrics(states)
	m.mu.Lock()
	addr := m.mu.addr
	m.mu.Unlock()
	rec := record{Version: recordVersion, ID: m.opts.NodeID, Addr: addr, Roles: m.opts.Roles,
		Time: now.UnixMilli(), Partitions: states}
	rctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	err := l.send(rctx, m.opts.NodeID, encodeRecord(rec))
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.mu.lostAt.IsZero() && ctx.Err() == nil {
			m.mu.lostAt = now
			m.opts.Logger.Warn("membership frozen: heartbeats fail", "err", err)
		}
		return err
	}
	m.trackOutageLocked(now)
	m.mu.table[m.opts.NodeID] = rec
	m.mu.beat = true
	m.recomputeLocked(now)
	return nil
}

// trackOutageLocked ends the frozen liveness of an outage once heartbeats
// have succeeded for two intervals, time for every member's next
// heartbeat to arrive.
func (m *Membership) trackOutageLocked(now time.Time) {
	switch {
	case m.mu.lostAt.IsZero():
	case m.mu.graceUntil.IsZero():
		m.mu.graceUntil = now.Add(2 * m.opts.Interval)
	case !now.Before(m.mu.graceUntil):
		m.opts.Logger.Info("membership unfrozen", "outage", m.mu.graceUntil.Sub(m.mu.lostAt).String())
		m.mu.lostAt, m.mu.graceUntil = time.Time{}, time.Time{}
	}
}

// updateMetrics sets the lag gauges of the partitions this node consumes.
func (m *Membership) updateMetrics(states []PartitionState) {
	reg := m.opts.Registry
	for _, ps := range states {
		p := fmt.Sprint(ps.Partition)
		reg.Gauge("sextant.cluster.lagRecords", "partition", p).Set(float64(ps.LagRecords))
		reg.Gauge("sextant.cluster.lagSeconds", "partition", p).Set(ps.LagSeconds)
	}
}

// kafkaLog is the memberLog of Run, on a franz-go client.
type kafkaLog struct {
	m   *Membership
	cl  *kgo.Client
	adm *kadm.Client
}

func (k *kafkaLog) send(ctx context.Context, key string, value []byte) error {
	return k.cl.ProduceSync(ctx, &kgo.Record{Topic: k.m.opts.Topic, Key: []byte(key), Value: value}).FirstErr()
}

func (k *kafkaLog) poll(ctx context.Context) []message {
	fs := k.cl.PollFetches(ctx)
	fs.EachError(func(topic string, _ int32, err error) {
		if ctx.Err() == nil {
			k.m.opts.Logger.Warn("read members topic", "topic", topic, "err", err)
		}
	})
	var out []message
	fs.EachRecord(func(r *kgo.Record) {
		out = append(out, message{offset: r.Offset, key: string(r.Key), value: r.Value})
	})
	return out
}

func (k *kafkaLog) ends(ctx context.Context) (map[topicPartition]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, k.m.opts.Interval)
	defer cancel()
	listed, err := k.adm.ListEndOffsets(rctx, k.m.opts.DataTopics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, err
	}
	ends := map[topicPartition]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		ends[topicPartition{o.Topic, int(o.Partition)}] = o.Offset
	})
	return ends, nil
}
