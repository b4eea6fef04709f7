//go:build unix

package api_test

import "syscall"

// cpuTime returns the process's user and system CPU time in nanoseconds
// (every thread: the server, the benchmark's client and the collector).
// The latency benchmarks report it per request next to wall time: on a
// machine shared with other builds, wall time counts the waits for a core.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
