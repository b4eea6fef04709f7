package main

import (
	"context"
	"io/fs"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// share is the default limit for avail bytes.
func share(avail int64) int64 { return int64(float64(avail) * defaultLimitShare) }

func TestMemoryDefaults(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	meminfo := []byte("MemTotal:       25165824 kB\nMemFree:         1000 kB\n") // 24 GiB
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  memorySettings
	}{
		{
			name:  "machine memory",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory.max": "max\n"},
			want:  memorySettings{gogc: 30, limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name:  "cgroup v2 limit below the machine's",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory.max": "2147483648\n"},
			want:  memorySettings{gogc: 30, limit: share(2 * gib), avail: 2 * gib},
		},
		{
			name:  "cgroup v1 without a limit",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"},
			want:  memorySettings{gogc: 30, limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name:  "GOMEMLIMIT set",
			env:   map[string]string{"GOMEMLIMIT": "1GiB"},
			files: map[string]string{"/proc/meminfo": string(meminfo)},
			want:  memorySettings{gogc: 30},
		},
		{
			name:  "GOGC set",
			env:   map[string]string{"GOGC": "100"},
			files: map[string]string{"/proc/meminfo": string(meminfo)},
			want:  memorySettings{limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name: "nothing readable",
			want: memorySettings{gogc: 30},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			read := func(p string) ([]byte, error) {
				if v, ok := tc.files[p]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			if got := memoryDefaults(env, read); got != tc.want {
				t.Errorf("memoryDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestIdleTrim(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var appended atomic.Int64
		var trims atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		tr := idleTrim{
			every: 10 * time.Second,
			count: func() float64 { return float64(appended.Load()) },
			trim:  func() { trims.Add(1) },
		}
		done := make(chan error)
		go func() { done <- tr.run(ctx) }()
		tick := func() { time.Sleep(10 * time.Second); synctest.Wait() } // in the synctest bubble: fake time

		tick() // idle from the start: nothing to give back
		if n := trims.Load(); n != 0 {
			t.Fatalf("%d trims before any ingest, want 0", n)
		}
		for range 3 { // ingest for three periods
			appended.Add(1000)
			tick()
		}
		if n := trims.Load(); n != 0 {
			t.Fatalf("%d trims while datapoints arrive, want 0", n)
		}
		tick() // the first quiet period trims
		if n := trims.Load(); n != 1 {
			t.Fatalf("%d trims after ingest stopped, want 1", n)
		}
		tick()
		tick() // staying quiet does not trim again
		if n := trims.Load(); n != 1 {
			t.Fatalf("%d trims over a quiet spell, want 1", n)
		}
		appended.Add(1)
		tick()
		tick() // a new spell of ingest, then quiet: one more
		if n := trims.Load(); n != 2 {
			t.Fatalf("%d trims after the second spell, want 2", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	})
}

func TestGCTunerPercent(t *testing.T) {
	t.Parallel()
	tu := gcTuner{base: 30, floor: 5, headroom: 64 << 20}
	f := func(live uint64, want int) {
		t.Helper()
		if got := tu.percent(live); got != want {
			t.Errorf("percent(%d MiB) = %d, want %d", live>>20, got, want)
		}
	}
	f(0, 30)
	f(100<<20, 30)
	f(213<<20, 30) // 30 % is 63.9 MiB
	f(256<<20, 25) // 64 MiB of headroom
	f(640<<20, 10)
	f(1<<30, 6)
	f(4<<30, 5) // never below the floor
}

func TestGCTuner(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var live atomic.Uint64
		var sets []int // written by run's goroutine, read after synctest.Wait
		ctx, cancel := context.WithCancel(t.Context())
		tu := gcTuner{every: time.Second, base: 30, floor: 5, headroom: 64 << 20,
			live: live.Load, set: func(p int) { sets = append(sets, p) }}
		done := make(chan error)
		go func() { done <- tu.run(ctx) }()
		tick := func() { time.Sleep(time.Second); synctest.Wait() } // the bubble's fake clock: a second passes at once

		live.Store(100 << 20)
		tick()
		if len(sets) != 0 {
			t.Fatalf("sets %v below the knee, want none (the runtime has the base)", sets)
		}
		live.Store(512 << 20)
		tick()
		tick() // the same heap: no second set
		live.Store(1 << 30)
		tick()
		live.Store(64 << 20) // the heap shrank: back to the base
		tick()
		if want := []int{12, 6, 30}; !slices.Equal(sets, want) {
			t.Errorf("sets = %v, want %v", sets, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	})
}
