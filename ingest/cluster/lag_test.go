package cluster

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLagStates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLagTracker([]string{"m", "s"}, 3*time.Second, 15*time.Second)
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

	// Ten seconds later partition 1 applied up to a record 5s old: within
	// 15s (ready) but not yet within the 3s at which it starts serving.
	// Partition 0 fell behind by 3 records just after a heartbeat that saw
	// it at the end: its lag is bounded by that moment, and it keeps
	// serving until that exceeds 15s.
	t1 := t0.Add(10 * time.Second)
	ends[topicPartition{"m", 0}] = 103
	applied[2] = Applied{Topic: "m", Partition: 1, Offset: 49, Time: t1.Add(-5 * time.Second)}
	got = l.states(t1, ends, applied[:4])
	want = []PartitionState{
		{Partition: 0, LagRecords: 3, LagSeconds: 10, CaughtUp: true},
		{Partition: 1, LagRecords: 1, LagSeconds: 5},
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

// TestLagWithoutRecordTimes: a consumer that reports offsets only (no record
// times) replaying a backlog under steady writes is caught up once it has
// applied what the log held a few heartbeats ago.
func TestLagWithoutRecordTimes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLagTracker([]string{"m"}, 3*time.Second, 15*time.Second)
	f := func(sec int, end, applied int64, want PartitionState) {
		t.Helper()
		got := l.states(t0.Add(time.Duration(sec)*time.Second), map[topicPartition]int64{{"m", 0}: end},
			[]Applied{{Topic: "m", Partition: 0, Offset: applied}})
		if len(got) != 1 || got[0] != want {
			t.Errorf("at %ds, end %d, applied %d: states = %+v, want %+v", sec, end, applied, got, want)
		}
	}
	f(0, 1000, 0, PartitionState{LagRecords: 1000, LagSeconds: -1})
	f(1, 1100, 500, PartitionState{LagRecords: 600, LagSeconds: -1})
	f(2, 1200, 1050, PartitionState{LagRecords: 150, LagSeconds: 2, CaughtUp: true})   // past what the log held at 0s
	f(3, 1300, 1250, PartitionState{LagRecords: 50, LagSeconds: 1, CaughtUp: true})    // past 2s
	f(40, 1300, 1250, PartitionState{LagRecords: 50, LagSeconds: 38, CaughtUp: false}) // stuck: the bound grows
	f(41, 1300, 1300, PartitionState{CaughtUp: true})
}

// TestLagStuckAtEnd: a consumer that stops at the log's end while writes go
// on shows a lag that grows with the time since it was at the end, beyond
// the samples' horizon.
func TestLagStuckAtEnd(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLagTracker([]string{"m"}, 3*time.Second, 15*time.Second)
	for sec := range 61 {
		end := int64(100 + sec)
		got := l.states(t0.Add(time.Duration(sec)*time.Second), map[topicPartition]int64{{"m", 0}: end},
			[]Applied{{Topic: "m", Partition: 0, Offset: 100}})
		want := PartitionState{LagRecords: end - 100, LagSeconds: float64(sec), CaughtUp: sec <= 15}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("at %ds: states = %+v, want %+v", sec, got, want)
		}
	}
}
