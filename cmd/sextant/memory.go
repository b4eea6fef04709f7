package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"
)

// Memory defaults of `sextant serve` when the environment sets none
// (docs/server.md, "Memory"):
//
//   - GOGC=30 rather than Go's 100. The ingest path allocates almost
//     nothing per datapoint and most of the heap is sealed blocks (pointer
//     free), so a collection is cheap and rare; what GOGC buys is headroom
//     above the live heap, which is resident memory. VictoriaMetrics makes
//     the same choice.
//   - A soft memory limit (GOMEMLIMIT) of 70 % of the memory the process
//     may use: the cgroup's limit when there is one, else the machine's.
//     Near it the collector works harder rather than let the process be
//     killed; the 30 % left is for Pebble's memtables and block cache
//     (allocated outside the Go heap) and the page cache.
//
// While GOGC is that default, gcTuner lowers it once 30 % of the live heap
// is more than gcHeadroom, down to gcFloor (see gcTuner).
const (
	defaultGOGC       = 30
	defaultLimitShare = 0.70
	gcHeadroom        = 64 << 20
	gcFloor           = 5
	gcTuneEvery       = time.Second
)

// memorySettings is what applyMemoryDefaults sets; zero fields are left
// as the runtime has them.
type memorySettings struct {
	gogc  int   // percent; 0: unchanged
	limit int64 // bytes; 0: unchanged
	avail int64 // the memory the limit is a share of, for the log
}

// memoryDefaults decides the settings from the environment and the
// machine: GOGC and GOMEMLIMIT, when set, win (the runtime has read them).
// readFile reads /proc and /sys files; an unreadable file counts as no
// limit from it.
func memoryDefaults(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) memorySettings {
	var s memorySettings
	if _, ok := lookupEnv("GOGC"); !ok {
		s.gogc = defaultGOGC
	}
	if _, ok := lookupEnv("GOMEMLIMIT"); ok {
		return s
	}
	s.avail = availableMemory(readFile)
	if s.avail > 0 {
		s.limit = int64(float64(s.avail) * defaultLimitShare)
	}
	return s
}

// availableMemory returns the smallest of the cgroup v2 and v1 limits and
// the machine's memory (MemTotal), or 0 when none can be read.
func availableMemory(readFile func(string) ([]byte, error)) int64 {
	var avail int64
	take := func(n int64) {
		// cgroup v1 reports "no limit" as a huge number: min() drops it.
		if n > 0 && (avail == 0 || n < avail) {
			avail = n
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := readFile(p); err == nil {
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil {
				take(n) // "max" (no limit) does not parse
			}
		}
	}
	if b, err := readFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := bytes.Fields(sc.Bytes())
			if len(f) >= 2 && string(f[0]) == "MemTotal:" {
				if kb, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
					take(kb << 10)
				}
			}
		}
	}
	return avail
}

// applyMemoryDefaults sets the runtime's GOGC and soft memory limit as
// memoryDefaults decides, and logs what it set.
func applyMemoryDefaults(lookupEnv func(string) (string, bool), logger *slog.Logger) {
	s := memoryDefaults(lookupEnv, os.ReadFile)
	if s.gogc > 0 {
		debug.SetGCPercent(s.gogc)
	}
	if s.limit > 0 {
		debug.SetMemoryLimit(s.limit)
	}
	if s.gogc > 0 || s.limit > 0 {
		logger.Info("memory defaults", "gogc", s.gogc, "memory_limit_bytes", s.limit, "available_bytes", s.avail)
	}
}

// idleTrimEvery is how often the idle trimmer looks at the ingest counter.
const idleTrimEvery = 10 * time.Second

// idleTrim gives memory back once ingest goes quiet: after a period with
// datapoints appended, the first period with none runs trim (the ingest
// handler's request workspaces, then two garbage collections, which empty
// the sync.Pools of request buffers and append scratch, and returns the
// freed pages to the operating system). It trims
// once per quiet spell, never while datapoints arrive.
type idleTrim struct {
	every time.Duration
	count func() float64 // store activity so far (datapoints appended, blocks sealed)
	trim  func()
}

// run trims until ctx ends.
func (t idleTrim) run(ctx context.Context) error {
	tk := time.NewTicker(t.every)
	defer tk.Stop()
	last, busy := t.count(), false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		c := t.count()
		switch {
		case c != last:
			busy = true
		case busy:
			t.trim()
			busy = false
		}
		last = c
	}
}

// freeMemory is idleTrim's trim of a server: the first collection moves
// the pools' items to their victim caches, the second (FreeOSMemory's)
// drops them and returns every free page.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// gcTuner keeps the collector's headroom (the heap allowed above the live
// heap before the next collection, resident memory all of it) from growing
// with the live heap. GOGC=30 suits a small heap; at a million series the
// live heap is some 600 MB and 30 % of it, 180 MB, was a fifth of the
// server's RSS (docs/benchmarks.md, "Memory per series at a million
// series"). Once base % of the live heap is more than headroom bytes, the
// tuner sets the percent that keeps the headroom at headroom bytes, never
// below floor %. A collection then runs every 64 MiB allocated however
// large the heap. That costs little: the ingest path allocates little, and
// the bulk of the heap (open blocks' streams, sealed blocks, tag bytes,
// hash tables) holds no pointers, so a collection's marking work is about
// one pass over the series (a few tens of milliseconds at a million). At
// 100 000 series the live heap is under 213 MiB and GOGC stays 30.
type gcTuner struct {
	every       time.Duration
	base, floor int    // GOGC percents: the default, and the lowest
	headroom    uint64 // bytes
	live        func() uint64
	set         func(percent int)
}

// percent is the GOGC percent for a live heap of live bytes.
func (t gcTuner) percent(live uint64) int {
	if live*uint64(t.base) <= t.headroom*100 {
		return t.base
	}
	return max(t.floor, int(t.headroom*100/live))
}

// run looks at the live heap every period and sets the percent when it
// changes, until ctx ends. It starts from base, which the runtime has.
func (t gcTuner) run(ctx context.Context) error {
	tk := time.NewTicker(t.every)
	defer tk.Stop()
	cur := t.base
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		if p := t.percent(t.live()); p != cur {
			t.set(p)
			cur = p
		}
	}
}

// readMetric returns the runtime metric name, a uint64, or 0.
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// setupMemoryTrim runs the idle trimmer on the store's appended-datapoints
// and sealed-blocks counters, and the GC tuner when the collector runs at
// sextant's default GOGC (applyMemoryDefaults set it, not the environment:
// an operator's GOGC is left alone, and so are in-process tests, which
// keep the test binary's).
func setupMemoryTrim(n *node, g *runGroup) error {
	if _, set := os.LookupEnv("GOGC"); !set && readMetric("/gc/gogc:percent") == defaultGOGC {
		tu := gcTuner{every: gcTuneEvery, base: defaultGOGC, floor: gcFloor, headroom: gcHeadroom,
			live: func() uint64 { return readMetric("/gc/heap/live:bytes") },
			set:  func(p int) { debug.SetGCPercent(p) }}
		g.Go("gc-tune", tu.run)
	}
	t := idleTrim{
		every: idleTrimEvery,
		// Sealing counts as activity too: SealIdle sealing the open blocks of
		// series that went quiet frees their stream buffers, a burst of
		// garbage as large as ingest's.
		count: func() float64 {
			return n.reg.Counter("sextant.tsdb.datapointsAppended").Count() + n.reg.Counter("sextant.tsdb.blocksSealed").Count()
		},
		trim: func() {
			if n.ing != nil {
				n.ing.Trim() // workspaces no collection empties
			}
			freeMemory()
		},
	}
	g.Go("memory-trim", t.run)
	return nil
}
