package trace

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/lib/wire"
)

// Meter names of the IPC metrics, as Spectator's IPC conventions name them.
const (
	ServerCall = "ipc.server.call"
	ClientCall = "ipc.client.call"
)

// HTTPOptions configure Handler and Transport. The zero value uses the
// global TracerProvider and propagator.
type HTTPOptions struct {
	// Provider makes the spans; default otel.GetTracerProvider().
	Provider oteltrace.TracerProvider
	// Propagator carries the trace context in headers; default
	// otel.GetTextMapPropagator().
	Propagator propagation.TextMapPropagator
	// Endpoint names the ipc.endpoint tag and the span. For servers the
	// default is the ServeMux pattern that matched (without its method
	// and host), else "unknown"; for clients it is the name given with
	// WithEndpoint, else "unknown" (a raw client path would make a series
	// per id in the URL).
	Endpoint func(*http.Request) string
}

type endpointKey struct{}

// WithEndpoint names the endpoint of the client calls made with ctx, for
// the ipc.endpoint tag and the client span name.
func WithEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, endpoint)
}

func (o *HTTPOptions) tracer() oteltrace.Tracer {
	p := o.Provider
	if p == nil {
		p = otel.GetTracerProvider()
	}
	return p.Tracer("github.com/sextant-dev/sextant/lib/trace")
}

func (o *HTTPOptions) propagator() propagation.TextMapPropagator {
	if o.Propagator != nil {
		return o.Propagator
	}
	return otel.GetTextMapPropagator()
}

// Handler wraps next so that every request gets a server span (continuing
// the caller's trace from the request headers) and is timed in the
// ipc.server.call percentile timer, tagged ipc.endpoint, http.method,
// http.status, ipc.result and ipc.status.
func Handler(reg *lib.Registry, next http.Handler, o HTTPOptions) http.Handler {
	tracer, prop := o.tracer(), o.propagator()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, oteltrace.WithSpanKind(oteltrace.SpanKindServer),
			oteltrace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
				attribute.String("server.address", r.Host),
				attribute.String("network.protocol.version", strconv.Itoa(r.ProtoMajor)+"."+strconv.Itoa(r.ProtoMinor)),
			))
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(ctx)
		defer func() {
			// A panicking handler still gets its span and its timer (as a
			// 500) before the panic goes on to net/http.
			p := recover()
			if p != nil && rec.status == 0 {
				rec.status = http.StatusInternalServerError
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := serverRoute(r, o.Endpoint)
			if route != "" {
				span.SetName(r.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
			result, ipcStatus := classify(status, nil)
			reg.PercentileTimer(ServerCall,
				"ipc.endpoint", endpointTag(route), "http.method", method(r.Method), "http.status", strconv.Itoa(status),
				"ipc.result", result, "ipc.status", ipcStatus).Record(time.Since(start))
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// Transport wraps base (http.DefaultTransport when nil) so that every
// request gets a client span, carries the trace context in its headers,
// and is timed in the ipc.client.call percentile timer.
func Transport(reg *lib.Registry, base http.RoundTripper, o HTTPOptions) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{reg: reg, base: base, tracer: o.tracer(), prop: o.propagator(), endpoint: o.Endpoint}
}

type transport struct {
	reg      *lib.Registry
	base     http.RoundTripper
	tracer   oteltrace.Tracer
	prop     propagation.TextMapPropagator
	endpoint func(*http.Request) string
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	endpoint := clientEndpoint(r, t.endpoint)
	ctx, span := t.tracer.Start(r.Context(), r.Method+" "+endpoint, oteltrace.WithSpanKind(oteltrace.SpanKindClient),
		oteltrace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.full", redacted(r)),
			attribute.String("server.address", r.URL.Hostname()),
		))
	defer span.End()
	// A RoundTripper must not modify the caller's request: clone it to
	// add the propagation headers.
	r = r.Clone(ctx)
	t.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := t.base.RoundTrip(r)
	status := 0
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else {
		status = resp.StatusCode
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 400 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	result, ipcStatus := classify(status, err)
	httpStatus := "-1"
	if status > 0 {
		httpStatus = strconv.Itoa(status)
	}
	t.reg.PercentileTimer(ClientCall,
		"ipc.endpoint", endpoint, "http.method", method(r.Method), "http.status", httpStatus,
		"ipc.result", result, "ipc.status", ipcStatus).Record(time.Since(start))
	return resp, err
}

// classify maps an HTTP outcome onto Spectator's ipc.result and
// ipc.status values.
func classify(status int, err error) (result, ipcStatus string) {
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, context.Canceled):
			return "failure", "cancelled"
		case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
			return "failure", "timeout"
		default:
			return "failure", "connection_error"
		}
	}
	switch {
	case status < 400:
		return "success", "success"
	case status == http.StatusTooManyRequests:
		return "failure", "throttled"
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return "failure", "access_denied"
	case status == http.StatusServiceUnavailable:
		return "failure", "unavailable"
	case status == http.StatusGatewayTimeout:
		return "failure", "timeout"
	case status < 500:
		return "failure", "bad_request"
	default:
		return "failure", "unexpected_error"
	}
}

// method bounds the http.method tag to the standard methods.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

var rules = wire.DefaultRules()

// serverRoute is the route that served r ("" when unknown).
func serverRoute(r *http.Request, fn func(*http.Request) string) string {
	var e string
	if fn != nil {
		e = fn(r)
	} else {
		// ServeMux sets Pattern on the request it was handed, which is
		// ours: "GET example.com/items/{id}" -> "/items/{id}".
		e = r.Pattern
		if i := strings.IndexByte(e, ' '); i >= 0 {
			e = e[i+1:]
		}
		if i := strings.IndexByte(e, '/'); i > 0 {
			e = e[i:]
		}
	}
	return e
}

func clientEndpoint(r *http.Request, fn func(*http.Request) string) string {
	e, _ := r.Context().Value(endpointKey{}).(string)
	if e == "" && fn != nil {
		e = fn(r)
	}
	return endpointTag(e)
}

// endpointTag makes e a valid tag value: Atlas's characters only, and no
// longer than a tag value may be.
func endpointTag(e string) string {
	if e == "" {
		return "unknown"
	}
	e = rules.Sanitize(e)
	if len(e) > 120 {
		e = e[:120]
	}
	return e
}

// redacted is the request URL without user info or query, which may hold
// credentials.
func redacted(r *http.Request) string {
	u := *r.URL
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	return u.String()
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // 1xx are interim
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes through for streaming handlers that type-assert.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.status == 0 {
			s.status = http.StatusOK
		}
		f.Flush()
	}
}
