package ui

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

func newTestUI(t *testing.T) (*UI, *http.ServeMux) {
	t.Helper()
	u, err := New(Options{KV: tsdbtest.NewKV()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	u.Register(mux)
	return u, mux
}

func do(t *testing.T, mux http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Error("New without KV succeeded")
	}
}

func TestServeApp(t *testing.T) {
	t.Parallel()
	_, mux := newTestUI(t)
	if w := do(t, mux, "GET", "/", ""); w.Code != 302 || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET / = %d %q", w.Code, w.Header().Get("Location"))
	}
	shell, _ := assets.ReadFile("assets/index.html")
	for _, p := range []string{"/ui/", "/ui/explore", "/ui/dashboards/x", "/ui/traces/abc", "/ui/traces/compare", "/ui/alerts/r1", "/ui/no/such/view"} {
		w := do(t, mux, "GET", p, "")
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), shell) {
			t.Errorf("GET %s = %d, want the app shell", p, w.Code)
		}
		if csp := w.Header().Get("Content-Security-Policy"); csp != CSP {
			t.Errorf("GET %s CSP = %q", p, csp)
		}
	}
	for _, p := range []string{"/ui/assets/missing.js", "/ui/assets/index.html"} {
		if w := do(t, mux, "GET", p, ""); w.Code != 404 {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
	}
	// gzip when accepted, identical bytes once decompressed; 304 on the ETag.
	raw := do(t, mux, "GET", "/ui/assets/chart.js", "")
	gz := do(t, mux, "GET", "/ui/assets/chart.js", "", "Accept-Encoding", "br, gzip")
	if raw.Header().Get("Content-Encoding") != "" || gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("encodings %q, %q", raw.Header().Get("Content-Encoding"), gz.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, raw.Body.Bytes()) || raw.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("gzip body differs, or type %q", raw.Header().Get("Content-Type"))
	}
	if w := do(t, mux, "GET", "/ui/assets/chart.js", "", "If-None-Match", raw.Header().Get("ETag")); w.Code != 304 {
		t.Errorf("conditional GET = %d, want 304", w.Code)
	}
	if w := do(t, mux, "GET", "/ui/assets/chart.js", "", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}

// TestAssetsAreSafe checks the rules the browser cannot: no inline script
// or style in the shell, no innerHTML/outerHTML/insertAdjacentHTML or
// document.write anywhere, no third-party URL.
func TestAssetsAreSafe(t *testing.T) {
	t.Parallel()
	u, _ := newTestUI(t)
	for name, a := range u.assets {
		s := string(a.raw)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://", "setAttribute('style'", "style=\""} {
			if strings.Contains(s, bad) && !(name == "icon.svg" && bad == "http://") {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
	shell := string(u.shell.raw)
	if strings.Contains(shell, "<script>") || strings.Contains(shell, "<style") || strings.Contains(shell, " on") && strings.Contains(shell, "onclick") {
		t.Error("index.html has inline script or style")
	}
}

func TestDashboardsAPI(t *testing.T) {
	t.Parallel()
	_, mux := newTestUI(t)
	if w := do(t, mux, "GET", "/api/v1/dashboards", ""); w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"dashboards":[]}` {
		t.Fatalf("empty list = %d %s", w.Code, w.Body)
	}
	d := `{"title":"Playback","variables":[{"name":"app","key":"nf.app"}],"panels":[{"title":"errors","q":"name,ipc.server.call,:eq,nf.app,$app,:eq,:and,:sum","s":"e-1h","e":"now","step":"","type":"line","w":6,"h":4}]}`
	if w := do(t, mux, "PUT", "/api/v1/dashboards/playback", d); w.Code != 200 {
		t.Fatalf("PUT = %d %s", w.Code, w.Body)
	}
	w := do(t, mux, "GET", "/api/v1/dashboards/playback", "")
	var got, want Dashboard
	json.Unmarshal(w.Body.Bytes(), &got)
	json.Unmarshal([]byte(d), &want)
	if w.Code != 200 || got.Title != want.Title || len(got.Panels) != 1 || got.Panels[0] != want.Panels[0] || got.Variables[0] != want.Variables[0] {
		t.Errorf("GET = %d %s", w.Code, w.Body)
	}
	if w := do(t, mux, "GET", "/api/v1/dashboards", ""); !strings.Contains(w.Body.String(), `{"id":"playback","title":"Playback","panels":1}`) {
		t.Errorf("list = %s", w.Body)
	}
	if w := do(t, mux, "DELETE", "/api/v1/dashboards/playback", ""); w.Code != 204 {
		t.Errorf("DELETE = %d", w.Code)
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
		param              string
	}{
		{"GET", "/api/v1/dashboards/playback", "", 404, "id"},
		{"DELETE", "/api/v1/dashboards/playback", "", 404, "id"},
		{"GET", "/api/v1/dashboards/-bad", "", 400, "id"},
		{"PUT", "/api/v1/dashboards/x", `{"title":1}`, 400, "title"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t","panels":[{"q":""}]}`, 400, "panels[0].q"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t","panels":[{"q":"a","type":"pie"}]}`, 400, "panels[0].type"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t","panels":[{"q":"a","w":13}]}`, 400, "panels[0].w"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t","variables":[{"name":"1x","key":"k"}]}`, 400, "variables[0].name"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t","extra":1}`, 400, "body"},
		{"PUT", "/api/v1/dashboards/x", `{"title":"t"} {}`, 400, "body"},
		{"PUT", "/api/v1/dashboards/x", `[`, 400, "body"},
		{"PUT", "/api/v1/dashboards/x", strings.Repeat(" ", MaxDashboardBytes+10), 413, "body"},
	} {
		w := do(t, mux, tc.method, tc.path, tc.body)
		var e struct{ Type, Message, Param string }
		json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != tc.code || e.Type != "error" || e.Param != tc.param {
			t.Errorf("%s %s %.40s = %d %s, want %d naming %s", tc.method, tc.path, tc.body, w.Code, w.Body, tc.code, tc.param)
		}
	}
}

func TestDecodeDashboardFieldError(t *testing.T) {
	t.Parallel()
	_, err := DecodeDashboard([]byte(`{"panels":[{"q":"x","h":99}]}`))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "panels[0].h" {
		t.Errorf("err = %v", err)
	}
}

func FuzzDecodeDashboard(f *testing.F) {
	for _, s := range []string{
		`{"title":"a","variables":[{"name":"v","key":"k","query":"name,x,:eq"}],"panels":[{"title":"p","q":"name,x,:eq","s":"e-1h","e":"now","step":"1m","type":"area","w":12,"h":4}]}`,
		`{}`, `null`, `[]`, `{"panels":[null]}`, `{"title":"\u0000"}`, `{"panels":[{"q":"x","w":-1}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDashboard(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error %v is not a FieldError naming a field", err)
			}
			return
		}
		// What validates survives a round trip.
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDashboard(out); err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
	})
}

func TestPublic(t *testing.T) {
	t.Parallel()
	f := func(method, path string, want bool) {
		t.Helper()
		if got := Public(httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("Public(%s %s) = %v, want %v", method, path, got, want)
		}
	}
	f("GET", "/", true)
	f("GET", "/ui", true)
	f("GET", "/ui/traces/abc", true)
	f("HEAD", "/ui/assets/app.js", true)
	f("POST", "/ui/", false)
	f("GET", "/uix", false)
	f("GET", "/api/v1/dashboards", false)
	f("GET", "/metrics", false)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	_, mux := newTestUI(t)
	f := func(q string, want Check) {
		t.Helper()
		w := do(t, mux, "GET", "/api/v1/ui/check?q="+url.QueryEscape(q), "")
		var got Check
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got != want {
			t.Errorf("check %q = %d %s, want %+v", q, w.Code, w.Body, want)
		}
	}
	f("name,sps,:eq,(,nf.app,),:by", Check{OK: true})
	f("name,requests,:eq,:summ", Check{Message: "q: unknown word ':summ' (at position 18, token 3)", Word: ":summ", Position: 18, Token: 3})
	f(strings.Repeat("a,", MaxCheckBytes), Check{Message: "q: 32768 bytes long, limit is 16384", Position: -1, Token: -1})
	partial := func(q string, ok bool) {
		t.Helper()
		w := do(t, mux, "GET", "/api/v1/ui/check?partial=1&q="+url.QueryEscape(q), "")
		var got Check
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || got.OK != ok {
			t.Errorf("partial check %q = %d %s, want ok %v", q, w.Code, w.Body, ok)
		}
	}
	partial("name,sps,:eq", true)
	partial("name,sps,:eq,(,nf.app", false) // as the completion API: a list still open does not run
	partial("name,sps,:eq,:summ", false)
	partial("", true)
}

func FuzzCheckExpr(f *testing.F) {
	for _, s := range []string{"name,sps,:eq,:sum", "name,x,:eq,:summ", "(,", ")", ":dup", "a,b,:re", "1,2,:add,:legend"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		c, p := CheckExpr(q), CheckProgram(q)
		if !c.OK && c.Message == "" || !p.OK && p.Message == "" {
			t.Fatalf("CheckExpr(%q) failed without a message", q)
		}
		if c.Word != "" && (c.Position < 0 || c.Position > len(q)) {
			t.Fatalf("CheckExpr(%q) position %d outside the expression", q, c.Position)
		}
	})
}
