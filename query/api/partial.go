package api

import (
	"net/http"

	"github.com/sextant-dev/sextant/tsdb"
)

// PartialHeader is the response header that flags an answer missing data:
// in cluster mode, a partition no store node answered for.
const PartialHeader = "X-Sextant-Partial"

// partialWarning is the warning of a partial answer in the Prometheus
// envelope.
const partialWarning = "partial answer: no store node answered for some partitions of the data"

// withPartial gives every request a tsdb.Partial tracker in its context
// (the fan-out querier marks it) and sets PartialHeader on the answer when
// the tracker is marked by the time the handler writes its headers; the
// handlers read it back with isPartial to flag the body too.
func withPartial(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, p := tsdb.WithPartial(r.Context())
		h(&partialWriter{ResponseWriter: w, p: p}, r.WithContext(ctx))
	}
}

// PartialMiddleware gives every request under h the partial tracker (one
// for both contracts: tsdb.Partial is tracing.Partial) and sets
// PartialHeader on the answer when a read under it was marked partial by
// the time the headers go out. A query node wraps its whole mux in it, so
// that every API says so, including those (UI, alerting) that do not know
// of it; the handlers of this package share the outer tracker.
func PartialMiddleware(h http.Handler) http.Handler { return withPartial(h.ServeHTTP) }

// partialWriter sets PartialHeader before the headers go out.
type partialWriter struct {
	http.ResponseWriter
	p           *tsdb.Partial
	wroteHeader bool
}

// WriteHeader implements http.ResponseWriter.
func (w *partialWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if w.p.Is() {
			w.Header().Set(PartialHeader, "true")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *partialWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (the
// streams flush and hijack websockets through it).
func (w *partialWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush implements http.Flusher for the SSE streams: the headers go out
// first, then a best-effort flush, as http.Flusher's contract allows.
func (w *partialWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// isPartial reports whether the answer being written through w misses data.
func isPartial(w http.ResponseWriter) bool {
	pw, ok := w.(*partialWriter)
	return ok && pw.p.Is()
}

// partialMux registers handlers on a ServeMux wrapped in withPartial.
type partialMux struct{ mux *http.ServeMux }

// HandleFunc registers h for pattern, wrapped in withPartial.
func (m partialMux) HandleFunc(pattern string, h http.HandlerFunc) {
	m.mux.HandleFunc(pattern, withPartial(h))
}
