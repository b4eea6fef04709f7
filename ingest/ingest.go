package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure the ingest handlers.
type Options struct {
	// Appender stores what is accepted.
	Appender tsdb.Appender
	// Step is the store's step in ms (default 60 s): OTLP deltas are spread
	// over steps.
	Step int64
	// Rules validate tags of the Atlas publish API; nil means Atlas's
	// defaults. They must not change after New (the ref cache remembers
	// which tag texts passed them).
	Rules *Rules
	// MaxRefs bounds the ref cache of Atlas publish, remote write and OTLP
	// metrics: series refs remembered by the text their tags came in (for
	// OTLP, the attributes and the mapping's tags: otlpref.go), 32 to 64
	// bytes each (refcache.go). Default 1 << 21; negative turns the cache off.
	MaxRefs int
	// Tags is the tag policy of the other protocols (remote write, OTLP,
	// SpectatorD, Zipkin).
	Tags TagPolicy
	// MaxBodyBytes bounds a request body as sent (before decompression);
	// default 32 MiB. MaxDecodedBytes bounds it after decompression;
	// default 64 MiB, the OTLP recommendation. Over either: 413.
	MaxBodyBytes    int64
	MaxDecodedBytes int64
	// MaxDatapoints bounds the datapoints of one request; default 100 000,
	// Atlas's decoder limit. Over: 413.
	MaxDatapoints int
	// MaxInFlight bounds the requests being processed at once; beyond it
	// requests are shed with 429 and Retry-After rather than queued.
	// Default 64.
	MaxInFlight int
	// MemoryLimit, when positive, sheds requests with 503 while the Go heap
	// is above it. Default: 90% of the runtime's memory limit (GOMEMLIMIT)
	// when one is set, else off.
	MemoryLimit int64
	// Traces stores spans from OTLP; nil leaves /v1/traces unserved.
	Traces tracing.Writer
	// Exemplars keeps the slowest span per span-metrics series and step;
	// nil keeps none.
	Exemplars tracing.ExemplarStore
	// SpanLimits bound each span; MaxSpans bounds one request (default
	// 100 000; over: 413).
	SpanLimits SpanLimits
	MaxSpans   int
	// SpanMetricsInterval is how often span metrics go to the store (Run
	// does it); 0 writes them with each request.
	SpanMetricsInterval time.Duration
	// Now is the clock (Unix ms).
	Now      func() int64
	Logger   *slog.Logger
	Registry *lib.Registry
}

func (o Options) withDefaults() Options {
	if o.Rules == nil {
		o.Rules = DefaultRules()
	}
	if o.Step <= 0 {
		o.Step = 60_000
	}
	if o.MaxRefs == 0 {
		o.MaxRefs = 1 << 21
	}
	o.Tags = o.Tags.withDefaults()
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = 64 << 20
	}
	if o.MaxDatapoints <= 0 {
		o.MaxDatapoints = 100_000
	}
	o.SpanLimits = o.SpanLimits.withDefaults()
	if o.MaxSpans <= 0 {
		o.MaxSpans = 100_000
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.MemoryLimit == 0 {
		if lim := debug.SetMemoryLimit(-1); lim > 0 && lim < 1<<62 {
			o.MemoryLimit = lim / 10 * 9
		}
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Handler serves the ingest endpoints. Safe for concurrent use.
type Handler struct {
	opts     Options
	inflight chan struct{}
	heap     atomic.Int64 // sampled heap size, for the memory limit
	heapAt   atomic.Int64 // when it was sampled, Unix ns

	pool       sync.Pool // *publishRequest
	remoteWork freeList[remoteWork]
	gzips      sync.Pool // *gzip.Reader
	reasons    sync.Map  // "protocol\x00reason" → *lib.Counter
	// datapoints holds the sextant.ingest.datapoints counter of each
	// protocol, built in New and read-only after: a request counts its
	// datapoints without building the meter's id.
	datapoints map[string]*lib.Counter

	// refs is the ref cache of Atlas publish, remote write and OTLP
	// metrics (nil when off), and its counters: datapoints that hit it,
	// hits the store no longer knew, stripes that started over.
	refs                          *refCache
	refHits, refStale, refEvicted *lib.Counter
	rwContext                     refKey // the cache context of remote write's keys

	traceCounts *traceCounter
	exemplars   exemplarTracker
	red         spanAggs
}

// New returns a Handler.
func New(opts Options) (*Handler, error) {
	opts = opts.withDefaults()
	if opts.Appender == nil {
		return nil, errors.New("ingest: no appender")
	}
	h := &Handler{opts: opts, inflight: make(chan struct{}, opts.MaxInFlight), traceCounts: newTraceCounter(1 << 20)}
	h.pool.New = func() any { return new(publishRequest) }
	h.refs = newRefCache(opts.MaxRefs)
	if h.refs != nil {
		h.rwContext = h.refs.context([]byte("prometheus remote write"))
	}
	h.refHits = opts.Registry.Counter("sextant.ingest.refcache", "result", "hit")
	h.refStale = opts.Registry.Counter("sextant.ingest.refcache", "result", "stale")
	h.refEvicted = opts.Registry.Counter("sextant.ingest.refcache", "result", "evicted")
	h.datapoints = make(map[string]*lib.Counter)
	for _, p := range []string{protoAtlas, protoOTLP, protoRemoteWrite, protoSpectatorD} {
		h.datapoints[p] = opts.Registry.Counter("sextant.ingest.datapoints", "protocol", p)
	}
	return h, nil
}

// Register adds the endpoints served on the main listener: Atlas publish,
// Prometheus remote write and OTLP/HTTP metrics.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/publish", h.guard(protoAtlas, http.HandlerFunc(h.publish)))
	mux.Handle("POST /api/v1/publish-fast", h.guard(protoAtlas, http.HandlerFunc(h.publish)))
	mux.Handle("POST /api/v1/write", h.guard(protoRemoteWrite, http.HandlerFunc(h.remoteWrite)))
	h.RegisterOTLP(mux)
}

// RegisterOTLP adds the OTLP/HTTP endpoints (metrics, and traces when a
// span store is wired), for the OTLP listener.
func (h *Handler) RegisterOTLP(mux *http.ServeMux) {
	mux.Handle("POST /v1/metrics", h.guard(protoOTLP, http.HandlerFunc(h.otlpHTTP)))
	if h.opts.Traces != nil {
		mux.Handle("POST /v1/traces", h.guard(protoOTLPTraces, http.HandlerFunc(h.otlpTracesHTTP)))
	}
}

// Trim drops the request workspaces the handler keeps for reuse beyond
// what the collector empties (sync.Pools): the server calls it when ingest
// goes quiet, before it collects and gives memory back. Safe to call at
// any time; the next requests allocate what they need again.
func (h *Handler) Trim() {
	h.remoteWork.trim()
}

// Protocol names, the protocol tag of ingest.rejected.
const (
	protoAtlas       = "atlas"
	protoOTLP        = "otlp"
	protoRemoteWrite = "remote-write"
)

// reject counts n datapoints rejected for reason.
func (h *Handler) reject(protocol, reason string, n int) {
	if n == 0 {
		return
	}
	key := protocol + "\x00" + reason
	c, ok := h.reasons.Load(key)
	if !ok {
		c, _ = h.reasons.LoadOrStore(key, h.opts.Registry.Counter("sextant.ingest.rejected", "protocol", protocol, "reason", reason))
	}
	c.(*lib.Counter).Add(float64(n))
}

// accepted counts n datapoints stored.
func (h *Handler) accepted(protocol string, n int) {
	c := h.datapoints[protocol]
	if c == nil {
		c = h.opts.Registry.Counter("sextant.ingest.datapoints", "protocol", protocol)
	}
	c.Add(float64(n))
}

// guard sheds load before a request's body is read: too many requests in
// flight (429) or too little memory (503), both with Retry-After.
func (h *Handler) guard(protocol string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.memoryFull() {
			h.opts.Registry.Counter("sextant.ingest.shed", "protocol", protocol, "reason", "memory").Increment()
			writeError(w, r, &httpError{status: http.StatusServiceUnavailable, retryAfter: 5, msg: "server memory is saturated, retry later"})
			return
		}
		select {
		case h.inflight <- struct{}{}:
			defer func() { <-h.inflight }()
		default:
			h.opts.Registry.Counter("sextant.ingest.shed", "protocol", protocol, "reason", "concurrency").Increment()
			writeError(w, r, &httpError{status: http.StatusTooManyRequests, retryAfter: 1,
				msg: fmt.Sprintf("more than %d requests in flight, retry later", cap(h.inflight))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// memoryFull reports whether the heap is above the memory limit, sampling
// the runtime at most every 100 ms.
func (h *Handler) memoryFull() bool {
	if h.opts.MemoryLimit <= 0 {
		return false
	}
	now := time.Now().UnixNano()
	if now-h.heapAt.Load() > int64(100*time.Millisecond) {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			h.heap.Store(int64(s[0].Value.Uint64()))
		}
		h.heapAt.Store(now)
	}
	return h.heap.Load() > h.opts.MemoryLimit
}

// httpError is an error with the HTTP status it answers with.
type httpError struct {
	status     int
	msg        string
	retryAfter int // seconds; 0 for none
}

func (e *httpError) Error() string { return e.msg }

// statusOf maps an error to its HTTP status: the one place where errors
// below the handlers meet status codes.
func statusOf(err error) *httpError {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &mbe):
		return &httpError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body exceeds %d bytes", mbe.Limit)}
	case errors.Is(err, tsdb.ErrOverloaded), errors.Is(err, tracing.ErrOverloaded):
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: 1, msg: "store is saturated, retry later"}
	case errors.Is(err, tsdb.ErrUnavailable), errors.Is(err, tracing.ErrUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: 5, msg: "the log is unavailable, retry later"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: 1, msg: "request cancelled"}
	case errors.Is(err, tsdb.ErrClosed), errors.Is(err, tracing.ErrClosed):
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: 5, msg: "store is shutting down"}
	}
	return &httpError{status: http.StatusInternalServerError, msg: err.Error()}
}

// writeError answers with err as Atlas does: {"type":"error","message":...}.
func writeError(w http.ResponseWriter, _ *http.Request, err error) {
	he := statusOf(err)
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
	}
	writeJSON(w, he.status, map[string]any{"type": "error", "errorCount": 1, "message": []string{he.msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
