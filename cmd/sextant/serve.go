package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/lib"
	queryapi "github.com/sextant-dev/sextant/query/api"
	traceapi "github.com/sextant-dev/sextant/tracing/api"
	"github.com/sextant-dev/sextant/tracing/spanstore"
	"github.com/sextant-dev/sextant/tsdb/db"
)

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 10 * time.Second

// serve runs Sextant until ctx ends, then shuts down gracefully: stop
// accepting, finish in-flight requests, flush and close the store. When
// ready is set, serve sends the bound HTTP address on it once it accepts.
func serve(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) (err error) {
	reg := lib.NewRegistry(lib.RegistryOptions{Logger: logger})
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	store, err := db.Open(cfg.DataDir, db.Options{
		Step:            ms(cfg.Step),
		MemoryRetention: ms(cfg.MemoryRetention),
		Retention:       ms(cfg.Retention),
		IngestMaxAge:    ms(cfg.IngestMaxAge),
		Fsync:           cfg.Fsync,
		MaxSeries:       cfg.MaxSeries,
		Logger:          logger.With("component", "tsdb"),
		Registry:        reg,
		// --max-series-per-name
		MaxSeriesPerName: cfg.MaxSeriesByName,
	})
	if err != nil {
		return fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
		logger.Info("store closed")
	}()

	maxTraceBytes := cfg.TraceMaxBytes
	if maxTraceBytes == 0 {
		maxTraceBytes = -1 // no cap
	}
	spans, err := spanstore.Open(filepath.Join(cfg.DataDir, "traces"), spanstore.Options{
		Retention: cfg.TraceRetention,
		MaxBytes:  maxTraceBytes,
		Logger:    logger.With("component", "spanstore"),
		Registry:  reg,
	})
	if err != nil {
		return fmt.Errorf("open span store in %s: %w", cfg.DataDir, err)
	}
	defer func() {
		if cerr := spans.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close span store: %w", cerr)
		}
	}()

	ing, err := ingest.New(ingest.Options{
		Appender:  store,
		Traces:    spans,
		Exemplars: spans,
		// One store append per second for span metrics, not per request.
		SpanMetricsInterval: time.Second,
		Step:                ms(cfg.Step),
		Logger:              logger.With("component", "ingest"),
		Registry:            reg,
	})
	if err != nil {
		return err
	}

	queries, err := queryapi.New(queryapi.Options{
		Exemplars: func(ctx context.Context, start, end int64) ([]queryapi.Exemplar, error) {
			exs, err := spans.Exemplars(ctx, start, end)
			out := make([]queryapi.Exemplar, len(exs))
			for i, e := range exs {
				out[i] = queryapi.Exemplar{Tags: e.Tags, T: e.T, TraceID: e.TraceID.String(), SpanID: e.SpanID.String(), Duration: e.Duration}
			}
			return out, err
		},
		Querier:     store,
		StorageStep: ms(cfg.Step),
		Logger:      logger.With("component", "query"),
		Registry:    reg,
	})
	if err != nil {
		return err
	}

	traceAPI, err := traceapi.New(traceapi.Options{
		Reader: spans, Catalog: spans, Dependencies: spans,
		Logger: logger.With("component", "traces"), Registry: reg,
	})
	if err != nil {
		return err
	}

	var up atomic.Bool
	mux := http.NewServeMux()
	ing.Register(mux)
	queries.Register(mux)
	traceAPI.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		if err := store.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	// Go's profiler, as Prometheus and most Go servers expose it.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := reg.WritePrometheus(w); err != nil {
			logger.Warn("write /metrics", "err", err)
		}
	})

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	var servers []*http.Server
	serveHTTP := func(addr, what string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listen on %s for %s: %w", addr, what, err)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		servers = append(servers, srv)
		wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s server: %w", what, err)
			}
		})
		return ln.Addr().String(), nil
	}
	// On a start error, stop what was started before returning.
	var grpcSrv *grpc.Server
	defer func() {
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			if grpcSrv != nil {
				grpcSrv.Stop()
			}
			wg.Wait()
		}
	}()
	addr, err := serveHTTP(cfg.Listen, "http", withAccess(cfg.AuthToken, nil, mux))
	if err != nil {
		return err
	}
	otlpHTTPAddr, otlpGRPCAddr := "", ""
	if cfg.OTLPHTTPListen != "" {
		otlpMux := http.NewServeMux()
		ing.RegisterOTLP(otlpMux)
		if otlpHTTPAddr, err = serveHTTP(cfg.OTLPHTTPListen, "otlp/http", withAccess(cfg.AuthToken, nil, otlpMux)); err != nil {
			return err
		}
	}
	if cfg.OTLPGRPCListen != "" {
		ln, err := net.Listen("tcp", cfg.OTLPGRPCListen)
		if err != nil {
			return fmt.Errorf("listen on %s for otlp/grpc: %w", cfg.OTLPGRPCListen, err)
		}
		otlpGRPCAddr = ln.Addr().String()
		grpcSrv = grpc.NewServer(append(ing.GRPCServerOptions(), grpcAuth(cfg.AuthToken)...)...)
		ing.RegisterGRPC(grpcSrv)
		wg.Go(func() {
			if err := grpcSrv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("otlp/grpc server: %w", err)
			}
		})
	}
	pubCtx, stopPub := context.WithCancel(context.Background())
	wg.Go(func() { publishSelf(pubCtx, reg, store, cfg.Step, logger) })
	wg.Go(func() { ing.Run(pubCtx) })

	up.Store(true)
	logger.Info("sextant ready", "listen", addr, "otlp_http", otlpHTTPAddr, "otlp_grpc", otlpGRPCAddr,
		"data_dir", cfg.DataDir, "step", cfg.Step, "fsync", cfg.Fsync.String())
	if ready != nil {
		ready <- addr
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-errc:
	}
	up.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	for _, srv := range servers {
		swg.Go(func() {
			if serr := srv.Shutdown(sctx); serr != nil {
				logger.Warn("shut down http server", "err", serr)
			}
		})
	}
	if grpcSrv != nil {
		swg.Go(func() {
			done := make(chan struct{})
			go func() { grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-sctx.Done():
				grpcSrv.Stop()
			}
		})
	}
	swg.Wait()
	stopPub()
	wg.Wait()
	return err
}

// publishSelf stores Sextant's own meters in Sextant every step, under
// nf.app=sextant, so they can be graphed with the stack language.
func publishSelf(ctx context.Context, reg *lib.Registry, store *db.DB, step time.Duration, logger *slog.Logger) {
	node, _ := os.Hostname()
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
