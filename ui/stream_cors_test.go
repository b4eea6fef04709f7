package ui_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/ui"
)

// TestCORS: allowed foreign origins get CORS headers and preflights, others
// none; same-origin requests pass.
func TestCORS(t *testing.T) {
	t.Parallel()
	store := querytest.Open(t, step, 0)
	ev, err := live.New(live.Options{Querier: store, StorageStep: step})
	if err != nil {
		t.Fatal(err)
	}
	st, err := ui.NewStream(ui.StreamOptions{Live: ev, AllowedOrigins: []string{"https://dash.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reached := 0
	h := st.CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++ }))
	do := func(method, origin string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://sextant.example.com/api/v1/graph", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("GET", "https://dash.example.com"); w.Header().Get("Access-Control-Allow-Origin") != "https://dash.example.com" || reached != 1 {
		t.Errorf("allowed origin: headers %v, reached %d", w.Header(), reached)
	}
	if w := do("OPTIONS", "https://dash.example.com", "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type"); w.Code != 204 ||
		w.Header().Get("Access-Control-Allow-Headers") != "content-type" || reached != 1 {
		t.Errorf("preflight: %d %v, reached %d", w.Code, w.Header(), reached)
	}
	if w := do("GET", "https://evil.example.com"); w.Header().Get("Access-Control-Allow-Origin") != "" || reached != 2 {
		t.Errorf("foreign origin: headers %v, reached %d", w.Header(), reached)
	}
	if w := do("GET", ""); w.Header().Get("Access-Control-Allow-Origin") != "" || reached != 3 {
		t.Errorf("no origin: headers %v", w.Header())
	}
}
