package main

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// fault is the failure mode the demo injects.
type fault int32

const (
	faultNone fault = iota
	faultCatalogSlow
	faultPlaybackErrors
	faultRecsDown
)

var faults = []string{"none", "catalog-slow", "playback-errors", "recs-down"}

func faultNames() string { return strings.Join(faults, ", ") }

func parseFault(s string) (fault, bool) {
	for i, f := range faults {
		if f == s {
			return fault(i), true
		}
	}
	return 0, false
}

func (f fault) String() string { return faults[f] }

// faultSwitch is the current fault, shared by every service.
type faultSwitch struct{ v atomic.Int32 }

func (s *faultSwitch) get() fault  { return fault(s.v.Load()) }
func (s *faultSwitch) set(f fault) { s.v.Store(int32(f)) }

// ServeHTTP shows the fault (GET) or switches it (POST with the name as
// the body or ?name=).
func (s *faultSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		name := r.URL.Query().Get("name")
		if name == "" {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 64))
			name = strings.TrimSpace(string(b))
		}
		f, ok := parseFault(name)
		if !ok {
			http.Error(w, "unknown fault "+quote(name)+"; want one of "+faultNames(), http.StatusBadRequest)
			return
		}
		s.set(f)
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, s.get().String()+"\n")
}

func quote(s string) string { return `"` + s + `"` }
