package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// The internal endpoints a store node serves to query nodes.
const (
	PathFetch     = "/api/v1/internal/fetch"
	PathTags      = "/api/v1/internal/tags"
	PathSeries    = "/api/v1/internal/series"
	PathTrace     = "/api/v1/internal/trace"
	PathTraces    = "/api/v1/internal/traces"
	PathCatalog   = "/api/v1/internal/catalog"
	PathDeps      = "/api/v1/internal/dependencies"
	PathExemplars = "/api/v1/internal/exemplars"
	// The media type of the metric wire format (wire.go, FORMAT.md), and
	// the most a query node's request may weigh: a query tree and a
	// partition list, far below it.
	wireMediaType  = "application/x-sextant-fetch"
	maxRequestBody = 16 << 20
)

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	Querier tsdb.Querier   // the node's own store
	Reader  tracing.Reader // the node's own span store
	Catalog tracing.Catalog
	Deps    tracing.DependencyReader
	// Serving reports whether the node serves partition p now (it is
	// caught up on it, cluster membership says); nil: every partition. A
	// read of a partition the node does not serve is answered 503, so
	// that the query node asks the partition's next owner instead of
	// taking the answer of a store still replaying the log (a query node
	// may go by an older heartbeat, sent before the node restarted).
	// Catalog and dependency reads name no partition and are answered.
	Serving func(p int) bool
	// Exemplars, when set, serves the node's span-metrics exemplars; nil:
	// the node answers that it holds none.
	Exemplars tracing.ExemplarStore
	// WaitApplied, on a node that consumes the log, returns once the node
	// applied partition p of log up to offset (exclusive), or an error
	// when it cannot (not consumed here, ctx ended). Strong reads wait on
	// it before reading; nil: a strong read is answered 503, so the query
	// node asks another owner.
	WaitApplied func(ctx context.Context, log Log, p int, offset int64) error
	// Timeout bounds one internal request (default 1 min); the query node
	// usually ends it sooner by closing the connection.
	Timeout  time.Duration
	Logger   *slog.Logger
	Registry *lib.Registry
}

// Validate checks the options.
func (o HandlerOptions) Validate() error {
	if o.Querier == nil || o.Reader == nil || o.Catalog == nil || o.Deps == nil {
		return errors.New("fanout: handler needs a Querier, a Reader, a Catalog and Deps")
	}
	return nil
}

// withDefaults fills the zero options: a minute's timeout, discarding
// logger and registry.
func (o HandlerOptions) withDefaults() HandlerOptions {
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return o
}

// Handler serves a store node's internal read endpoints: the node's own
// store, restricted to the partitions a query node asks for. Safe for
// concurrent use.
type Handler struct {
	opts HandlerOptions
}

// NewHandler returns a Handler over the node's stores.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Handler{opts: opts.withDefaults()}, nil
}

// Register adds the internal endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+PathFetch, h.serve("fetch", h.fetch))
	mux.HandleFunc("POST "+PathTags, h.serve("tags", h.tags))
	mux.HandleFunc("POST "+PathSeries, h.serve("series", h.series))
	mux.HandleFunc("POST "+PathTrace, h.serve("trace", h.trace))
	mux.HandleFunc("POST "+PathTraces, h.serve("traces", h.traces))
	mux.HandleFunc("POST "+PathCatalog, h.serve("catalog", h.catalog))
	mux.HandleFunc("POST "+PathDeps, h.serve("dependencies", h.deps))
	mux.HandleFunc("POST "+PathExemplars, h.serve("exemplars", h.exemplars))
}

// endpoint answers a decoded request body with an encoded answer; w is
// only for informational (1xx) answers before it, serve writes the answer.
type endpoint func(ctx context.Context, body []byte, w http.ResponseWriter) ([]byte, error)

// serve wraps an endpoint with what every internal read shares: the
// latency timer, the node's timeout, a bounded body, and the status
// mapping. A failure the node itself caused (5xx) is logged here; a 4xx
// is the query node's to report.
func (h *Handler) serve(name string, e endpoint) http.HandlerFunc {
	timer := h.opts.Registry.Timer("sextant.cluster.internalLatency", "api", name)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { timer.Record(time.Since(start)) }()
		// The query node has its own per-attempt timeout and fails over
		// when it fires; this one only stops work nobody waits for.
		ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
		defer cancel()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("read body: %w", err))
			return
		}
		out, err := e(ctx, body, w)
		if err != nil {
			code := statusOf(err)
			if code >= 500 && !errors.Is(err, errNotServing) { // a refusal is routine while a node replays
				h.opts.Logger.Warn("internal read failed", "api", name, "err", err)
			}
			writeError(w, code, err)
			return
		}
		w.Header().Set("Content-Type", wireMediaType)
		w.Header().Set("Content-Length", strconv.Itoa(len(out))) // the reader sizes its buffer by it
		_, _ = w.Write(out)
	}
}

// errNotServing answers a read of a partition the node does not serve.
var errNotServing = errors.New("fanout: partition not served by this node")

// ready checks that the node may answer a read of parts (nil: the request
// names no partitions) and, for a strong read, waits until it applied log
// up to offs. A store node answers only for partitions it is caught up on,
// and refuses the others first, so that a replaying node answers 503 at
// once instead of waiting out the query's deadline.
func (h *Handler) ready(ctx context.Context, log Log, parts *tsdb.Partitions, offs []partOffset) error {
	if h.opts.Serving != nil && parts != nil {
		for _, p := range parts.Want {
			if p >= 0 && p < parts.N && !h.opts.Serving(p) {
				return fmt.Errorf("%w: partition %d is replaying", errNotServing, p)
			}
		}
	}
	return h.waitFresh(ctx, log, offs)
}

// fetch answers a tsdb.FetchRequest from the node's store, restricted to
// the partitions asked for; the store aggregates, so a grouped sum sends
// one line per group, not the raw series.
//
// With a budget (what is left of the query's limits), the node tells the
// query node its share's cost before it reads (an informational 103
// answer, budget.go) and refuses a share over the budget at once.
func (h *Handler) fetch(ctx context.Context, body []byte, w http.ResponseWriter) ([]byte, error) {
	req, m, err := decodeFetchRequest(body)
	if err != nil {
		return nil, err
	}
	if err := h.ready(ctx, LogMetrics, req.Partitions, m.offs); err != nil {
		return nil, err
	}
	if m.budget != nil {
		req.Admit = admitter(w, *m.budget)
	}
	set, err := h.opts.Querier.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	return appendSeriesSet(nil, set), nil
}

// tags answers a tsdb.TagsRequest from the node's index.
func (h *Handler) tags(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	req, offs, err := decodeTagsRequest(body)
	if err != nil {
		return nil, err
	}
	if err := h.ready(ctx, LogMetrics, req.Partitions, offs); err != nil {
		return nil, err
	}
	tcs, err := h.opts.Querier.Tags(ctx, req)
	if err != nil {
		return nil, err
	}
	return appendTagCounts(nil, tcs), nil
}

// series answers a tsdb.SeriesRequest (the Prometheus series API) from
// the node's index, restricted to the partitions asked for.
func (h *Handler) series(ctx context.Context, body []byte, w http.ResponseWriter) ([]byte, error) {
	req, m, err := decodeSeriesRequest(body)
	if err != nil {
		return nil, err
	}
	sl, ok := h.opts.Querier.(tsdb.SeriesLister)
	if !ok {
		return nil, errors.New("fanout: this store cannot list series")
	}
	if err := h.ready(ctx, LogMetrics, req.Partitions, m.offs); err != nil {
		return nil, err
	}
	if m.budget != nil {
		req.Admit = admitter(w, *m.budget)
	}
	sets, more, err := sl.Series(ctx, req)
	if err != nil {
		return nil, err
	}
	return appendSeriesList(nil, sets, more), nil
}

// trace answers one trace by ID from the node's span store; the span
// side's messages are gob (tracewire.go), not the metric wire format.
func (h *Handler) trace(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	var req traceRequest
	if err := decodeGob(body, &req); err != nil {
		return nil, err
	}
	if err := checkGobVersion(req.Version); err != nil {
		return nil, err
	}
	var parts *tsdb.Partitions
	if req.N > 0 {
		parts = &tsdb.Partitions{N: req.N, Want: []int{tracing.TracePartition(req.ID, req.N)}}
	}
	if err := h.ready(ctx, LogSpans, parts, req.Offsets); err != nil {
		return nil, err
	}
	tr, err := h.opts.Reader.GetTrace(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	return encodeGob(tr)
}

// maxFindLimit bounds how far a store node widens a trace search to fill
// its answer with traces of the partitions asked for.
const maxFindLimit = 10_000

func (h *Handler) traces(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	var req findRequest
	if err := decodeGob(body, &req); err != nil {
		return nil, err
	}
	if err := checkGobVersion(req.Version); err != nil {
		return nil, err
	}
	if err := h.ready(ctx, LogSpans, &tsdb.Partitions{N: req.N, Want: req.Want}, req.Offsets); err != nil {
		return nil, err
	}
	q, err := req.Query.query()
	if err != nil {
		return nil, err
	}
	if req.N <= 0 || q.Limit <= 0 {
		return nil, fmt.Errorf("%w: %d partitions, limit %d", errWire, req.N, q.Limit)
	}
	want := make([]bool, req.N)
	for _, p := range req.Want {
		if p < 0 || p >= req.N {
			return nil, fmt.Errorf("%w: partition %d out of [0, %d)", errWire, p, req.N)
		}
		want[p] = true
	}
	// The store may hold traces of partitions it was not asked for: it
	// widens the search until Limit traces of the wanted partitions are
	// found or the store has no more.
	limit := q.Limit
	var out []tracing.Trace
	for {
		q.Limit = limit
		got, err := h.opts.Reader.FindTraces(ctx, q)
		if err != nil {
			return nil, err
		}
		// Another owner answers for the partitions dropped here; keeping
		// them would count a trace twice in the merge.
		out = slices.DeleteFunc(got, func(t tracing.Trace) bool { return !want[tracing.TracePartition(t.ID, req.N)] })
		if len(out) >= req.Query.Limit || len(got) < limit || limit >= maxFindLimit {
			break
		}
		// Each round repeats the whole search: growing fourfold keeps
		// the rounds few.
		limit = min(limit*4, maxFindLimit)
	}
	if len(out) > req.Query.Limit {
		out = out[:req.Query.Limit]
	}
	return encodeGob(out)
}

// catalog answers the service list, or a service's operations, from the
// node's span store.
func (h *Handler) catalog(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	var req catalogRequest
	if err := decodeGob(body, &req); err != nil {
		return nil, err
	}
	if err := checkGobVersion(req.Version); err != nil {
		return nil, err
	}
	if err := h.waitFresh(ctx, LogSpans, req.Offsets); err != nil {
		return nil, err
	}
	var ans catalogAnswer
	var err error
	if req.Operations {
		ans.Operations, err = h.opts.Catalog.Operations(ctx, req.Service, req.Kind)
	} else {
		ans.Services, err = h.opts.Catalog.Services(ctx)
	}
	if err != nil {
		return nil, err
	}
	return encodeGob(ans)
}

// deps answers the service dependency counts of [Start, End) from the
// node's span store, from version 3 those of the partitions asked for (the
// node must serve them), which the query node adds up across nodes.
func (h *Handler) deps(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	var req depsRequest
	if err := decodeGob(body, &req); err != nil {
		return nil, err
	}
	if err := checkGobVersion(req.Version); err != nil {
		return nil, err
	}
	if req.Version < wireVersionBudget {
		// A query node of a release before: every call the node counted.
		if err := h.waitFresh(ctx, LogSpans, req.Offsets); err != nil {
			return nil, err
		}
		deps, err := h.opts.Deps.Dependencies(ctx, req.Start, req.End)
		if err != nil {
			return nil, err
		}
		return encodeGob(deps)
	}
	if req.N <= 0 {
		return nil, fmt.Errorf("%w: %d partitions", errWire, req.N)
	}
	parts := &tsdb.Partitions{N: req.N, Want: req.Want}
	if err := parts.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errWire, err)
	}
	if err := h.ready(ctx, LogSpans, parts, req.Offsets); err != nil {
		return nil, err
	}
	var ans depsAnswer
	var err error
	if pr, ok := h.opts.Deps.(tracing.DependencyPartitionReader); ok {
		ans.In, ans.Unplaced, err = pr.DependenciesIn(ctx, req.Start, req.End, req.N, req.Want)
	} else {
		// A store that cannot tell partitions: nothing it counted can be
		// added up with another node's.
		ans.Unplaced, err = h.opts.Deps.Dependencies(ctx, req.Start, req.End)
	}
	if err != nil {
		return nil, err
	}
	return encodeGob(ans)
}

// wireError is the JSON body of an internal error answer; a limit error
// carries its fields so the query node can rebuild it.
type wireError struct {
	Message string `json:"message"`
	Limit   string `json:"limit,omitempty"`
	Max     int    `json:"max,omitempty"`
	Got     int    `json:"got,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// statusOf maps an error to the status of an internal answer: a limit is
// 422 (a replica would say the same), a missing trace 404, a malformed or
// invalid request 400, an overloaded or closed store or a partition the
// node does not serve 503, the rest 500.
func statusOf(err error) int {
	var le *tsdb.LimitError
	switch {
	case errors.As(err, &le):
		return http.StatusUnprocessableEntity
	case errors.Is(err, tracing.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errWire):
		return http.StatusBadRequest
	// A busy, closing or timed-out node is 503, and so is a partition the
	// node is still replaying or has not applied up to a strong read's
	// offsets: the query node fails over to the partition's next owner,
	// which may answer.
	case errors.Is(err, errNotServing), errors.Is(err, errNotFresh),
		errors.Is(err, tsdb.ErrOverloaded), errors.Is(err, tsdb.ErrClosed), errors.Is(err, tracing.ErrOverloaded),
		errors.Is(err, tracing.ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, err error) {
	body := wireError{Message: err.Error()}
	var le *tsdb.LimitError
	if errors.As(err, &le) {
		body.Limit, body.Max, body.Got, body.Detail = le.Limit, le.Max, le.Got, le.Detail
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
