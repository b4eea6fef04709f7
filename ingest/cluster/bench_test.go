package cluster

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkView computes the view of a large cluster: 48 store nodes, 256
// partitions, replication 2, every node serving its partitions (the paper
// model of docs/cluster.md). Each heartbeat read or sent recomputes it.
func BenchmarkView(b *testing.B) {
	const nodes, partitions = 48, 256
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range nodes {
		ids = append(ids, fmt.Sprintf("store-%02d", i))
	}
	tb := table{}
	for _, id := range ids {
		rec := record{Version: recordVersion, ID: id, Addr: id + ":7101", Roles: []string{RoleStore}, Time: now.UnixMilli()}
		for p := range partitions {
			for _, o := range Assign(ids, p, 2) {
				if o == id {
					rec.Partitions = append(rec.Partitions, PartitionState{Partition: p, CaughtUp: true})
				}
			}
		}
		tb[id] = rec
	}
	b.ReportAllocs()
	// CPU time as well as wall time: on a shared machine the wall time
	// says more about the neighbours.
	cpu0 := cpuTime()
	for b.Loop() {
		v := tb.view("store-00", now, partitions, 2, 10*time.Second)
		if len(v.owners[0]) != 2 {
			b.Fatalf("owners of partition 0 = %v", v.owners[0])
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
