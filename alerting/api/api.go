package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/alerting"
	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

// Options configure the API.
type Options struct {
	Manager  *alerting.Manager
	Silences *alerting.Silences
	Log      *alerting.DeliveryLog
	// Reload re-reads the rules directory (and the alerting config); a
	// bad file is a *alerting.RuleError and leaves the old rules.
	Reload func(ctx context.Context) error
	// Backtest evaluates a rule over [start, end) ms.
	Backtest func(ctx context.Context, r *alerting.Rule, start, end int64) (*alerting.BacktestResult, error)
	// Step is the storage step (ms) rules are checked against.
	Step int64
	// Refresh, when set, runs before every read of rules, alerts and
	// silences: in cluster mode it reads what other query nodes changed
	// in the shared store (Manager.Refresh, Silences.Refresh), so a read
	// sees every change acknowledged before it. An error is logged and the
	// read answers from what is known.
	Refresh func(ctx context.Context) error
	// MaxBody bounds request bodies; default 1 MiB.
	MaxBody  int64
	Now      func() time.Time
	Logger   *slog.Logger
	Registry *lib.Registry
}

// API serves the alerting endpoints.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Manager == nil || opts.Silences == nil {
		return nil, errors.New("alerting/api: Manager and Silences are required")
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{opts: opts}, nil
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/alerting/rules", a.fresh(a.rules))
	mux.HandleFunc("PUT /api/v1/alerting/rules/{group}", a.putGroup)
	mux.HandleFunc("DELETE /api/v1/alerting/rules/{group}", a.fresh(a.deleteGroup))
	mux.HandleFunc("POST /api/v1/alerting/rules/check", a.check)
	mux.HandleFunc("POST /api/v1/alerting/reload", a.reload)
	mux.HandleFunc("GET /api/v1/alerting/alerts", a.fresh(a.alerts))
	mux.HandleFunc("GET /api/v1/alerting/history", a.history)
	mux.HandleFunc("POST /api/v1/alerting/backtest", a.backtest)
	mux.HandleFunc("GET /api/v1/alerting/silences", a.fresh(a.silences))
	mux.HandleFunc("POST /api/v1/alerting/silences", a.postSilence)
	mux.HandleFunc("DELETE /api/v1/alerting/silences/{id}", a.deleteSilence)
	mux.HandleFunc("POST /api/v1/alerting/silences/preview", a.fresh(a.preview))
	mux.HandleFunc("GET /api/v1/alerting/notifications", a.notifications)
	mux.HandleFunc("GET /api/v1/rules", a.fresh(a.promRules))
	mux.HandleFunc("GET /api/v1/alerts", a.fresh(a.promAlerts))
}

// errorBody is every JSON error.
type errorBody struct {
	Type     string `json:"type"`
	Message  string `json:"message"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Field    string `json:"field,omitempty"`
	Word     string `json:"word,omitempty"`
	Position *int   `json:"position,omitempty"`
}

// badRequest marks user input errors found in the handlers.
type badRequest struct{ field, msg string }

func (e *badRequest) Error() string { return e.field + ": " + e.msg }

// writeError maps an error to its status: the one place that does.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := errorBody{Type: "error", Message: err.Error()}
	status := http.StatusInternalServerError
	var re *alerting.RuleError
	var fe *alerting.FieldError
	var br *badRequest
	var le *tsdb.LimitError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		status = http.StatusBadRequest
		body.File, body.Line, body.Field, body.Word = re.File, re.Line, re.Field, re.Word
		if re.Word != "" {
			p := re.Pos
			body.Position = &p
		}
	case errors.As(err, &fe), errors.As(err, &br):
		status = http.StatusBadRequest
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &le):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, alerting.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	// The store did not take the write: in cluster mode, Kafka is
	// unreachable (the shared state topic), or the record is too large
	// for it.
	case errors.Is(err, tsdb.ErrUnavailable):
		status = http.StatusServiceUnavailable
	case errors.Is(err, tsdb.ErrValueTooLarge):
		status = http.StatusRequestEntityTooLarge
		body.Field = "body"
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if status >= 500 {
		a.opts.Logger.Error("alerting api", "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

// fresh runs Options.Refresh before h.
func (a *API) fresh(h http.HandlerFunc) http.HandlerFunc {
	if a.opts.Refresh == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.opts.Refresh(r.Context()); err != nil && r.Context().Err() == nil {
			a.opts.Logger.Warn("refresh alerting state", "path", r.URL.Path, "err", err)
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *API) body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.opts.MaxBody))
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, &badRequest{"body", "empty"}
	}
	return b, nil
}

// ruleJSON is a rule with its state.
type ruleJSON struct {
	*alerting.Rule
	Health    string         `json:"health"`
	LastError string         `json:"lastError,omitempty"`
	LastEval  *time.Time     `json:"lastEvaluation,omitempty"`
	Instances []instanceJSON `json:"instances"`
}

type instanceJSON struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	State       alerting.State    `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	Value       jsonFloat         `json:"value"`
}

type groupJSON struct {
	Name     string     `json:"name"`
	File     string     `json:"file,omitempty"`
	Interval string     `json:"interval"`
	Rules    []ruleJSON `json:"rules"`
}

// jsonFloat writes NaN and infinities as null.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func msTime(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

func (a *API) rules(w http.ResponseWriter, r *http.Request) {
	var out []groupJSON
	for _, st := range a.opts.Manager.Rules() {
		if len(out) == 0 || out[len(out)-1].Name != st.Group {
			out = append(out, groupJSON{Name: st.Group, File: st.File, Interval: alerting.Duration(st.Interval * 1e6).String(), Rules: []ruleJSON{}})
		}
		rj := ruleJSON{Rule: st.Rule, Health: st.Health, LastError: st.LastError, LastEval: msTime(st.LastEval), Instances: []instanceJSON{}}
		for _, in := range st.Instances {
			if in.State == alerting.Resolved {
				continue
			}
			rj.Instances = append(rj.Instances, instanceJSON{Labels: in.Labels, Annotations: in.Annotations, State: displayState(in), ActiveAt: msTime(in.ActiveAt), Value: jsonFloat(in.Value)})
		}
		out[len(out)-1].Rules = append(out[len(out)-1].Rules, rj)
	}
	if out == nil {
		out = []groupJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
}

func displayState(in *alerting.Instance) alerting.State {
	if in.State == alerting.Firing && (in.Kind == alerting.NoData || in.Kind == alerting.Error) {
		return in.Kind
	}
	return in.State
}

func (a *API) putGroup(w http.ResponseWriter, r *http.Request) {
	b, err := a.body(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("group")
	g, err := alerting.ParseGroup(b, alerting.ParseOptions{Step: a.opts.Step})
	if err != nil {
		var re *alerting.RuleError
		if errors.As(err, &re) && re.Field == "name" && strings.Contains(re.Msg, "without a name") {
			// The name may come from the path alone.
			g, err = alerting.ParseGroup(withName(b, name), alerting.ParseOptions{Step: a.opts.Step})
		}
		if err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if g.Name != name {
		a.writeError(w, r, &badRequest{"name", fmt.Sprintf("group name %q differs from the path's %q", g.Name, name)})
		return
	}
	if err := a.opts.Manager.PutGroup(r.Context(), g); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "group": name})
}

// withName adds a name to a JSON or YAML group body.
func withName(b []byte, name string) []byte {
	s := strings.TrimSpace(string(b))
	q, _ := json.Marshal(name)
	if strings.HasPrefix(s, "{") {
		return []byte(`{"name":` + string(q) + `,` + strings.TrimPrefix(s, "{"))
	}
	return []byte("name: " + string(q) + "\n" + s)
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.opts.Manager.DeleteGroup(r.Context(), r.PathValue("group")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// check validates a rule file (with groups), a group or one rule.
func (a *API) check(w http.ResponseWriter, r *http.Request) {
	b, err := a.body(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	opts := alerting.ParseOptions{Step: a.opts.Step}
	s := string(b)
	var n int
	switch {
	case strings.Contains(s, "groups"):
		var gs []*alerting.Group
		gs, err = alerting.ParseFile(r.URL.Query().Get("file"), b, opts)
		for _, g := range gs {
			n += len(g.Rules)
		}
	case strings.Contains(s, "rules"):
		var g *alerting.Group
		if g, err = alerting.ParseGroup(b, opts); err == nil {
			n = len(g.Rules)
		}
	default:
		_, err = alerting.ParseRule(b, opts)
		n = 1
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "rules": n})
}

func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	if a.opts.Reload == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if err := a.opts.Reload(r.Context()); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type alertJSON struct {
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       alerting.State    `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       jsonFloat         `json:"value"`
}

func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	out := []alertJSON{}
	for _, al := range a.opts.Manager.Active() {
		ann := al.Annotations
		if ann == nil {
			ann = map[string]string{}
		}
		out = append(out, alertJSON{Rule: al.Rule, Labels: al.Labels, Annotations: ann, State: al.State,
			ActiveAt: time.UnixMilli(al.ActiveAt).UTC(), Value: jsonFloat(al.Value)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}

func (a *API) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := a.opts.Now()
	end, err := parseTime(q.Get("e"), "e", now, now)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	start, err := parseTime(q.Get("s"), "s", now, end.Add(-24*time.Hour))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	trs, err := a.opts.Manager.History(r.Context(), q.Get("rule"), start.UnixMilli(), end.UnixMilli()+1)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if trs == nil {
		trs = []alerting.Transition{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"transitions": trs})
}

func (a *API) backtest(w http.ResponseWriter, r *http.Request) {
	b, err := a.body(w, r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var req struct {
		Rule json.RawMessage `json:"rule"`
		S    string          `json:"s"`
		E    string          `json:"e"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		a.writeError(w, r, &badRequest{"body", "bad JSON: " + err.Error()})
		return
	}
	if len(req.Rule) == 0 {
		a.writeError(w, r, &badRequest{"rule", "missing"})
		return
	}
	rule, err := alerting.ParseRule(req.Rule, alerting.ParseOptions{Step: a.opts.Step})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	now := a.opts.Now()
	end, err := parseTime(req.E, "e", now, now)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	start, err := parseTime(req.S, "s", now, end.Add(-24*time.Hour))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.opts.Backtest == nil {
		a.writeError(w, r, errors.New("backtest is not configured"))
		return
	}
	res, err := a.opts.Backtest(r.Context(), rule, start.UnixMilli(), end.UnixMilli())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) notifications(w http.ResponseWriter, r *http.Request) {
	if a.opts.Log == nil {
		writeJSON(w, http.StatusOK, map[string]any{"notifications": []any{}})
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			a.writeError(w, r, &badRequest{"limit", "want a positive integer"})
			return
		}
		limit = n
	}
	ds, err := a.opts.Log.List(r.Context(), time.Time{}, limit)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if ds == nil {
		ds = []alerting.Delivery{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": ds})
}

// parseTime reads RFC 3339, Unix seconds or ms, "now", or now minus a
// duration ("now-1h", "-1h", "e-1h" for s).
func parseTime(s, field string, now, def time.Time) (time.Time, error) {
	switch {
	case s == "":
		return def, nil
	case s == "now" || s == "e":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 100_000_000_000 {
			return time.Unix(n, 0), nil
		}
		return time.UnixMilli(n), nil
	}
	rel := s
	for _, p := range []string{"now", "e"} {
		rel = strings.TrimPrefix(rel, p)
	}
	if strings.HasPrefix(rel, "-") {
		d, err := alerting.ParseDuration(rel[1:])
		if err == nil {
			return now.Add(-time.Duration(d)), nil
		}
	}
	return time.Time{}, &badRequest{field, fmt.Sprintf("bad time %q (want RFC 3339, Unix seconds or ms, now or now-1h)", s)}
}
