package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/ingest/cluster"
	"github.com/sextant-dev/sextant/lib"
	queryapi "github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/query/live"
	traceapi "github.com/sextant-dev/sextant/tracing/api"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/db"
	"github.com/sextant-dev/sextant/ui"
)

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 10 * time.Second

// node is one running Sextant: its settings, stores and routes. The
// components of serve's list fill in its handlers and add their actors to
// the run group; later components see what earlier ones set.
type node struct {
	cfg    config
	logger *slog.Logger
	reg    *lib.Registry

	store *db.DB
	spans *spanstore.Store
	ing   *ingest.Handler
	live  *live.Evaluator // the live evaluator (streaming, alert rules)
	// clusterLog is the cluster log's producer and consumer (cluster.go);
	// nil on a single node.
	clusterLog *clusterLog

	// Cluster mode (cluster_member.go): members is the membership (nil
	// without --kafka-brokers); clusterProgress, set by the store
	// consumer's component, reports how far it applied each partition.
	members         *cluster.Membership
	clusterProgress func() []cluster.Applied
	// readiness are extra checks of /healthz: each nil when ready.
	readiness []func() error
	// httpAddr is the bound --listen address, set before the actors run.
	httpAddr string
	// cluster is the read side of cluster mode (cluster_query.go).
	cluster clusterReads
	// state is the cluster's shared state (cluster_state.go); nil on a
	// single node.
	state *clusterState

	// middleware wraps the --listen handler, the first outermost (CORS
	// of --allowed-origins, ...).
	middleware []func(http.Handler) http.Handler

	// onShutdown runs when shutdown starts, before the listeners drain
	// (long-lived streams end here rather than hold the drain up).
	onShutdown []func()

	// mux holds the routes of --listen, otlpMux those of
	// --otlp-http-listen; grpc the services of --otlp-grpc-listen.
	mux     *http.ServeMux
	otlpMux *http.ServeMux
	grpc    *grpc.Server
}

// component builds one part of a node: it registers its routes and adds
// its goroutines to g (as a run/interrupt pair or g.Go).
type component func(n *node, g *runGroup) error

// components are the parts of a node in the order they are built; one
// line each. Their actors stop in reverse order, after the listeners.
var components = []component{
	setupClusterMember,
	setupCluster,
	setupClusterState, // cluster_state.go
	setupIngest,
	setupIngestListeners,
	setupClusterQuery,
	setupQuery,
	setupLive,
	setupTraces,
	setupSelfMetrics,
	setupAlerting,
	setupUI,
	setupCanary,
	setupMemoryTrim, // memory.go
}

// serve runs Sextant until ctx ends, then shuts down gracefully: stop
// accepting, finish in-flight requests, stop the components, flush and
// close the stores. When ready is set, serve sends the bound HTTP address
// on it once everything runs.
func serve(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	return serveNode(ctx, cfg, logger, ready, nil)
}

// serveNode is serve; prepare, when set, sees the node before its
// components are built (in-process cluster tests set its cluster wiring).
func serveNode(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string, prepare func(*node)) (err error) {
	n := &node{cfg: cfg, logger: logger, mux: http.NewServeMux(), otlpMux: http.NewServeMux()}
	n.reg = lib.NewRegistry(lib.RegistryOptions{Logger: logger})
	if err := n.openStores(); err != nil {
		return err
	}
	defer func() {
		if cerr := n.closeStores(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	if prepare != nil {
		prepare(n)
	}
	var g runGroup
	for _, setup := range components {
		if err := setup(n, &g); err != nil {
			return err
		}
	}
	var up atomic.Bool
	n.registerOps(&up)
	addrs, err := n.listen(&g)
	if err != nil {
		return err
	}
	n.httpAddr = addrs[0]
	// The signal (or the caller's cancel) ends the group like any actor.
	g.Add("signal", func() error {
		<-ctx.Done()
		logger.Info("shutting down")
		up.Store(false)
		for _, f := range n.onShutdown {
			f()
		}
		return nil
	}, func(error) {})
	return g.Run(func() {
		up.Store(true)
		logger.Info("sextant ready", "listen", addrs[0], "otlp_http", addrs[1], "otlp_grpc", addrs[2],
			"data_dir", cfg.DataDir, "step", cfg.Step, "fsync", cfg.Fsync.String())
		if ready != nil {
			ready <- addrs[0]
		}
	})
}

// ms converts a duration to the store's milliseconds.
func ms(d time.Duration) int64 { return d.Milliseconds() }

// openStores opens the time-series store and the span store.
func (n *node) openStores() (err error) {
	cfg := n.cfg
	n.store, err = db.Open(cfg.DataDir, db.Options{
		Step:            ms(cfg.Step),
		MemoryRetention: ms(cfg.MemoryRetention),
		Retention:       ms(cfg.Retention),
		IngestMaxAge:    ms(cfg.IngestMaxAge),
		Fsync:           cfg.Fsync,
		MaxSeries:       cfg.MaxSeries,
		Logger:          n.logger.With("component", "tsdb"),
		Registry:        n.reg,
		// --max-series-per-name
		MaxSeriesPerName: cfg.MaxSeriesByName,
		Marks:            cfg.Cluster.storeMarks(), // cluster.go
		// --max-series-per-query, --max-datapoints-per-query, --max-bytes-per-query
		MaxSeriesPerQuery: cfg.QueryLimits.Series, MaxDatapointsPerQuery: cfg.QueryLimits.Datapoints, MaxBytesPerQuery: cfg.QueryLimits.Bytes,
	})
	if err != nil {
		return fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	maxTraceBytes := cfg.TraceMaxBytes
	if maxTraceBytes == 0 {
		maxTraceBytes = -1 // no cap
	}
	n.spans, err = spanstore.Open(filepath.Join(cfg.DataDir, "traces"), spanstore.Options{
		Retention: cfg.TraceRetention,
		MaxBytes:  maxTraceBytes,
		Logger:    n.logger.With("component", "spanstore"),
		Registry:  n.reg,
	})
	if err != nil {
		n.store.Close()
		return fmt.Errorf("open span store in %s: %w", cfg.DataDir, err)
	}
	// A span store that failed (a disk fault, corruption found) makes the
	// node unready, as a failed time-series store does.
	n.readiness = append(n.readiness, n.spans.Err)
	return nil
}

// closeStores closes the span store, then the time-series store.
func (n *node) closeStores() error {
	err := n.spans.Close()
	if err != nil {
		err = fmt.Errorf("close span store: %w", err)
	}
	if serr := n.store.Close(); serr != nil && err == nil {
		err = fmt.Errorf("close store: %w", serr)
	}
	n.logger.Info("store closed")
	return err
}

// setupIngest serves the ingest protocols and runs span metrics.
func setupIngest(n *node, g *runGroup) error {
	ing, err := ingest.New(ingest.Options{
		Appender:  n.appender(),
		Traces:    n.traceWriter(),
		Exemplars: n.exemplarWriter(),
		// One store append per second for span metrics, not per request.
		SpanMetricsInterval: time.Second,
		Step:                ms(n.cfg.Step),
		Logger:              n.logger.With("component", "ingest"),
		Registry:            n.reg,
	})
	if err != nil {
		return err
	}
	n.ing = ing
	ing.Register(n.mux)
	ing.RegisterOTLP(n.otlpMux)
	g.Go("ingest", func(ctx context.Context) error { ing.Run(ctx); return nil })
	return nil
}

// setupQuery serves the graph, tags, expression and exemplar APIs.
func setupQuery(n *node, _ *runGroup) error {
	queries, err := queryapi.New(queryapi.Options{
		Exemplars:   n.exemplarSource(),
		Querier:     n.querier(),
		StorageStep: ms(n.cfg.Step),
		Logger:      n.logger.With("component", "query"),
		Registry:    n.reg,
	})
	if err != nil {
		return err
	}
	queries.Register(n.mux)
	return nil
}

// setupTraces serves the Jaeger query API.
func setupTraces(n *node, _ *runGroup) error {
	src := n.traceSource()
	traceAPI, err := traceapi.New(traceapi.Options{
		Reader: src, Catalog: src, Dependencies: src,
		SpanMetrics: spanMetricsFunc(n), MinStep: n.cfg.Step,
		Logger: n.logger.With("component", "traces"), Registry: n.reg,
	})
	if err != nil {
		return err
	}
	traceAPI.Register(n.mux)
	return nil
}

// setupSelfMetrics stores Sextant's own meters in Sextant every step.
func setupSelfMetrics(n *node, g *runGroup) error {
	g.Go("self-metrics", func(ctx context.Context) error {
		publishSelf(ctx, n.reg, n.selfAppender(), n.selfNode(), n.cfg.Step, n.logger)
		return nil
	})
	return nil
}

// registerOps serves /healthz, /metrics and Go's profiler.
func (n *node) registerOps(up *atomic.Bool) {
	n.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := n.store.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		for _, ready := range n.readiness {
			if err := ready(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	// Go's profiler, as Prometheus and most Go servers expose it.
	n.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	n.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	n.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	n.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	n.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := n.reg.WritePrometheus(w); err != nil {
			n.logger.Warn("write /metrics", "err", err)
		}
	})
}

// listen binds every listener and adds a server actor for each; it answers
// the bound addresses of HTTP, OTLP/HTTP and OTLP/gRPC ("" when disabled).
// On an error, what was bound is closed again.
func (n *node) listen(g *runGroup) (addrs [3]string, err error) {
	var lns []net.Listener
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	bind := func(addr, what string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s for %s: %w", addr, what, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	serveHTTP := func(ln net.Listener, what string, h http.Handler) {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
		}
		g.Add(what, func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", what, err)
			}
			return nil
		}, func(error) {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				n.logger.Warn("shut down server", "server", what, "err", err)
			}
		})
	}

	ln, err := bind(n.cfg.Listen, "http")
	if err != nil {
		return addrs, err
	}
	addrs[0] = ln.Addr().String()
	serveHTTP(ln, "http", n.httpHandler(withAccess(n.cfg.AuthToken, splitList(n.cfg.AllowedOrigins), ui.Public)))
	if n.cfg.OTLPHTTPListen != "" {
		ln, err := bind(n.cfg.OTLPHTTPListen, "otlp/http")
		if err != nil {
			return addrs, err
		}
		addrs[1] = ln.Addr().String()
		serveHTTP(ln, "otlp/http", withAccess(n.cfg.AuthToken, nil, nil)(n.otlpMux))
	}
	if n.cfg.OTLPGRPCListen != "" {
		ln, err := bind(n.cfg.OTLPGRPCListen, "otlp/grpc")
		if err != nil {
			return addrs, err
		}
		addrs[2] = ln.Addr().String()
		n.grpc = grpc.NewServer(append(n.ing.GRPCServerOptions(), grpcAuth(n.cfg.AuthToken)...)...)
		n.ing.RegisterGRPC(n.grpc)
		g.Add("otlp/grpc", func() error {
			if err := n.grpc.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return fmt.Errorf("otlp/grpc server: %w", err)
			}
			return nil
		}, func(error) {
			done := make(chan struct{})
			go func() { n.grpc.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(shutdownTimeout):
				n.grpc.Stop()
				<-done
			}
		})
	}
	return addrs, nil
}

// publishSelf stores Sextant's own meters in Sextant every step, under
// nf.app=sextant, so they can be graphed with the stack language.
func publishSelf(ctx context.Context, reg *lib.Registry, store tsdb.Appender, node string, step time.Duration, logger *slog.Logger) {
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b := selfBatch(reg.Measure(step), now.UnixMilli(), node)
			if err := store.Append(ctx, b); err != nil && ctx.Err() == nil {
				logger.Warn("store self-metrics", "err", err)
			}
		}
	}
}
