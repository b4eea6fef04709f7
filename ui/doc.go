// Package ui is Sextant's web UI: the static application (plain ES modules,
// CSS and canvas charts, embedded with go:embed, no build step and no
// third-party JavaScript) served at /ui/ with deep links falling back to
// the app shell, and the dashboards API that stores saved dashboards in
// the server's key/value store (tsdb.KV, keys under "ui/dashboards/"),
// the editor's lint (GET /api/v1/ui/check, a 200 that carries the error)
// and the status page's build and settings (GET /api/v1/status).
//
// Assets are compressed once, when the UI is built, and served gzip-encoded
// to clients that accept it, with a strict Content-Security-Policy: scripts
// and styles come only from the server's own origin, never inline, so the
// telemetry the pages show (tag values, span names, attributes) can only
// ever be text. The WebSocket/SSE face of live streaming (Stream) lives in
// stream*.go.
//
// The UI itself is stateless: every view keeps its state in its URL, and
// the browser calls the public JSON APIs (graph, tags, expr, exemplars,
// Jaeger, alerting, streaming, dashboards).
package ui
