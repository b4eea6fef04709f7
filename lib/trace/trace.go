// Package trace wires a service's tracing through the OpenTelemetry Go
// SDK to a Sextant server, and instruments net/http clients and servers
// with both spans and Spectator-style IPC metrics (ipc.server.call and
// ipc.client.call percentile timers).
//
// Sextant has no tracer of its own: Setup builds an SDK TracerProvider
// that batches spans and exports them over OTLP/HTTP, so anything written
// against the OpenTelemetry API works unchanged.
package trace

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// DefaultEndpoint is where spans go when neither Options nor the
// environment names an endpoint: a local Sextant's OTLP/HTTP listener.
const DefaultEndpoint = "http://localhost:4318"

// Options configure Setup. The zero value exports to the endpoint the
// environment names (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then
// OTEL_EXPORTER_OTLP_ENDPOINT) or DefaultEndpoint, samples everything and
// takes the service name from OTEL_SERVICE_NAME or NETFLIX_APP.
type Options struct {
	// Endpoint is the OTLP/HTTP base URL (http://host:4318); /v1/traces is
	// appended unless the URL already has a path.
	Endpoint string
	// ServiceName becomes the service.name resource attribute.
	ServiceName string
	// Attributes are further resource attributes (service.version,
	// deployment.environment.name, ...).
	Attributes map[string]string
	// SampleRatio is the fraction of new traces sampled, in (0, 1]; 0
	// means 1. Child spans follow their parent's decision.
	SampleRatio float64
	// Exporter replaces the OTLP exporter (tests use an in-memory one).
	Exporter sdktrace.SpanExporter
	// BatchTimeout is how long spans wait before export; default 1 s so a
	// trace is searchable moments after it ends.
	BatchTimeout time.Duration
	// NoGlobal leaves the global TracerProvider and propagator alone.
	NoGlobal bool
	// AuthToken, when set, is sent as "Authorization: Bearer <AuthToken>"
	// with every export (a server started with --auth-token requires it).
	AuthToken string
}

// Setup builds a TracerProvider exporting to Sextant with the service's
// resource attributes, installs it (and the W3C trace-context and baggage
// propagators) globally unless opts.NoGlobal, and returns it. Call its
// Shutdown before exiting to flush the spans still batched.
func Setup(ctx context.Context, opts Options) (*sdktrace.TracerProvider, error) {
	if opts.SampleRatio < 0 || opts.SampleRatio > 1 {
		return nil, fmt.Errorf("trace: SampleRatio %v is outside (0, 1]", opts.SampleRatio)
	}
	exp := opts.Exporter
	if exp == nil {
		u, err := traceURL(opts.Endpoint)
		if err != nil {
			return nil, err
		}
		eo := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u), otlptracehttp.WithCompression(otlptracehttp.GzipCompression)}
		if opts.AuthToken != "" {
			eo = append(eo, otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + opts.AuthToken}))
		}
		exp, err = otlptracehttp.New(ctx, eo...)
		if err != nil {
			return nil, fmt.Errorf("trace: exporter: %w", err)
		}
	}
	res, err := serviceResource(ctx, opts)
	if err != nil {
		return nil, err
	}
	sampler := sdktrace.AlwaysSample()
	if r := opts.SampleRatio; r > 0 && r < 1 {
		sampler = sdktrace.TraceIDRatioBased(r)
	}
	bt := opts.BatchTimeout
	if bt <= 0 {
		bt = time.Second
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(bt)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sampler)),
	)
	if !opts.NoGlobal {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	}
	return tp, nil
}

// traceURL resolves the export URL from the option, the environment and
// the default, appending the OTLP traces path to a bare base URL.
func traceURL(endpoint string) (string, error) {
	full := false
	if endpoint == "" {
		if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
			endpoint, full = e, true // the signal-specific variable is used as is
		} else if e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
			endpoint = e
		} else {
			endpoint = DefaultEndpoint
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("trace: endpoint %q is not an http(s) URL", endpoint)
	}
	if !full && strings.TrimSuffix(u.Path, "/") == "" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// serviceResource is the SDK's default resource (telemetry SDK, and
// OTEL_RESOURCE_ATTRIBUTES) plus the host, the service name and opts'
// attributes, in increasing precedence.
func serviceResource(ctx context.Context, opts Options) (*resource.Resource, error) {
	name := opts.ServiceName
	if name == "" {
		name = os.Getenv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = os.Getenv("NETFLIX_APP")
	}
	if name == "" {
		name = "unknown_service:" + filepath.Base(os.Args[0]) // the SDK's own default
	}
	attrs := make([]attribute.KeyValue, 0, len(opts.Attributes)+1)
	attrs = append(attrs, attribute.String("service.name", name))
	for k, v := range opts.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost(), resource.WithAttributes(attrs...))
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace: resource: %w", err)
	}
	return res, nil
}
