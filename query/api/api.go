// Package api is the HTTP face of the stack language: the Atlas graph API
// (JSON, CSV, text and rendered PNG/SVG charts), the tags API, and the
// expression helpers behind the UI's editor (parse, debug, normalize,
// complete).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	// Time zones (tz=US/Pacific) on hosts without a zone database.
	_ "time/tzdata"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure the API.
type Options struct {
	Querier tsdb.Querier
	// StorageStep is the store's step in ms; graph steps are multiples.
	StorageStep int64
	// QueryTimeout bounds one query; beyond it the answer is 422.
	// Default 30 s.
	QueryTimeout time.Duration
	// MaxLines and MaxDatapoints bound what one evaluation may hold
	// (defaults in query/eval).
	MaxLines, MaxDatapoints int
	// DefaultTZ is the time zone when a request gives none; default
	// US/Pacific, as Atlas.
	DefaultTZ string
	// MaxQueryLength bounds the q parameter in bytes; default 64 KiB.
	MaxQueryLength int
	// Exemplars, when set, serves /api/v1/exemplars.
	Exemplars ExemplarFunc
	Now       func() time.Time
	Logger    *slog.Logger
	Registry  *lib.Registry
}

func (o Options) withDefaults() Options {
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.DefaultTZ == "" {
		o.DefaultTZ = "US/Pacific"
	}
	if o.MaxQueryLength == 0 {
		o.MaxQueryLength = 64 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return o
}

// Validate checks the options.
func (o Options) Validate() error {
	switch {
	case o.Querier == nil:
		return errors.New("api: no querier")
	case o.StorageStep <= 0:
		return errors.New("api: storage step must be positive")
	}
	if _, err := time.LoadLocation(o.DefaultTZ); err != nil {
		return fmt.Errorf("api: default time zone: %w", err)
	}
	return nil
}

// API serves the query endpoints.
type API struct {
	opts   Options
	engine *query.Engine
	m      struct {
		latency *lib.Timer
	}
	reg *lib.Registry
}

// New returns the API.
func New(opts Options) (*API, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	a := &API{opts: opts, reg: opts.Registry}
	a.engine = query.NewEngine(opts.Querier, eval.Options{
		MaxLines: opts.MaxLines, MaxDatapoints: opts.MaxDatapoints,
		Now: func() int64 { return opts.Now().UnixMilli() },
	})
	a.m.latency = a.reg.Timer("sextant.query.latency", "api", "graph")
	return a, nil
}

// Engine returns the engine the API evaluates with.
func (a *API) Engine() *query.Engine { return a.engine }

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	// Every route flags an answer that misses data (partial.go).
	a.registerOn(partialMux{mux})
}

// registerOn adds the routes to m.
func (a *API) registerOn(mux partialMux) {
	mux.HandleFunc("GET /api/v1/graph", a.graph)
	mux.HandleFunc("GET /api/v1/tags", a.tags)
	mux.HandleFunc("GET /api/v1/tags/{key}", a.tags)
	mux.HandleFunc("GET /api/v1/expr", a.exprParse)
	mux.HandleFunc("GET /api/v1/expr/debug", a.exprDebug)
	mux.HandleFunc("GET /api/v1/expr/normalize", a.exprNormalize)
	mux.HandleFunc("GET /api/v1/expr/queries", a.exprQueries)
	mux.HandleFunc("GET /api/v1/expr/complete", a.exprComplete)
	mux.HandleFunc("GET /api/v1/exemplars", a.exemplars)
	a.registerProm(mux) // the Prometheus HTTP API, prom.go
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Type     string `json:"type"`
	Message  string `json:"message"`
	Word     string `json:"word,omitempty"`
	Position *int   `json:"position,omitempty"`
	Token    *int   `json:"token,omitempty"`
	Param    string `json:"param,omitempty"`
	Limit    string `json:"limit,omitempty"`
}

// statusOf maps an error to its HTTP status: the user's mistakes (typed:
// parameters, the expression, its evaluation) are 400, limits 422, an
// overloaded or closed store 503; anything else is the server's fault, a
// 500 (and logged).
func statusOf(err error) int {
	var le *tsdb.LimitError
	var pe *paramError
	var se *stack.Error
	var ue *eval.UserError
	switch {
	case errors.As(err, &le), errors.Is(err, context.DeadlineExceeded):
		return http.StatusUnprocessableEntity
	case errors.As(err, &pe), errors.As(err, &se), errors.As(err, &ue):
		return http.StatusBadRequest
	case errors.Is(err, tsdb.ErrOverloaded), errors.Is(err, tsdb.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return 499 // the client went away
	}
	return http.StatusInternalServerError
}

// errorOf renders an error for the client.
func (a *API) errorOf(err error) (int, errorBody) {
	code := statusOf(err)
	b := errorBody{Type: "error", Message: err.Error()}
	var se *stack.Error
	var pe *paramError
	var le *tsdb.LimitError
	switch {
	case errors.As(err, &se):
		b.Word, b.Position, b.Token = se.Word, &se.Pos, &se.Token
		b.Param = "q"
		b.Message = fmt.Sprintf("%s: %s", "q", se.Error())
	case errors.As(err, &pe):
		b.Param = pe.Param
	case errors.As(err, &le):
		b.Limit = le.Limit
		b.Message = fmt.Sprintf("query exceeds %s: needs at least %d, limit is %d", le.Limit, le.Got, le.Max)
	case errors.Is(err, context.DeadlineExceeded):
		b.Limit = "query-time-limit"
		b.Message = fmt.Sprintf("query exceeds query-time-limit of %s", a.opts.QueryTimeout)
	}
	if code >= 500 {
		b.Message = "internal error: " + err.Error()
	}
	return code, b
}

// writeError answers err; see fail to log server faults with the request.
func (a *API) writeError(w http.ResponseWriter, err error) {
	code, b := a.errorOf(err)
	if code >= 500 {
		a.opts.Logger.Error("query failed", "err", err)
	}
	a.reg.Counter("sextant.query.errors", "status", strconv.Itoa(code)).Increment()
	writeJSON(w, code, b)
}

// fail answers err for request r; a server fault (500) is logged with the
// request.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, b := a.errorOf(err)
	if code >= 500 {
		a.opts.Logger.Error("query failed", "method", r.Method, "url", r.URL.String(), "remote", r.RemoteAddr, "err", err)
	}
	a.reg.Counter("sextant.query.errors", "status", strconv.Itoa(code)).Increment()
	writeJSON(w, code, b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// queryParam returns q, bounded in length.
func (a *API) queryParam(r *http.Request) (string, error) {
	q := r.URL.Query().Get("q")
	if q == "" {
		return "", badParam("q", "missing; give an expression such as name,sps,:eq,:sum")
	}
	if len(q) > a.opts.MaxQueryLength {
		return "", badParam("q", "%d bytes long, limit is %d", len(q), a.opts.MaxQueryLength)
	}
	return q, nil
}
