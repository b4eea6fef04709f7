package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/canary"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
)

// CanaryOptions configure the canary endpoints.
type CanaryOptions struct {
	// Judge answers one judgement synchronously; Runner schedules runs
	// that judge later and keeps their records. Both are required.
	Judge  *canary.Judge
	Runner *canary.Runner
	// MaxBody bounds a request body in bytes; default 1 MiB.
	MaxBody int64
	// Timeout bounds one judgement; beyond it the answer is 422. Default
	// 30 s.
	Timeout time.Duration
	// Logger gets the server's faults (5xx); Registry the judgement and
	// error counters. Both default to discarding.
	Logger   *slog.Logger
	Registry *lib.Registry
}

// Canary serves POST /api/v1/canary/judge, POST /api/v1/canary/runs and
// GET /api/v1/canary/runs/{id} (api.md "Canary judgement").
type Canary struct {
	opts CanaryOptions
}

// NewCanary returns the canary endpoints.
func NewCanary(opts CanaryOptions) (*Canary, error) {
	if opts.Judge == nil || opts.Runner == nil {
		return nil, errors.New("api: canary needs a judge and a runner")
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	return &Canary{opts: opts}, nil
}

// Register adds the routes to mux.
func (c *Canary) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/canary/judge", c.judge)
	mux.HandleFunc("POST /api/v1/canary/runs", c.startRun)
	mux.HandleFunc("GET /api/v1/canary/runs/{id}", c.getRun)
}

// judge serves POST /api/v1/canary/judge: decode, judge within Timeout,
// answer the judgement. The decoder's errors name the field; the
// judgement's are classified by canaryStatus.
func (c *Canary) judge(w http.ResponseWriter, r *http.Request) {
	body, err := c.body(w, r)
	if err != nil {
		c.writeError(w, err)
		return
	}
	req, err := canary.DecodeRequest(body)
	if err != nil {
		c.writeError(w, err)
		return
	}
	// The timeout covers the judge's queries, not the body's upload,
	// which MaxBody bounds instead.
	ctx, cancel := context.WithTimeout(r.Context(), c.opts.Timeout)
	defer cancel()
	a, err := c.opts.Judge.Judge(ctx, req)
	if err != nil {
		c.writeError(w, err)
		return
	}
	c.opts.Registry.Counter("sextant.canary.judgements", "result", a.Result).Increment()
	writeJSON(w, http.StatusOK, a)
}

// startRun serves POST /api/v1/canary/runs: the run is stored and
// scheduled before the answer, so its id can be polled at once; the
// judgement happens later, on the runner's clock, not in this request.
func (c *Canary) startRun(w http.ResponseWriter, r *http.Request) {
	body, err := c.body(w, r)
	if err != nil {
		c.writeError(w, err)
		return
	}
	req, err := canary.DecodeRunRequest(body)
	if err != nil {
		c.writeError(w, err)
		return
	}
	run, err := c.opts.Runner.Start(r.Context(), req)
	if err != nil {
		c.writeError(w, err)
		return
	}
	// 201 with Location, as a REST client expects of a created record.
	w.Header().Set("Location", "/api/v1/canary/runs/"+run.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"id": run.ID})
}

// getRun serves GET /api/v1/canary/runs/{id}: the run's record as it
// stands (scheduled, judged, or failed). An unknown id is a 404.
func (c *Canary) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := c.opts.Runner.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		c.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// body reads the request body, bounded.
func (c *Canary) body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.opts.MaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &canary.FieldError{Field: "body", Msg: fmt.Sprintf("larger than %d bytes", c.opts.MaxBody), Err: err}
	case err != nil:
		return nil, &canary.FieldError{Field: "body", Msg: "could not be read: " + err.Error(), Err: err}
	}
	return b, nil
}

// canaryStatus maps an error of the canary endpoints to its status: a bad
// field is 400, a missing run 404, too many runs 429, a limit 422, an
// overloaded store 503; only failures of the server itself are 500.
func canaryStatus(err error) int {
	var fe *canary.FieldError
	var le *tsdb.LimitError
	switch {
	case errors.Is(err, canary.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, canary.ErrTooMany):
		return http.StatusTooManyRequests
	// A judgement too large or too slow to compute is the request's
	// size, not a fault: 422 names the limit so the caller narrows it.
	case errors.As(err, &le), errors.Is(err, context.DeadlineExceeded):
		return http.StatusUnprocessableEntity
	case errors.As(err, &fe):
		return http.StatusBadRequest
	case errors.Is(err, tsdb.ErrOverloaded), errors.Is(err, tsdb.ErrClosed), errors.Is(err, tsdb.ErrUnavailable):
		return http.StatusServiceUnavailable
	// A run record over the store's size (the cluster's state topic).
	case errors.Is(err, tsdb.ErrValueTooLarge):
		return http.StatusRequestEntityTooLarge
	// The client went away; nobody reads the answer, the counter does.
	case errors.Is(err, context.Canceled):
		return 499
	}
	// A metric's query the evaluator refused is the caller's to fix; a
	// store that failed under it is the server's, whatever wraps it.
	var me *canary.MetricError
	var se *stack.Error
	var ue *eval.UserError
	if errors.As(err, &me) && (errors.As(err, &se) || errors.As(err, &ue)) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers err in the API's error body (errorBody, the same as
// the graph API's), with the field, word and position, or limit that
// lets the caller fix the request; faults are logged with the error.
func (c *Canary) writeError(w http.ResponseWriter, err error) {
	code := canaryStatus(err)
	b := errorBody{Type: "error", Message: err.Error()}
	var fe *canary.FieldError
	var me *canary.MetricError
	var se *stack.Error
	var le *tsdb.LimitError
	switch {
	case errors.As(err, &fe):
		b.Param = fe.Field
	case errors.As(err, &me):
		b.Param = me.Field
	}
	if errors.As(err, &se) {
		b.Word, b.Position, b.Token = se.Word, &se.Pos, &se.Token
	}
	if errors.As(err, &le) {
		b.Limit = le.Limit
	} else if errors.Is(err, context.DeadlineExceeded) {
		// The deadline is the endpoint's own Timeout, not a store limit:
		// name it so, with the duration that was exceeded.
		b.Limit = "canary-time-limit"
		b.Message = fmt.Sprintf("judgement exceeds canary-time-limit of %s", c.opts.Timeout)
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if errors.Is(err, tsdb.ErrValueTooLarge) {
		b.Param = "body"
	}
	if code >= 500 {
		c.opts.Logger.Error("canary request failed", "err", err)
	}
	c.opts.Registry.Counter("sextant.canary.errors", "status", strconv.Itoa(code)).Increment()
	writeJSON(w, code, b)
}

// Webhook returns a canary.NotifyFunc that POSTs the run as JSON to its
// webhook URL with client (http.DefaultClient when nil); any status but
// 2xx is an error.
func Webhook(client *http.Client) canary.NotifyFunc {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, url string, run *canary.Run) error {
		b, err := json.Marshal(run)
		if err != nil {
			return fmt.Errorf("encode canary run: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("canary webhook: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "sextant-canary")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("canary webhook: %w", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		switch {
		case resp.StatusCode/100 == 2:
		case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
			// The receiver refused this payload; sending it again will
			// not change its mind.
			return fmt.Errorf("canary webhook: %s answered %s: %w", url, resp.Status, canary.ErrPermanent)
		default:
			return fmt.Errorf("canary webhook: %s answered %s", url, resp.Status)
		}
		return nil
	}
}
