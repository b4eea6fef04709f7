package ui

import (
	"net/http"
	"strings"
)

// CORS wraps h so the origins allowed to open streams (same origin and
// StreamOptions.AllowedOrigins, the --allowed-origins flag) may also call
// the other APIs from a browser: a request from an allowed foreign origin
// gets Access-Control-Allow-Origin, and its preflight (OPTIONS with
// Access-Control-Request-Method) is answered 204 without reaching h.
// Requests from other origins pass through unchanged, without CORS
// headers, so the browser withholds the answer.
func (s *Stream) CORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !s.checkOrigin(r) {
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				hd.Set("Access-Control-Allow-Headers", req)
			}
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		hd.Set("Access-Control-Expose-Headers", strings.Join([]string{"X-Sextant-Partial", "Retry-After"}, ", "))
		h.ServeHTTP(w, r)
	})
}
