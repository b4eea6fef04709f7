// Command sextant-load generates the project's standard workload
// (tsdbtest.NewWorkload: counters, random-walk gauges, constants and,
// with -sparse, sparse series) and writes it to a file or sends it to a
// server over the Atlas publish API, for the end-to-end figures of
// docs/benchmarks.md.
//
//	sextant-load gen  [workload flags] [-format atlas|jsonl] [-batch N] [-o FILE]
//	sextant-load send [workload flags] -url URL [-c 4] [-batch N] [-gzip] [-pid PID]
//	sextant-load vs   -sextant BIN [-sizes 100000x360,1000000x60] [-spans N] [-peers ...] [-protocols ...]
//
// Workload flags: -series (100000), -samples (360), -interval (60s),
// -start-ms (default: the hour boundary that ends the workload just before
// now), -seed, -sparse N (one series in N reports only in bursts).
//
// gen -format atlas writes one publish body per line, time-major in batches
// of -batch datapoints; -format jsonl writes one series per line,
// {"tags":{...},"timestamps":[...],"values":[...]}, absent samples left out.
//
// send builds every body in memory before its clock starts (so generating
// does not compete with the server for CPU), posts them with -c concurrent
// clients, and prints one line starting "RESULT send:" with datapoints per
// second, errors and bytes; with -pid it adds the server's CPU seconds over
// the run, datapoints per server CPU-second and the server's RSS (Linux
// /proc). A non-2xx answer counts as an error; any error makes the exit
// status 1. With -c above 1, bodies of neighbouring steps may reach the
// server out of order, as they do from many clients.
//
// vs is the side-by-side benchmark of `make bench-vs` (docs/benchmarks.md,
// "Side by side"): it builds VictoriaMetrics and Jaeger v2 from the Go
// module proxy into -cache, then, one server after the other, feeds the
// real Sextant binary (--fsync batch) and VictoriaMetrics the same metric
// workload over HTTP and times the grouped sum on each, feeds Sextant and
// Jaeger (Badger, durable writes) the same OTLP spans and times trace by
// id and search, and prints the figures and their ratios.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	os.Exit(code)
}

// run executes one subcommand and returns the exit status: 0 on success, 1
// when the work failed, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: sextant-load gen|send|vs [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "gen":
		err = gen(args[1:], stdout, stderr, now)
	case "send":
		err = send(ctx, args[1:], stdout, stderr, now)
	case "vs":
		err = vs(ctx, args[1:], stdout, stderr, now)
	default:
		fmt.Fprintf(stderr, "sextant-load: unknown command %q (want gen, send or vs)\n", args[0])
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "sextant-load:", err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "sextant-load:", err)
		return 1
	}
	return 0
}

// usageError is a bad flag or argument.
type usageError struct{ error }

// workloadFlags are the flags that shape the workload, shared by gen and send.
type workloadFlags struct {
	series, samples, sparse int
	interval                time.Duration
	startMs                 int64
	seed                    uint64
}

func (f *workloadFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.series, "series", 100_000, "number of series")
	fs.IntVar(&f.samples, "samples", 360, "samples per series")
	fs.DurationVar(&f.interval, "interval", time.Minute, "time between samples")
	fs.Int64Var(&f.startMs, "start-ms", 0, "timestamp of the first sample, Unix ms (default: end just before now, hour-aligned)")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the values and node names")
	fs.IntVar(&f.sparse, "sparse", 0, "make one series in N sparse (0: none)")
}

// workload generates the workload the flags describe.
func (f *workloadFlags) workload(now func() time.Time) (*tsdbtest.Workload, error) {
	if f.series <= 0 || f.samples <= 0 || f.interval < time.Millisecond {
		return nil, usageError{fmt.Errorf("-series %d, -samples %d and -interval %s must be positive", f.series, f.samples, f.interval)}
	}
	start := f.startMs
	if start == 0 {
		// The last sample lands before now, and the start on an hour
		// boundary so that the workload fills whole blocks.
		const hour = int64(time.Hour / time.Millisecond)
		span := int64(f.samples) * f.interval.Milliseconds()
		start = (now().UnixMilli() - span) / hour * hour
	}
	return tsdbtest.NewWorkload(tsdbtest.WorkloadOptions{
		Series: f.series, Samples: f.samples, Start: start, Interval: f.interval.Milliseconds(),
		Seed: f.seed, Sparse: f.sparse,
	}), nil
}

// bodies returns the workload as Atlas publish bodies of at most batch
// datapoints each, time-major: every series' sample t before any sample
// t+1, as clients publish.
func bodies(w *tsdbtest.Workload, batch int) [][]byte {
	var out [][]byte
	for t := range w.Samples() {
		for from := 0; from < len(w.Series); from += batch {
			out = append(out, w.AppendAtlas(nil, t, from, min(from+batch, len(w.Series))))
		}
	}
	return out
}
