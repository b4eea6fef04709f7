package cluster

import (
	"slices"
	"time"
)

// Applied is how far the local store consumer is in one partition of one
// data topic (the metrics or the spans topic).
type Applied struct {
	// Topic and Partition name the partition.
	Topic     string
	Partition int
	// Offset is the offset of the next record to apply: every record
	// before it is durable in the local store.
	Offset int64
	// Time is the Kafka timestamp of the last record applied, zero when
	// none was applied since the consumer started.
	Time time.Time
}

// topicPartition names a partition of a topic.
type topicPartition struct {
	topic     string
	partition int
}

// lagTracker turns the consumer's progress and the log's end offsets into
// per-partition lag. It keeps the end offsets it listed over the last
// horizon: when the consumer has applied past the end listed at time t,
// everything written before t is applied and the lag is at most now - t.
// The last applied record's timestamp, when the consumer gives one, bounds
// it the same way. An upper bound, within a heartbeat of exact while
// records flow; exactly 0 at the log's end.
type lagTracker struct {
	topics []string
	// A partition starts serving at a lag of serveLag or less and stops
	// at more than maxLag (or unknown): serving holds the state between.
	serveLag, maxLag time.Duration
	serving          map[int]bool
	horizon          time.Duration
	samples          map[topicPartition][]endSample // oldest first
	// bound is the latest time known to be fully applied per partition,
	// with the applied offset that showed it (valid while the consumer
	// is at or past that offset), so it outlives the samples.
	bound map[topicPartition]appliedAt
}

// appliedAt says everything written before at was applied at offset.
type appliedAt struct {
	at     time.Time
	offset int64
}

// endSample is the end offset of a partition as listed at a time.
type endSample struct {
	at  time.Time
	end int64
}

// newLagTracker returns a tracker over the data topics.
func newLagTracker(topics []string, serveLag, maxLag time.Duration) *lagTracker {
	return &lagTracker{topics: topics, serveLag: serveLag, maxLag: maxLag, horizon: 2 * maxLag, serving: map[int]bool{},
		samples: map[topicPartition][]endSample{}, bound: map[topicPartition]appliedAt{}}
}

// states returns the state of every partition that applied mentions, in
// partition order, given the log's end offsets listed at now (ends; a
// missing entry means unknown).
func (l *lagTracker) states(now time.Time, ends map[topicPartition]int64, applied []Applied) []PartitionState {
	at := map[topicPartition]Applied{}
	var parts []int
	for _, a := range applied {
		at[topicPartition{a.Topic, a.Partition}] = a
		if !slices.Contains(parts, a.Partition) {
			parts = append(parts, a.Partition)
		}
	}
	slices.Sort(parts)
	seen := map[topicPartition]bool{}
	var out []PartitionState
	for _, p := range parts {
		ps := PartitionState{Partition: p}
		known := true
		for _, topic := range l.topics {
			tp := topicPartition{topic, p}
			seen[tp] = true
			if end, ok := ends[tp]; ok {
				l.addSample(tp, now, end)
			}
			a, ok := at[tp]
			end, eok := ends[tp]
			if !ok || !eok {
				known = false
				continue
			}
			if a.Offset >= end {
				l.bound[tp] = appliedAt{at: now, offset: a.Offset}
				continue // at the log's end
			}
			ps.LagRecords += end - a.Offset
			ref := a.Time
			if b, ok := l.bound[tp]; ok && a.Offset >= b.offset && b.at.After(ref) {
				ref = b.at
			}
			for _, s := range l.samples[tp] {
				if s.end <= a.Offset && s.at.After(ref) {
					ref = s.at
				}
			}
			if !ref.IsZero() {
				l.bound[tp] = appliedAt{at: ref, offset: a.Offset}
			}
			if ref.IsZero() {
				known = false
				continue
			}
			ps.LagSeconds = max(ps.LagSeconds, max(now.Sub(ref), 0).Seconds())
		}
		if !known {
			ps.LagSeconds = -1
		}
		switch {
		case !known || ps.LagSeconds > l.maxLag.Seconds():
			l.serving[p] = false
		case ps.LagSeconds <= l.serveLag.Seconds():
			l.serving[p] = true
		}
		ps.CaughtUp = l.serving[p]
		out = append(out, ps)
	}
	for p := range l.serving {
		if !slices.Contains(parts, p) {
			delete(l.serving, p)
		}
	}
	for tp := range l.samples {
		if !seen[tp] {
			delete(l.samples, tp)
			delete(l.bound, tp)
		}
	}
	return out
}

// addSample records the end offset of tp listed at now and forgets those
// older than the horizon.
func (l *lagTracker) addSample(tp topicPartition, now time.Time, end int64) {
	ss := append(l.samples[tp], endSample{at: now, end: end})
	i := 0
	for i < len(ss)-1 && now.Sub(ss[i].at) > l.horizon {
		i++
	}
	l.samples[tp] = append(ss[:0], ss[i:]...)
}
