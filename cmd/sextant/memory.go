package main

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
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
const (
	defaultGOGC       = 30
	defaultLimitShare = 0.70
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
// datapoints appended, the first period with none runs trim (two garbage
// collections, which empty the sync.Pools of request buffers and append
// scratch, and returns the freed pages to the operating system). It trims
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

// setupMemoryTrim runs the idle trimmer on the store's appended-datapoints
// and sealed-blocks counters.
func setupMemoryTrim(n *node, g *runGroup) error {
	t := idleTrim{
		every: idleTrimEvery,
		// Sealing counts as activity too: SealIdle sealing the open blocks of
		// series that went quiet frees their stream buffers, a burst of
		// garbage as large as ingest's.
		count: func() float64 {
			return n.reg.Counter("sextant.tsdb.datapointsAppended").Count() + n.reg.Counter("sextant.tsdb.blocksSealed").Count()
		},
		trim: freeMemory,
	}
	g.Go("memory-trim", t.run)
	return nil
}
