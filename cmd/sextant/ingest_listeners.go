package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sextant-dev/sextant/ingest"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	traceapi "github.com/sextant-dev/sextant/tracing/api"
)

// setupIngestListeners runs the ingest listeners beside the main one:
// SpectatorD over UDP (--spectatord-listen) and a unix datagram socket
// (--spectatord-socket), with POST /api/v1/spectatord on --listen, and
// Zipkin v2 spans on --zipkin-listen.
func setupIngestListeners(n *node, g *runGroup) error {
	sd, err := ingest.NewSpectatorD(n.ing, ingest.SpectatorDOptions{
		UDPAddr:    n.cfg.SpectatorDListen,
		SocketPath: n.cfg.SpectatorDSocket,
	})
	if err != nil {
		return err
	}
	sd.Register(n.mux)
	if a := sd.UDPAddr(); a != nil {
		n.logger.Info("spectatord listening", "udp", a.String(), "socket", n.cfg.SpectatorDSocket)
	}
	g.Go("spectatord", sd.Run)

	if n.cfg.ZipkinListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.ZipkinListen)
	if err != nil {
		sd.Close()
		return fmt.Errorf("listen on %s for zipkin: %w", n.cfg.ZipkinListen, err)
	}
	mux := http.NewServeMux()
	n.ing.RegisterZipkin(mux)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.logger.Handler(), slog.LevelWarn),
	}
	n.logger.Info("zipkin listening", "addr", ln.Addr().String())
	g.Add("zipkin", func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("zipkin server: %w", err)
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return nil
}

// spanMetricsFunc answers the Jaeger Monitor tab's expressions (tracing/api
// builds them) with the query facade over the store.
func spanMetricsFunc(n *node) traceapi.SpanMetricsFunc {
	engine := query.NewEngine(n.querier(), eval.Options{})
	return func(ctx context.Context, program string, start, end, step int64) ([]traceapi.MetricLine, error) {
		styles, err := query.Parse(program, query.ParseOptions{})
		if err != nil {
			return nil, fmt.Errorf("span metrics expression %q: %w", program, err)
		}
		res, err := engine.Eval(ctx, styles, eval.Range{Start: start, End: end, Step: step})
		if err != nil {
			return nil, err
		}
		out := make([]traceapi.MetricLine, 0, len(res.Lines))
		for _, l := range res.Lines {
			out = append(out, traceapi.MetricLine{Tags: l.Tags.Map(), Start: start, Step: step, Values: l.Values})
		}
		return out, nil
	}
}
