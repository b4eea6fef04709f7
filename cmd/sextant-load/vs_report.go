package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The pure parts of `sextant-load vs`: sizes, latency percentiles, the
// figures of one run and the ratios between Sextant and its peers. They
// hold no process or network state, so the unit tests cover them alone.

// size is one workload size of the metric runs.
type size struct{ series, samples int }

func (s size) String() string { return strconv.Itoa(s.series) + "x" + strconv.Itoa(s.samples) }

// parseSizes parses a comma-separated list of SERIESxSAMPLES, such as
// "100000x360,1000000x60". Underscores in the numbers are allowed.
func parseSizes(s string) ([]size, error) {
	var out []size
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, b, ok := strings.Cut(f, "x")
		if !ok {
			return nil, fmt.Errorf("size %q: want SERIESxSAMPLES", f)
		}
		n, err1 := strconv.Atoi(strings.ReplaceAll(a, "_", ""))
		m, err2 := strconv.Atoi(strings.ReplaceAll(b, "_", ""))
		if err1 != nil || err2 != nil || n <= 0 || m <= 0 {
			return nil, fmt.Errorf("size %q: series and samples must be positive integers", f)
		}
		out = append(out, size{n, m})
	}
	return out, nil
}

// latency is the distribution of one kind of request's latency.
type latency struct {
	n        int
	p50, p99 time.Duration
}

// summarize returns the percentiles of d (nearest rank below; d is
// sorted in place).
func summarize(d []time.Duration) latency {
	if len(d) == 0 {
		return latency{}
	}
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	return latency{n: len(d), p50: at(0.5), p99: at(0.99)}
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

// load is what one load run measured: the datapoints or spans sent,
// the wall time, the server's CPU seconds over the run and its RSS right
// after.
type load struct {
	items    int     // datapoints or spans
	requests int     // requests sent
	errors   int     // requests that failed
	wall     float64 // seconds
	cpu      float64 // server CPU seconds (user+system)
	rss      int64   // server resident bytes after the load
}

// perCPU is the items per server CPU-second.
func (l load) perCPU() float64 {
	if l.cpu <= 0 {
		return 0
	}
	return float64(l.items) / l.cpu
}

// perWall is the items per second of wall time.
func (l load) perWall() float64 {
	if l.wall <= 0 {
		return 0
	}
	return float64(l.items) / l.wall
}

// metricsRun is one server fed one size of the workload over one protocol.
type metricsRun struct {
	server, protocol string
	size             size
	load             load
	// Grouped-sum latencies: graph is Sextant's graph API (zero for a
	// peer), prom the Prometheus query_range API.
	graph, prom latency
	series      int // series the grouped sum reads
}

// rssPerSeries is the server's RSS after the load per series held.
func (r metricsRun) rssPerSeries() float64 { return float64(r.load.rss) / float64(r.size.series) }

// spansRun is one server fed the span workload.
type spansRun struct {
	server         string
	load           load
	byID, search   latency
	traces, sample int // traces sent, trace ids looked up
}

// ratio returns a/b, or NaN-free 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// writeReport writes the runs as Markdown tables followed by the ratios of
// each Sextant run to the peer run of the same size, with the targets of
// issue 18 next to them.
func writeReport(w io.Writer, metrics []metricsRun, spans []spansRun) {
	if len(metrics) > 0 {
		fmt.Fprintln(w, "| server | protocol | size | datapoints/s (wall) | server CPU-s | datapoints per CPU-second | RSS after load | RSS per series | grouped sum p50 / p99 (graph API) | grouped sum p50 / p99 (query_range) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
		for _, r := range metrics {
			graph := "–"
			if r.graph.n > 0 {
				graph = ms(r.graph.p50) + " / " + ms(r.graph.p99) + " ms"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.1f | **%.0f** | %d MiB | **%.2f KiB** | %s | **%s** / %s ms |\n",
				r.server, r.protocol, r.size, r.load.perWall(), r.load.cpu, r.load.perCPU(), r.load.rss>>20,
				r.rssPerSeries()/1024, graph, ms(r.prom.p50), ms(r.prom.p99))
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| size | Sextant protocol | ingest per CPU-second (target ≥ 1.5) | RSS per series (target ≤ 0.6) | grouped sum p50, query_range (target ≤ 0.2) | grouped sum p50, graph API (target ≤ 0.2) |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, r := range metrics {
			if r.server != "sextant" {
				continue
			}
			peer, ok := findPeer(metrics, r.size)
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | **%.2f×** | **%.2f×** | **%.2f×** | %.2f× |\n", r.size, r.protocol,
				ratio(r.load.perCPU(), peer.load.perCPU()), ratio(r.rssPerSeries(), peer.rssPerSeries()),
				ratio(float64(r.prom.p50), float64(peer.prom.p50)), ratio(float64(r.graph.p50), float64(peer.prom.p50)))
		}
		fmt.Fprintln(w)
	}
	if len(spans) > 0 {
		fmt.Fprintln(w, "| server | spans/s (wall) | server CPU-s | spans per CPU-second | RSS after load | trace by id p50 / p99 | search p50 / p99 |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range spans {
			fmt.Fprintf(w, "| %s | %.0f | %.1f | **%.0f** | %d MiB | **%s** / %s ms | **%s** / %s ms |\n",
				r.server, r.load.perWall(), r.load.cpu, r.load.perCPU(), r.load.rss>>20,
				ms(r.byID.p50), ms(r.byID.p99), ms(r.search.p50), ms(r.search.p99))
		}
		var sx, peer *spansRun
		for i := range spans {
			if spans[i].server == "sextant" {
				sx = &spans[i]
			} else {
				peer = &spans[i]
			}
		}
		if sx != nil && peer != nil {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| spans per CPU-second (target ≥ 2) | trace by id p50 (target < 1) | search p50 (target < 1) |")
			fmt.Fprintln(w, "|---|---|---|")
			fmt.Fprintf(w, "| **%.2f×** | **%.2f×** | **%.2f×** |\n", ratio(sx.load.perCPU(), peer.load.perCPU()),
				ratio(float64(sx.byID.p50), float64(peer.byID.p50)), ratio(float64(sx.search.p50), float64(peer.search.p50)))
		}
		fmt.Fprintln(w)
	}
}

// findPeer returns the first run of another server at size s.
func findPeer(runs []metricsRun, s size) (metricsRun, bool) {
	for _, r := range runs {
		if r.server != "sextant" && r.size == s {
			return r, true
		}
	}
	return metricsRun{}, false
}
