package cluster

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLagStates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLagTracker([]string{"m", "s"}, 15*time.Second)
	ends := map[topicPartition]int64{{"m", 0}: 100, {"s", 0}: 10, {"m", 1}: 50, {"s", 1}: 5, {"m", 2}: 7, {"s", 2}: 7}
	applied := []Applied{
		// Partition 0: at the end of both topics.
		{Topic: "m", Partition: 0, Offset: 100}, {Topic: "s", Partition: 0, Offset: 10},
		// Partition 1: replaying, its last applied record 20s old.
		{Topic: "m", Partition: 1, Offset: 40, Time: t0.Add(-20 * time.Second)}, {Topic: "s", Partition: 1, Offset: 5},
		// Partition 2: only the metrics topic started: not caught up.
		{Topic: "m", Partition: 2, Offset: 7},
	}
	got := l.states(t0, ends, applied)
	want := []PartitionState{
		{Partition: 0, CaughtUp: true},
		{Partition: 1, LagRecords: 10, LagSeconds: 20},
		{Partition: 2, LagSeconds: -1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}

	// Ten seconds later partition 1 applied up to a record 5s old: caught
	// up to within 15s. Partition 0 fell behind by 3 records just after a
	// heartbeat that saw it at the end: its lag is bounded by that moment.
	t1 := t0.Add(10 * time.Second)
	ends[topicPartition{"m", 0}] = 103
	applied[2] = Applied{Topic: "m", Partition: 1, Offset: 49, Time: t1.Add(-5 * time.Second)}
	got = l.states(t1, ends, applied[:4])
	want = []PartitionState{
		{Partition: 0, LagRecords: 3, LagSeconds: 10, CaughtUp: true},
		{Partition: 1, LagRecords: 1, LagSeconds: 5, CaughtUp: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("states 10s later (-want +got):\n%s", diff)
	}
	// Unknown end offsets: nothing is caught up.
	got = l.states(t1, nil, applied[:2])
	if want := []PartitionState{{Partition: 0, LagSeconds: -1}}; !cmp.Equal(want, got) {
		t.Errorf("states without end offsets = %+v, want %+v", got, want)
	}
}
