package lib

import (
	"runtime"
	"testing"
	"time"
)

// Hot paths of an instrumented service. The Parallel variants run two
// goroutines on two cores updating the same meter.

func BenchmarkCounterIncrement(b *testing.B) {
	c := NewRegistry(RegistryOptions{}).Counter("server.requests", "status", "200")
	b.ReportAllocs()
	for b.Loop() {
		c.Increment()
	}
}

func BenchmarkCounterIncrementParallel(b *testing.B) {
	c := NewRegistry(RegistryOptions{}).Counter("server.requests", "status", "200")
	parallel2(b, func() { c.Increment() })
}

func BenchmarkTimerRecord(b *testing.B) {
	t := NewRegistry(RegistryOptions{}).Timer("server.latency")
	b.ReportAllocs()
	for b.Loop() {
		t.Record(1234567 * time.Nanosecond)
	}
}

func BenchmarkTimerRecordParallel(b *testing.B) {
	t := NewRegistry(RegistryOptions{}).Timer("server.latency")
	parallel2(b, func() { t.Record(1234567 * time.Nanosecond) })
}

func BenchmarkPercentileTimerRecord(b *testing.B) {
	t := NewRegistry(RegistryOptions{}).PercentileTimer("ipc.server.call")
	b.ReportAllocs()
	for b.Loop() {
		t.Record(1234567 * time.Nanosecond)
	}
}

// BenchmarkLookup finds a meter by name and tags in a warm registry of
// 10 000 meters and increments it.
func BenchmarkLookup(b *testing.B) {
	r := NewRegistry(RegistryOptions{})
	for i := range 10_000 {
		r.Counter("server.requests", "route", "/r"+itoa(i), "status", "200")
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Counter("server.requests", "status", "200", "route", "/r42").Increment()
	}
}

func BenchmarkMeasure(b *testing.B) {
	r := NewRegistry(RegistryOptions{})
	for i := range 10_000 {
		r.Counter("server.requests", "route", "/r"+itoa(i)).Increment()
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Measure(time.Minute)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/meter")
}

// parallel2 runs fn from two goroutines (on two cores when there are).
func parallel2(b *testing.B, fn func()) {
	b.Helper()
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((2 + procs - 1) / procs)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fn()
		}
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
