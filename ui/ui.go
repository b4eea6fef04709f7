package ui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every UI response: scripts, styles
// and connections only to the server's own origin; no inline script or
// style attribute, no plugin, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure the UI.
type Options struct {
	// KV stores saved dashboards. Required.
	KV tsdb.KV
	// Status is shown on the status page (build, settings in force); it is
	// served as JSON at /api/v1/status. Optional.
	Status func() any
	// Logger receives the UI's logs. Default: discard.
	Logger *slog.Logger
	// Registry receives the UI's self-metrics. Default: a private one.
	Registry *lib.Registry
}

func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{Logger: o.Logger})
	}
}

// Validate reports a missing required option.
func (o *Options) Validate() error {
	if o.KV == nil {
		return errors.New("ui: Options.KV is required")
	}
	return nil
}

// asset is one embedded file, ready to serve.
type asset struct {
	ctype string
	etag  string
	raw   []byte
	gz    []byte // nil when compression does not pay
}

// UI serves the web application and the dashboards API.
type UI struct {
	opts   Options
	assets map[string]*asset // by path under assets/
	shell  *asset            // index.html, the answer to every deep link
	m      struct {
		requests *lib.Counter
		saves    *lib.Counter
	}
}

// New returns the UI; it compresses the embedded assets once.
func New(opts Options) (*UI, error) {
	opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	u := &UI{opts: opts, assets: map[string]*asset{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		a, err := newAsset(p, b)
		if err != nil {
			return err
		}
		u.assets[strings.TrimPrefix(p, "assets/")] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ui: load assets: %w", err)
	}
	if u.shell = u.assets["index.html"]; u.shell == nil {
		return nil, errors.New("ui: assets/index.html is missing")
	}
	u.m.requests = opts.Registry.Counter("sextant.ui.requests")
	u.m.saves = opts.Registry.Counter("sextant.ui.dashboardSaves")
	return u, nil
}

func newAsset(p string, b []byte) (*asset, error) {
	ctype := mime.TypeByExtension(path.Ext(p))
	switch path.Ext(p) {
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	sum := sha256.Sum256(b)
	a := &asset{ctype: ctype, raw: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	if !strings.HasPrefix(ctype, "image/png") {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(b); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		if buf.Len() < len(b) {
			a.gz = buf.Bytes()
		}
	}
	return a, nil
}

// Register adds the UI's routes to mux: GET / (a redirect to /ui/), the
// application under /ui/, and the dashboards API.
func (u *UI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /ui/{path...}", u.serveApp)
	mux.HandleFunc("GET /api/v1/dashboards", u.listDashboards)
	mux.HandleFunc("GET /api/v1/dashboards/{id}", u.getDashboard)
	mux.HandleFunc("PUT /api/v1/dashboards/{id}", u.putDashboard)
	mux.HandleFunc("DELETE /api/v1/dashboards/{id}", u.deleteDashboard)
	mux.HandleFunc("GET /api/v1/status", u.status)
	mux.HandleFunc("GET /api/v1/ui/check", u.check)
}

// Public reports whether r asks for the UI's static application (GET or
// HEAD of /, /ui or anything under /ui/): the app shell and its assets,
// which hold no data. A server that requires a token lets these through,
// so a browser can load the page that then asks for the token; every API
// call the page makes carries it.
func Public(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p == "/" || p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// serveApp serves an asset under /ui/assets/, and the app shell for every
// other path (the deep links /ui/explore, /ui/traces/{id}, ...): the
// application routes in the browser.
func (u *UI) serveApp(w http.ResponseWriter, r *http.Request) {
	u.m.requests.Increment()
	p := r.PathValue("path")
	a, shell := u.shell, true
	if rest, ok := strings.CutPrefix(p, "assets/"); ok {
		if a, shell = u.assets[rest], false; a == nil || rest == "index.html" {
			http.NotFound(w, r)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	if shell {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "max-age=300, must-revalidate")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.raw
	if a.gz != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// status serves GET /api/v1/status: what Options.Status returns.
func (u *UI) status(w http.ResponseWriter, _ *http.Request) {
	var v any = map[string]any{}
	if u.opts.Status != nil {
		v = u.opts.Status()
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"type":"error","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
