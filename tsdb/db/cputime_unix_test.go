//go:build unix

package db

import "syscall"

// cpuTime returns the process's user and system CPU time in nanoseconds.
// Benchmarks report it next to wall time: on a machine shared with other
// builds, wall time counts the time the benchmark waited for a core.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
