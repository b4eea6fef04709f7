// Package api serves the span store over HTTP: the Jaeger query API that
// Grafana's Jaeger data source and Jaeger's UI call (compat.md §d.2),
// with Sextant's additions to trace search (trace duration, attribute
// prefixes and regexes), and Jaeger's API v3 (OTLP JSON) that newer
// Jaeger UI builds call.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
)

// Options configure the API.
type Options struct {
	Reader       tracing.Reader
	Catalog      tracing.Catalog
	Dependencies tracing.DependencyReader
	// SpanMetrics answers the Monitor tab's /api/metrics/* from the span
	// metrics; nil answers them 501.
	SpanMetrics SpanMetricsFunc
	// MinStep is the storage step, /api/metrics/minstep's answer.
	MinStep time.Duration
	// Timeout bounds one request; default 30 s.
	Timeout  time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

// API is the HTTP face of the span store.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Reader == nil || opts.Catalog == nil || opts.Dependencies == nil {
		return nil, errors.New("tracing/api: Reader, Catalog and Dependencies are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MinStep <= 0 {
		opts.MinStep = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{opts: opts}, nil
}

// Register adds the routes, at the root path as Grafana expects.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/services", a.timed("services", a.services))
	mux.HandleFunc("GET /api/services/{service}/operations", a.timed("operations", a.serviceOperations))
	mux.HandleFunc("GET /api/operations", a.timed("operations", a.operations))
	mux.HandleFunc("GET /api/traces", a.timed("search", a.search))
	mux.HandleFunc("GET /api/traces/{traceID}", a.timed("trace", a.trace))
	mux.HandleFunc("GET /api/dependencies", a.timed("dependencies", a.dependencies))
	a.registerV3(mux)
	a.registerMetrics(mux)
}

// handler answers with data, or an error that fail maps to a status.
type handler func(ctx context.Context, r *http.Request) (any, error)

// instrument returns a handler that runs h timed under the API name
// (sextant.traces.queryLatency), in a context bounded by the API's timeout
// that carries the request's partial tracker, which h reads before it
// answers. Both the Jaeger and the v3 handlers are built on it.
func (a *API) instrument(name string, h func(ctx context.Context, partial *tracing.Partial, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	timer := a.opts.Registry.Timer("sextant.traces.queryLatency", "api", name)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { timer.Record(time.Since(start)) }()
		ctx, partial := tracing.WithPartial(r.Context())
		ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
		defer cancel()
		h(ctx, partial, w, r)
	}
}

// timed serves a Jaeger query API handler: its data in Jaeger's envelope,
// or its error through fail.
func (a *API) timed(name string, h handler) http.HandlerFunc {
	return a.instrument(name, func(ctx context.Context, partial *tracing.Partial, w http.ResponseWriter, r *http.Request) {
		data, err := h(ctx, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		env := envelope{Data: data}
		if partial.Is() {
			// Jaeger's envelope has no warnings: an error entry beside the
			// data is how its UI shows a problem with an answer.
			w.Header().Set(PartialHeader, "true")
			env.Errors = []jaegerErr{{Code: http.StatusPartialContent, Msg: partialMessage}}
		}
		switch d := data.(type) {
		case []string:
			env.Total = len(d)
		case []jOperation:
			env.Total = len(d)
		case []jTrace:
			env.Total = len(d)
		case []jDependency:
			env.Total = len(d)
		}
		writeJSON(w, http.StatusOK, env)
	})
}

// PartialHeader is the response header that flags an answer missing data:
// in cluster mode, a partition no store node answered for.
const PartialHeader = "X-Sextant-Partial"

// partialMessage is the error entry of a partial answer.
const partialMessage = "partial answer: no store node answered for some partitions of the traces"

// fail answers an error in the v1 envelope.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, err := a.statusOf(r, err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, envelope{Errors: []jaegerErr{{Code: status, Msg: err.Error()}}})
}

// statusOf maps an error to its HTTP status and the error to show: the
// one place that does, for v1 and v3. Unexpected errors are logged.
func (a *API) statusOf(r *http.Request, err error) (int, error) {
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, err
	case errors.Is(err, errMetricsDisabled):
		return http.StatusNotImplemented, err
	case errors.Is(err, tracing.ErrNotFound):
		return http.StatusNotFound, err
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusUnprocessableEntity, errors.New("the query took longer than the time limit of " + a.opts.Timeout.String())
	case errors.Is(err, context.Canceled), errors.Is(err, tracing.ErrClosed), errors.Is(err, tracing.ErrOverloaded):
		return http.StatusServiceUnavailable, err
	}
	a.opts.Logger.Error("trace query", "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *API) services(ctx context.Context, r *http.Request) (any, error) {
	svcs, err := a.opts.Catalog.Services(ctx)
	if svcs == nil {
		svcs = []string{}
	}
	return svcs, err
}

// serviceOperations lists operation names, each once.
func (a *API) serviceOperations(ctx context.Context, r *http.Request) (any, error) {
	ops, err := a.opts.Catalog.Operations(ctx, r.PathValue("service"), tracing.SpanKindUnspecified)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for i, o := range ops {
		if i == 0 || o.Name != ops[i-1].Name {
			names = append(names, o.Name)
		}
	}
	return names, nil
}

func (a *API) operations(ctx context.Context, r *http.Request) (any, error) {
	return a.listOperations(ctx, r.URL.Query(), "spanKind")
}

// listOperations answers both APIs' operation listing: service required,
// the span kind (in kindParam) optional.
func (a *API) listOperations(ctx context.Context, v url.Values, kindParam string) ([]jOperation, error) {
	service := v.Get("service")
	if service == "" {
		return nil, badParam("service", "required")
	}
	kind, ok := tracing.ParseSpanKind(v.Get(kindParam))
	if !ok {
		return nil, badParam(kindParam, "%q: use server, client, producer, consumer or internal", v.Get(kindParam))
	}
	ops, err := a.opts.Catalog.Operations(ctx, service, kind)
	if err != nil {
		return nil, err
	}
	out := make([]jOperation, 0, len(ops))
	for _, o := range ops {
		out = append(out, jOperation{Name: o.Name, SpanKind: o.Kind.String()})
	}
	return out, nil
}

func (a *API) search(ctx context.Context, r *http.Request) (any, error) {
	p, err := parseSearch(r.URL.Query(), a.opts.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	out := []jTrace{}
	if len(p.traceIDs) > 0 {
		for _, id := range p.traceIDs {
			tr, err := a.opts.Reader.GetTrace(ctx, id)
			if errors.Is(err, tracing.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, toJaeger(&tr))
		}
		return out, nil
	}
	traces, err := a.opts.Reader.FindTraces(ctx, p.query)
	if err != nil {
		return nil, err
	}
	for i := range traces {
		out = append(out, toJaeger(&traces[i]))
	}
	return out, nil
}

func (a *API) trace(ctx context.Context, r *http.Request) (any, error) {
	id, err := tracing.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		return nil, badParam("traceID", "%q: %v", r.PathValue("traceID"), err)
	}
	tr, err := a.opts.Reader.GetTrace(ctx, id)
	if err != nil {
		return nil, err
	}
	return []jTrace{toJaeger(&tr)}, nil
}

// dependencies answers for endTs (Unix ms, default now) and lookback (ms,
// default 24 h), as Jaeger does.
func (a *API) dependencies(ctx context.Context, r *http.Request) (any, error) {
	v := r.URL.Query()
	end := a.opts.Now().UnixMilli()
	if s := v.Get("endTs"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1<<53 {
			return nil, badParam("endTs", "%q is not a time in milliseconds since the epoch", s)
		}
		end = n
	}
	lookback := int64(24 * time.Hour / time.Millisecond)
	if s := v.Get("lookback"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > end {
			return nil, badParam("lookback", "%q is not a positive number of milliseconds", s)
		}
		lookback = n
	}
	deps, err := a.opts.Dependencies.Dependencies(ctx, (end-lookback)*1e6, end*1e6)
	if err != nil {
		return nil, err
	}
	out := make([]jDependency, 0, len(deps))
	for _, d := range deps {
		out = append(out, jDependency{Parent: d.Parent, Child: d.Child, CallCount: d.CallCount})
	}
	return out, nil
}
