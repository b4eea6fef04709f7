package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// vsFlags are the flags of `sextant-load vs`.
type vsFlags struct {
	sextant, cache, work string
	heap                 string // directory for Sextant's heap profiles after each load, or ""
	sizes                []size
	protocols, peers     []string
	spans, conc, batch   int
	queries, traceGets   int
	seed                 uint64
}

// parseVSFlags parses the flags of `vs`.
func parseVSFlags(args []string, stderr io.Writer) (vsFlags, error) {
	fs := flag.NewFlagSet("vs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f vsFlags
	fs.StringVar(&f.sextant, "sextant", "", "the sextant binary to run (required)")
	fs.StringVar(&f.cache, "cache", filepath.Join(os.TempDir(), "sextant-bench-vs"), "directory of the peers' binaries, built once from the Go module proxy")
	fs.StringVar(&f.heap, "heap", "", "directory to save Sextant's heap profile (inuse, with its runtime.MemStats) in right after each load (default: none)")
	fs.StringVar(&f.work, "work", "", "directory for the servers' data and the request spools (default: a new temporary directory, removed after)")
	sizes := fs.String("sizes", "100000x360,1000000x60", "metric workload sizes, SERIESxSAMPLES, comma-separated (empty: no metric runs)")
	protocols := fs.String("protocols", protoRemoteWrite+","+protoAtlas, "Sextant's metric protocols: remote-write (what VictoriaMetrics is fed too), atlas")
	peers := fs.String("peers", "victoria-metrics,jaeger", "peers to build and run: victoria-metrics, jaeger (empty: Sextant alone)")
	fs.IntVar(&f.spans, "spans", 100_000, "spans of the span runs, in requests of 1 000 (0: no span runs; Jaeger with durable writes takes about 4 ms a span here)")
	fs.IntVar(&f.conc, "c", 4, "concurrent senders")
	fs.IntVar(&f.batch, "batch", 10_000, "datapoints per metric request")
	fs.IntVar(&f.queries, "queries", 50, "timed grouped sums per API, and searches")
	fs.IntVar(&f.traceGets, "trace-gets", 200, "timed trace-by-id lookups")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the metric workload")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return f, err
		}
		return f, usageError{err}
	}
	var err error
	if f.sizes, err = parseSizes(*sizes); err != nil {
		return f, usageError{fmt.Errorf("-sizes: %w", err)}
	}
	f.protocols = splitList(*protocols)
	for _, p := range f.protocols {
		if p != protoRemoteWrite && p != protoAtlas {
			return f, usageError{fmt.Errorf("-protocols: %q is neither %s nor %s", p, protoRemoteWrite, protoAtlas)}
		}
	}
	f.peers = splitList(*peers)
	for _, p := range f.peers {
		if p != vmPeer.name && p != jaegerPeer.name {
			return f, usageError{fmt.Errorf("-peers: %q is neither %s nor %s", p, vmPeer.name, jaegerPeer.name)}
		}
	}
	switch {
	case f.sextant == "":
		return f, usageError{fmt.Errorf("-sextant: the binary to run is required")}
	case f.conc <= 0 || f.batch <= 0 || f.queries <= 0 || f.traceGets <= 0 || f.spans < 0:
		return f, usageError{fmt.Errorf("-c %d, -batch %d, -queries %d and -trace-gets %d must be positive, -spans %d not negative",
			f.conc, f.batch, f.queries, f.traceGets, f.spans)}
	case len(f.sizes) > 0 && len(f.protocols) == 0:
		return f, usageError{fmt.Errorf("-protocols: empty, but -sizes asks for metric runs")}
	}
	return f, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// vs runs the side-by-side benchmark (`make bench-vs`): for each size, the
// real Sextant binary and then VictoriaMetrics, one after the other, each
// fed the same workload, then the grouped sum timed on each; then Sextant
// and Jaeger v2 under the same OTLP span load, then trace-by-id and search
// timed on each. It prints a RESULT line per run and the tables and ratios
// of docs/benchmarks.md.
func vs(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	f, err := parseVSFlags(args, stderr)
	if err != nil {
		return err
	}
	bins := map[string]string{"sextant": f.sextant}
	for _, name := range f.peers {
		p := vmPeer
		if name == jaegerPeer.name {
			p = jaegerPeer
		}
		if p == vmPeer && len(f.sizes) == 0 || p == jaegerPeer && f.spans == 0 {
			continue // not needed: no metric runs, or no span runs
		}
		if bins[name], err = buildPeer(ctx, f.cache, p, stderr); err != nil {
			return err
		}
	}
	work := f.work
	if work == "" {
		if work, err = os.MkdirTemp("", "sextant-bench-vs-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	r := vsRunner{f: f, bins: bins, work: work, stdout: stdout, log: stderr, now: now,
		client: &http.Client{Timeout: 5 * time.Minute}}
	defer r.client.CloseIdleConnections()
	var metrics []metricsRun
	for _, sz := range f.sizes {
		runs, err := r.metrics(ctx, sz)
		metrics = append(metrics, runs...)
		if err != nil {
			return err
		}
	}
	var spans []spansRun
	if f.spans > 0 {
		if spans, err = r.spans(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout)
	writeReport(stdout, metrics, spans)
	return nil
}

// vsRunner runs the servers of one `vs` invocation.
type vsRunner struct {
	f      vsFlags
	bins   map[string]string // server name → binary
	work   string
	stdout io.Writer
	log    io.Writer
	now    func() time.Time
	client *http.Client
	runs   int // servers started, for unique directories
}

// dir returns a new directory under the work directory.
func (r *vsRunner) dir(name string) (string, error) {
	r.runs++
	d := filepath.Join(r.work, fmt.Sprintf("%02d-%s", r.runs, name))
	return d, os.MkdirAll(d, 0o755)
}

// startSextant runs the Sextant binary with --fsync batch on a new data
// directory, every listener but the HTTP one off (OTLP/HTTP is served on
// it too), accepting datapoints as old as maxAge.
func (r *vsRunner) startSextant(ctx context.Context, maxAge time.Duration) (*process, string, error) {
	dir, err := r.dir("sextant")
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--fsync", "batch",
		"--ingest-max-age", maxAge.String(), "--memory-retention", (maxAge + time.Hour).String(), "--log-level", "warn",
		"--otlp-http-listen", "", "--otlp-grpc-listen", "", "--zipkin-listen", "", "--spectatord-listen", ""}
	base := "http://" + addr
	p, err := startProcess(ctx, "sextant", r.bins["sextant"], args, filepath.Join(dir, "log"), httpReady(r.client, base+"/healthz"))
	return p, base, err
}

// startVM runs VictoriaMetrics on a new data directory with its query
// result cache off (every timed query computes its answer, as Sextant's
// do).
func (r *vsRunner) startVM(ctx context.Context) (*process, string, error) {
	dir, err := r.dir("victoria-metrics")
	if err != nil {
		return nil, "", err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"-storageDataPath", filepath.Join(dir, "data"), "-httpListenAddr", addr,
		"-retentionPeriod", "1y", "-search.disableCache", "-loggerLevel", "WARN"}
	base := "http://" + addr
	p, err := startProcess(ctx, "victoria-metrics", r.bins[vmPeer.name], args, filepath.Join(dir, "log"), httpReady(r.client, base+"/health"))
	return p, base, err
}

// startJaeger runs Jaeger v2 with jaegerConfig on a new directory and
// returns the process, its query API base and its OTLP/HTTP traces URL.
func (r *vsRunner) startJaeger(ctx context.Context) (*process, string, string, error) {
	dir, err := r.dir("jaeger")
	if err != nil {
		return nil, "", "", err
	}
	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return nil, "", "", err
		}
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(jaegerConfig(filepath.Join(dir, "badger"), addrs[0], addrs[1], addrs[2], addrs[3])), 0o644); err != nil {
		return nil, "", "", err
	}
	base := "http://" + addrs[2]
	p, err := startProcess(ctx, "jaeger", r.bins[jaegerPeer.name], []string{"--config", "file:" + cfg}, filepath.Join(dir, "log"),
		allReady(httpReady(r.client, base+"/api/services"), tcpReady(addrs[0])))
	return p, base, "http://" + addrs[0] + "/v1/traces", err
}

// metrics runs every server on one size of the workload.
func (r *vsRunner) metrics(ctx context.Context, sz size) ([]metricsRun, error) {
	wf := workloadFlags{series: sz.series, samples: sz.samples, interval: time.Minute, seed: r.f.seed}
	w, err := wf.workload(r.now)
	if err != nil {
		return nil, err
	}
	g, err := newGroupedSum(w)
	if err != nil {
		return nil, err
	}
	// Sextant takes datapoints up to --ingest-max-age old: the workload
	// starts at most an hour before its span.
	maxAge := time.Duration(w.End()-w.Start)*time.Millisecond + 2*time.Hour
	protocols := map[string]bool{}
	for _, p := range r.f.protocols {
		protocols[p] = true
	}
	if slices.Contains(r.f.peers, vmPeer.name) {
		protocols[protoRemoteWrite] = true
	}
	spools := map[string]*spool{}
	defer func() {
		for _, sp := range spools {
			sp.close()
		}
	}()
	for _, p := range []string{protoRemoteWrite, protoAtlas} {
		if !protocols[p] {
			continue
		}
		start := r.now()
		sp, err := writeSpool(ctx, filepath.Join(r.work, "spool-"+p), w, p, r.f.batch)
		if err != nil {
			return nil, err
		}
		spools[p] = sp
		fmt.Fprintf(r.log, "%s: %s spool of %d bodies, %d MiB, in %v\n", sz, p, sp.len(), sp.bytes>>20, r.now().Sub(start).Round(time.Second))
	}
	w = nil
	debug.FreeOSMemory()

	var runs []metricsRun
	for _, p := range r.f.protocols {
		proc, base, err := r.startSextant(ctx, maxAge)
		if err != nil {
			return runs, err
		}
		run, err := r.metricsRun(ctx, "sextant", p, sz, proc, base, spools[p], g, true)
		proc.stop()
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	if slices.Contains(r.f.peers, vmPeer.name) {
		proc, base, err := r.startVM(ctx)
		if err != nil {
			return runs, err
		}
		run, err := r.metricsRun(ctx, "victoria-metrics", protoRemoteWrite, sz, proc, base, spools[protoRemoteWrite], g, false)
		proc.stop()
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// metricsRun feeds one server and times its grouped sum.
func (r *vsRunner) metricsRun(ctx context.Context, server, protocol string, sz size, proc *process, base string, sp *spool, g groupedSum, graph bool) (metricsRun, error) {
	run := metricsRun{server: server, protocol: protocol, size: sz, series: g.series}
	fmt.Fprintf(r.log, "%s: feeding %s over %s\n", sz, server, protocol)
	var err error
	if run.load, err = sendSpool(ctx, sp, targetFor(base, protocol), r.f.conc, proc.pid(), r.now); err != nil {
		return run, fmt.Errorf("%s %s %s: %w", server, protocol, sz, err)
	}
	if graph && r.f.heap != "" {
		if err := r.saveHeap(ctx, base, fmt.Sprintf("%s-%s-%s", server, protocol, sz)); err != nil {
			return run, fmt.Errorf("%s %s %s: %w", server, protocol, sz, err)
		}
	}
	promURL := base + "/api/v1/query_range?" + g.promQ.Encode()
	if server == vmPeer.name {
		promURL += "&nocache=1"
	}
	// Data just acknowledged may take a moment to be searchable
	// (VictoriaMetrics flushes its buffers every second or so): wait for a
	// complete answer before timing.
	if err := r.waitComplete(ctx, promURL, g.checkProm); err != nil {
		return run, fmt.Errorf("%s %s: %w", server, sz, err)
	}
	urls := slices.Repeat([]string{promURL}, r.f.queries)
	if run.prom, err = timeGets(ctx, r.client, urls, g.checkProm, r.now); err != nil {
		return run, fmt.Errorf("%s %s: %w", server, sz, err)
	}
	if graph {
		urls := slices.Repeat([]string{base + "/api/v1/graph?" + g.graphQ.Encode()}, r.f.queries)
		if run.graph, err = timeGets(ctx, r.client, urls, g.checkGraph, r.now); err != nil {
			return run, fmt.Errorf("%s %s: %w", server, sz, err)
		}
	}
	fmt.Fprintf(r.stdout, "RESULT vs: server=%s protocol=%s size=%s datapoints=%d requests=%d seconds=%.2f datapoints/s=%.0f server-cpu-s=%.2f datapoints/server-cpu-s=%.0f server-rss-MiB=%d rss-per-series-KiB=%.2f grouped-sum-series=%d prom-p50-ms=%s prom-p99-ms=%s graph-p50-ms=%s graph-p99-ms=%s\n",
		server, protocol, sz, run.load.items, run.load.requests, run.load.wall, run.load.perWall(), run.load.cpu, run.load.perCPU(),
		run.load.rss>>20, run.rssPerSeries()/1024, run.series, ms(run.prom.p50), ms(run.prom.p99), ms(run.graph.p50), ms(run.graph.p99))
	return run, nil
}

// waitComplete gets url until its answer passes check, for up to 30 s.
func (r *vsRunner) waitComplete(ctx context.Context, url string, check func([]byte) error) error {
	deadline := r.now().Add(30 * time.Second)
	for {
		_, err := timeGets(ctx, r.client, []string{url}, check, r.now)
		if err == nil || r.now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// spans runs Sextant and then Jaeger under the span workload.
func (r *vsRunner) spans(ctx context.Context) ([]spansRun, error) {
	start := r.now()
	sw, err := newSpanWorkload(r.f.spans, start, time.Hour)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.log, "spans: %d requests encoded in %v\n", len(sw.bodies), r.now().Sub(start).Round(time.Second))
	var runs []spansRun
	{
		proc, base, err := r.startSextant(ctx, 2*time.Hour)
		if err != nil {
			return nil, err
		}
		run, err := r.spansRun(ctx, "sextant", proc, base, base+"/v1/traces", sw)
		proc.stop()
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	if slices.Contains(r.f.peers, jaegerPeer.name) {
		proc, base, otlp, err := r.startJaeger(ctx)
		if err != nil {
			return runs, err
		}
		run, err := r.spansRun(ctx, "jaeger", proc, base, otlp, sw)
		proc.stop()
		if err != nil {
			return runs, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// spansRun feeds one server the spans and times trace-by-id and search.
func (r *vsRunner) spansRun(ctx context.Context, server string, proc *process, base, otlp string, sw *spanWorkload) (spansRun, error) {
	run := spansRun{server: server, traces: len(sw.bodies) * 100, sample: r.f.traceGets}
	fmt.Fprintf(r.log, "spans: feeding %s\n", server)
	var err error
	if run.load, err = sw.send(ctx, otlp, r.f.conc, proc.pid(), r.now); err != nil {
		return run, fmt.Errorf("%s spans: %w", server, err)
	}
	search := sw.searchURL(base)
	if err := r.waitComplete(ctx, search, checkSearch); err != nil {
		return run, fmt.Errorf("%s: %w", server, err)
	}
	if run.byID, err = timeGets(ctx, r.client, sw.traceURLs(base, r.f.traceGets), checkTrace, r.now); err != nil {
		return run, fmt.Errorf("%s: %w", server, err)
	}
	if run.search, err = timeGets(ctx, r.client, slices.Repeat([]string{search}, r.f.queries), checkSearch, r.now); err != nil {
		return run, fmt.Errorf("%s: %w", server, err)
	}
	fmt.Fprintf(r.stdout, "RESULT vs: server=%s spans=%d requests=%d seconds=%.2f spans/s=%.0f server-cpu-s=%.2f spans/server-cpu-s=%.0f server-rss-MiB=%d trace-p50-ms=%s trace-p99-ms=%s search-p50-ms=%s search-p99-ms=%s\n",
		server, run.load.items, run.load.requests, run.load.wall, run.load.perWall(), run.load.cpu, run.load.perCPU(),
		run.load.rss>>20, ms(run.byID.p50), ms(run.byID.p99), ms(run.search.p50), ms(run.search.p99))
	return run, nil
}

// saveHeap saves the server's heap profile (/debug/pprof/heap, what
// `go tool pprof -sample_index=inuse_space` reads) and its text form
// with the runtime's MemStats (?debug=1) into the -heap directory as
// name.heap.pb.gz and name.heap.txt. It forces no collection: the
// profile is the heap as the RSS figure saw it.
func (r *vsRunner) saveHeap(ctx context.Context, base, name string) error {
	if err := os.MkdirAll(r.f.heap, 0o755); err != nil {
		return err
	}
	for suffix, query := range map[string]string{".heap.pb.gz": "", ".heap.txt": "?debug=1"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/heap"+query, nil)
		if err != nil {
			return err
		}
		resp, err := r.client.Do(req)
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		if err := os.WriteFile(filepath.Join(r.f.heap, name+suffix), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}
