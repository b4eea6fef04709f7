package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/lib/trace"
)

// service is one demo service: its own registry and publisher (nf.app is
// the service name), its own tracer provider (service.name), an HTTP
// server behind lib/trace's middleware and a client behind its transport.
type service struct {
	name   string
	log    *slog.Logger
	reg    *lib.Registry
	pub    *lib.Publisher
	tp     *sdktrace.TracerProvider // nil when trace export is off
	tracer oteltrace.Tracer
	client *http.Client
	mux    *http.ServeMux
	srv    *http.Server
	addr   string // host:port it listens on

	mu  sync.Mutex
	rnd *rand.Rand

	// A canary version (canary.go): latencies scaled by slowdown (0 = 1)
	// and extraErrors added to the playback failure rate.
	slowdown, extraErrors float64
}

func newService(ctx context.Context, name string, cfg config, logger *slog.Logger) (*service, error) {
	return newServiceTagged(ctx, name, cfg, logger, nil)
}

// newServiceTagged is newService with extra common tags (nf.cluster and
// the version of a canary), which also name its node.
func newServiceTagged(ctx context.Context, name string, cfg config, logger *slog.Logger, extra map[string]string) (*service, error) {
	common := map[string]string{"nf.app": name, "nf.node": name + "-1", "nf.region": "us-east-1", "nf.stack": "demo"}
	for k, v := range extra {
		common[k] = v
	}
	if c := extra["nf.cluster"]; c != "" {
		common["nf.node"] = c + "-1"
	}
	s := &service{
		name: name,
		log:  logger.With("service", name),
		reg:  lib.NewRegistry(lib.RegistryOptions{Logger: logger}),
		mux:  http.NewServeMux(),
		rnd:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	pub, err := lib.NewPublisher(s.reg, lib.PublisherOptions{
		URI:        strings.TrimSuffix(cfg.Sextant, "/") + "/api/v1/publish",
		Step:       cfg.Step,
		NoEnvTags:  true,
		CommonTags: common,
		Logger:     s.log,
		AuthToken:  cfg.AuthToken,
	})
	if err != nil {
		return nil, err
	}
	s.pub = pub
	var provider oteltrace.TracerProvider = noop.NewTracerProvider()
	if cfg.OTLP != "" {
		s.tp, err = trace.Setup(ctx, trace.Options{
			Endpoint:    cfg.OTLP,
			ServiceName: name,
			Attributes:  map[string]string{"service.version": "1.4.2", "deployment.environment.name": "demo", "service.namespace": "sextant-demo"},
			NoGlobal:    true,
			AuthToken:   cfg.AuthToken,
		})
		if err != nil {
			return nil, err
		}
		provider = s.tp
	}
	s.tracer = provider.Tracer("sextant-demo/" + name)
	opts := trace.HTTPOptions{Provider: provider, Propagator: propagation.TraceContext{}}
	s.client = &http.Client{Transport: trace.Transport(s.reg, nil, opts), Timeout: 5 * time.Second}
	s.srv = &http.Server{Handler: trace.Handler(s.reg, s.mux, opts), ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// serve answers on ln and publishes metrics from now on.
func (s *service) serve(ln net.Listener) {
	go func() {
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	s.pub.Start()
}

// stop finishes in-flight requests, then flushes the last step of metrics
// and the spans still batched.
func (s *service) stop(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	if err := s.pub.Close(ctx); err != nil {
		s.log.Warn("flush metrics", "err", err)
	}
	if s.tp != nil {
		if err := s.tp.Shutdown(ctx); err != nil {
			s.log.Warn("flush traces", "err", err)
		}
	}
}

// latency draws a log-normal duration with the given median: most calls
// are quick, a few are many times slower, as in real services.
func (s *service) latency(median time.Duration, sigma float64) time.Duration {
	s.mu.Lock()
	n := s.rnd.NormFloat64()
	s.mu.Unlock()
	if s.slowdown > 0 {
		median = time.Duration(float64(median) * s.slowdown)
	}
	return time.Duration(float64(median) * math.Exp(sigma*n))
}

// chance reports true with probability p.
func (s *service) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Float64() < p
}

func (s *service) intn(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.IntN(n)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call makes a request to another service and decodes its JSON answer
// into out (when non-nil and the status is 2xx).
func (s *service) call(ctx context.Context, endpoint, method, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(trace.WithEndpoint(ctx, endpoint), method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, fmt.Errorf("%s %s: %s", method, endpoint, resp.Status)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
