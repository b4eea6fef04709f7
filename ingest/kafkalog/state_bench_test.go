package kafkalog

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStatePut writes a 1 KiB record to the state topic of an
// in-process kfake cluster and waits for the node's copy to apply it, as
// every save of a dashboard, a silence or a rule's state does.
func BenchmarkStatePut(b *testing.B) {
	_, brokers := newStateCluster(b)
	s := openState(b, brokers, nil)
	ctx := context.Background()
	v := make([]byte, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	i := 0
	for b.Loop() {
		if err := s.Put(ctx, fmt.Sprintf("bench/%d", i%1000), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkStateGet reads a key after catching up with the topic's end
// (one ListOffsets request per read when reads do not overlap).
func BenchmarkStateGet(b *testing.B) {
	_, brokers := newStateCluster(b)
	s := openState(b, brokers, nil)
	ctx := context.Background()
	if err := s.Put(ctx, "bench/key", make([]byte, 1024)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, "bench/key"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateGetParallel is BenchmarkStateGet from many goroutines:
// reads that arrive while a listing is in flight share the next one.
func BenchmarkStateGetParallel(b *testing.B) {
	_, brokers := newStateCluster(b)
	s := openState(b, brokers, nil)
	ctx := context.Background()
	if err := s.Put(ctx, "bench/key", make([]byte, 1024)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "bench/key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
