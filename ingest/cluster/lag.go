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
// per-partition lag. The time lag of a partition that is behind is the time
// since the later of its last applied record and the last moment it was
// seen at the log's end: an upper bound, exact while records flow.
type lagTracker struct {
	topics     []string
	maxLag     time.Duration
	caughtUpAt map[topicPartition]time.Time
}

// newLagTracker returns a tracker over the data topics.
func newLagTracker(topics []string, maxLag time.Duration) *lagTracker {
	return &lagTracker{topics: topics, maxLag: maxLag, caughtUpAt: map[topicPartition]time.Time{}}
}

// states returns the state of every partition that applied mentions, in
// partition order, given the log's end offsets (ends; a missing entry
// means unknown) at now.
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
			a, ok := at[tp]
			end, eok := ends[tp]
			if !ok || !eok {
				known = false
				continue
			}
			if a.Offset >= end {
				l.caughtUpAt[tp] = now
				continue
			}
			ps.LagRecords += end - a.Offset
			ref := a.Time
			if c := l.caughtUpAt[tp]; c.After(ref) {
				ref = c
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
		ps.CaughtUp = known && ps.LagSeconds <= l.maxLag.Seconds()
		out = append(out, ps)
	}
	for tp := range l.caughtUpAt {
		if !seen[tp] {
			delete(l.caughtUpAt, tp)
		}
	}
	return out
}
