package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"

	"github.com/sextant-dev/sextant/tsdb"
)

// Limits of a saved dashboard.
const (
	// MaxDashboardBytes is the largest dashboard body accepted.
	MaxDashboardBytes = 1 << 20
	// MaxPanels is the most panels a dashboard may have.
	MaxPanels = 200
	// MaxVariables is the most variables a dashboard may have.
	MaxVariables = 50
	// MaxDashboards is the most dashboards the list returns.
	MaxDashboards = 10_000
)

// kvPrefix is where dashboards live in the key/value store.
const kvPrefix = "ui/dashboards/"

// validID is the form of a dashboard id in a URL.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Dashboard is a saved dashboard (api.md "Web UI").
type Dashboard struct {
	Title     string     `json:"title"`
	Variables []Variable `json:"variables"`
	Panels    []Panel    `json:"panels"`
}

// Variable is a dashboard variable: $name in the panels' expressions is
// replaced by the chosen value, and the choices are the values of tag Key
// (among the series matching Query, when set).
type Variable struct {
	Name    string `json:"name"`
	Key     string `json:"key"`
	Query   string `json:"query,omitempty"`
	Default string `json:"default,omitempty"`
}

// Panel is one chart of a dashboard: an ASL expression with its own time
// range, step and size in grid cells.
type Panel struct {
	Title string `json:"title"`
	Q     string `json:"q"`
	S     string `json:"s"`
	E     string `json:"e"`
	Step  string `json:"step"`
	Type  string `json:"type"`
	W     int    `json:"w"`
	H     int    `json:"h"`
}

// FieldError is a dashboard that does not validate: Field names the JSON
// field ("panels[2].q").
type FieldError struct {
	Field string
	Msg   string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// panelTypes are the kinds of panel the UI draws.
var panelTypes = map[string]bool{"": true, "line": true, "area": true, "stack": true, "table": true, "stat": true}

// DecodeDashboard parses and validates a dashboard body. The error is a
// *FieldError naming the bad field.
func DecodeDashboard(b []byte) (*Dashboard, error) {
	if len(b) > MaxDashboardBytes {
		return nil, &FieldError{"body", fmt.Sprintf("%d bytes, limit is %d", len(b), MaxDashboardBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d Dashboard
	if err := dec.Decode(&d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, &FieldError{te.Field, fmt.Sprintf("want %s, got %s", te.Type, te.Value)}
		}
		return nil, &FieldError{"body", "invalid JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &FieldError{"body", "more than one JSON value"}
	}
	if len(d.Title) > 256 {
		return nil, &FieldError{"title", "longer than 256 bytes"}
	}
	if len(d.Variables) > MaxVariables {
		return nil, &FieldError{"variables", fmt.Sprintf("%d variables, limit is %d", len(d.Variables), MaxVariables)}
	}
	for i, v := range d.Variables {
		if !validVarName.MatchString(v.Name) {
			return nil, &FieldError{fmt.Sprintf("variables[%d].name", i), fmt.Sprintf("%q is not a name (letters, digits, _)", v.Name)}
		}
		if v.Key == "" {
			return nil, &FieldError{fmt.Sprintf("variables[%d].key", i), "required"}
		}
	}
	if len(d.Panels) > MaxPanels {
		return nil, &FieldError{"panels", fmt.Sprintf("%d panels, limit is %d", len(d.Panels), MaxPanels)}
	}
	for i, p := range d.Panels {
		f := func(name string) string { return fmt.Sprintf("panels[%d].%s", i, name) }
		switch {
		case p.Q == "":
			return nil, &FieldError{f("q"), "required"}
		case len(p.Q) > 16<<10:
			return nil, &FieldError{f("q"), "longer than 16 KiB"}
		case !panelTypes[p.Type]:
			return nil, &FieldError{f("type"), fmt.Sprintf("unknown type %q; use line, area, stack, table or stat", p.Type)}
		case p.W < 0 || p.W > 12:
			return nil, &FieldError{f("w"), fmt.Sprintf("%d is not between 0 and 12 grid columns", p.W)}
		case p.H < 0 || p.H > 24:
			return nil, &FieldError{f("h"), fmt.Sprintf("%d is not between 0 and 24 grid rows", p.H)}
		}
	}
	if d.Variables == nil {
		d.Variables = []Variable{}
	}
	if d.Panels == nil {
		d.Panels = []Panel{}
	}
	return &d, nil
}

var validVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// summary is one row of the dashboards list.
type summary struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Panels int    `json:"panels"`
}

// listDashboards serves GET /api/v1/dashboards: {"dashboards":[{id,title,panels}]}, by id.
func (u *UI) listDashboards(w http.ResponseWriter, r *http.Request) {
	list := []summary{}
	err := u.opts.KV.Scan(r.Context(), kvPrefix, func(key string, value []byte) error {
		if len(list) >= MaxDashboards {
			return errStop
		}
		var d Dashboard
		if err := json.Unmarshal(value, &d); err != nil {
			u.opts.Logger.Warn("skip unreadable dashboard", "dashboard", key, "err", err)
			return nil
		}
		list = append(list, summary{ID: key[len(kvPrefix):], Title: d.Title, Panels: len(d.Panels)})
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		u.serverError(w, "list dashboards", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"dashboards": list})
}

var errStop = errors.New("stop")

func (u *UI) getDashboard(w http.ResponseWriter, r *http.Request) {
	id, ok := u.dashboardID(w, r)
	if !ok {
		return
	}
	b, err := u.opts.KV.Get(r.Context(), kvPrefix+id)
	if errors.Is(err, tsdb.ErrNotFound) {
		writeError(w, http.StatusNotFound, "dashboard "+id+" not found", "id")
		return
	}
	if err != nil {
		u.serverError(w, "read dashboard", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// putDashboard serves PUT /api/v1/dashboards/{id}: it validates the body
// and stores it (durable before the answer).
func (u *UI) putDashboard(w http.ResponseWriter, r *http.Request) {
	id, ok := u.dashboardID(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDashboardBytes+1))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: longer than %d bytes", MaxDashboardBytes), "body")
		return
	}
	d, err := DecodeDashboard(body)
	if err != nil {
		var fe *FieldError
		errors.As(err, &fe)
		writeError(w, http.StatusBadRequest, err.Error(), fe.Field)
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		u.serverError(w, "encode dashboard", err)
		return
	}
	if err := u.opts.KV.Put(r.Context(), kvPrefix+id, b); err != nil {
		u.serverError(w, "store dashboard", err)
		return
	}
	u.m.saves.Increment()
	u.opts.Logger.Info("dashboard saved", "dashboard", id)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (u *UI) deleteDashboard(w http.ResponseWriter, r *http.Request) {
	id, ok := u.dashboardID(w, r)
	if !ok {
		return
	}
	if _, err := u.opts.KV.Get(r.Context(), kvPrefix+id); errors.Is(err, tsdb.ErrNotFound) {
		writeError(w, http.StatusNotFound, "dashboard "+id+" not found", "id")
		return
	}
	if err := u.opts.KV.Put(r.Context(), kvPrefix+id, nil); err != nil {
		u.serverError(w, "delete dashboard", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (u *UI) dashboardID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !validID.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("id: %q is not a dashboard id (letters, digits, '.', '_', '-'; at most 128)", id), "id")
		return "", false
	}
	return id, true
}

// serverError answers a failure of the store: 503 with Retry-After when it
// is unreachable (in cluster mode, Kafka: the shared state topic), 413
// naming the body when the record is larger than it holds, else 500.
func (u *UI) serverError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, tsdb.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, what+": "+err.Error(), "")
		return
	case errors.Is(err, tsdb.ErrValueTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body: "+err.Error(), "body")
		return
	}
	u.opts.Logger.Error(what, "err", err)
	writeError(w, http.StatusInternalServerError, what+": "+err.Error(), "")
}

func writeError(w http.ResponseWriter, code int, msg, param string) {
	v := map[string]string{"type": "error", "message": msg}
	if param != "" {
		v["param"] = param
	}
	writeJSON(w, code, v)
}
