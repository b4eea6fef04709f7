// Live streaming (the part of package ui that stream*.go holds).
//
// Stream serves the live evaluator (query/live) to browsers and tools:
// GET /api/v1/stream is a WebSocket on which a client subscribes and
// unsubscribes expressions; GET /api/v1/stream/sse serves one subscription
// (its query parameters) as Server-Sent Events for proxies that strip the
// upgrade. Messages are those of docs/live.md (the live streaming contract):
// timeseries (one per line and update), heartbeat (every Heartbeat, one
// per distinct step), diagnostic (bad requests, limits, drops).
//
// Every connection has one bounded send queue of messages. The live
// evaluator's sink only appends to it and never blocks: when the queue is
// full the oldest message is dropped and counted, the next write tells the
// client with a diagnostic carrying the dropped count, and a client that
// stays behind (a whole queue dropped without the writer getting a message
// out) is disconnected. A WebSocket has exactly one reader goroutine (the
// handler's) and one writer goroutine; an SSE connection has only the
// writer (the handler's). Every write has a deadline; WebSocket pings keep
// idle connections alive and pongs extend the read deadline.

package ui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/live"
)

// StreamOptions configure a Stream.
type StreamOptions struct {
	// Live is the evaluator the subscriptions run on.
	Live *live.Evaluator
	// AllowedOrigins are the origins (scheme://host[:port], or "*") that
	// may open streams besides the same origin.
	AllowedOrigins []string
	// MaxSubscriptions bounds the subscriptions of one WebSocket; default 100.
	MaxSubscriptions int
	// MaxConnections bounds the open streams; default 10 000.
	MaxConnections int
	// SendQueue is the messages a connection may have queued; default 1024.
	SendQueue int
	// Heartbeat is the heartbeat period; default 5 s.
	Heartbeat time.Duration
	// WriteTimeout bounds every write; default 10 s.
	WriteTimeout time.Duration
	// PingPeriod is how often a WebSocket is pinged; default 30 s. A
	// WebSocket that sends nothing, not even a pong, for twice that is closed.
	PingPeriod time.Duration
	// MaxBackfillSteps bounds the steps of one subscription's backfill;
	// default 20 000 (two weeks at 60 s). It bounds what one queued
	// backfill message may hold.
	MaxBackfillSteps int
	// MaxQueryLength bounds an expression in bytes; default 16 KiB.
	MaxQueryLength int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Registry receives the self-metrics; default a private one.
	Registry *lib.Registry
	// Logger receives the logs; default slog.Default().
	Logger *slog.Logger
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = 100
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 10_000
	}
	if o.SendQueue == 0 {
		o.SendQueue = 1024
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingPeriod == 0 {
		o.PingPeriod = 30 * time.Second
	}
	if o.MaxBackfillSteps == 0 {
		o.MaxBackfillSteps = 20_000
	}
	if o.MaxQueryLength == 0 {
		o.MaxQueryLength = 16 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = lib.NewRegistry(lib.RegistryOptions{})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate checks the options.
func (o StreamOptions) Validate() error {
	if o.Live == nil {
		return errors.New("ui: stream: no live evaluator")
	}
	for _, a := range o.AllowedOrigins {
		if a == "*" {
			continue
		}
		u, err := url.Parse(a)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return errors.New("ui: stream: allowed origin " + a + " is not scheme://host[:port] or *")
		}
	}
	if o.MaxSubscriptions < 0 || o.MaxConnections < 0 || o.SendQueue < 0 {
		return errors.New("ui: stream: negative limit")
	}
	return nil
}

// Stream is the WebSocket and SSE face of the live evaluator. It is safe
// for concurrent use.
type Stream struct {
	opts     StreamOptions
	upgrader websocket.Upgrader
	ctx      context.Context // ends every connection
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	conns    atomic.Int64
	lines    lineCache // live steps encoded once for all their subscribers
	m        streamMetrics
}

type streamMetrics struct {
	connections *lib.Gauge
	messages    *lib.Counter
	dropped     *lib.Counter
	kicked      *lib.Counter
	rejected    *lib.Counter
	lag         *lib.Timer
}

// NewStream returns a Stream; Register serves it and Close ends it.
func NewStream(opts StreamOptions) (*Stream, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := opts.Registry
	s := &Stream{
		opts: opts, ctx: ctx, cancel: cancel,
		m: streamMetrics{
			connections: reg.Gauge("sextant.stream.connections"),
			messages:    reg.Counter("sextant.stream.messages"),
			dropped:     reg.Counter("sextant.stream.dropped"),
			kicked:      reg.Counter("sextant.stream.disconnects", "reason", "slow"),
			rejected:    reg.Counter("sextant.stream.rejected"),
			lag:         reg.Timer("sextant.stream.lag"),
		},
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:   1024,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{}, // idle connections hold no write buffer
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.checkOrigin,
	}
	return s, nil
}

// Register adds GET /api/v1/stream and GET /api/v1/stream/sse to mux.
func (s *Stream) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/stream", s.serveWebSocket)
	mux.HandleFunc("GET /api/v1/stream/sse", s.serveSSE)
}

// Close ends every stream and waits for their goroutines.
func (s *Stream) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Connections returns the number of open streams.
func (s *Stream) Connections() int { return int(s.conns.Load()) }

// checkOrigin allows requests without Origin (not a browser), from the
// same host, and from the allowed origins.
func (s *Stream) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.opts.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// admit counts a new connection, or reports the limit.
func (s *Stream) admit() bool {
	if n := s.conns.Add(1); n > int64(s.opts.MaxConnections) {
		s.conns.Add(-1)
		s.m.rejected.Increment()
		return false
	}
	s.m.connections.Set(float64(s.conns.Load()))
	return true
}

func (s *Stream) release() {
	s.m.connections.Set(float64(s.conns.Add(-1)))
}

// serveWebSocket upgrades and runs the reader in the handler's goroutine.
func (s *Stream) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		writeStreamError(w, http.StatusForbidden, "Origin "+r.Header.Get("Origin")+" is not allowed; see --allowed-origins")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		writeStreamError(w, http.StatusBadRequest, "Upgrade: expecting a WebSocket upgrade; use /api/v1/stream/sse for Server-Sent Events")
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	if s.ctx.Err() != nil || !s.admit() {
		msg := appendDiagnostic(nil, "", "error", "limit max-connections is reached; try again later", 0)
		_ = conn.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		_ = conn.WriteMessage(websocket.TextMessage, msg)
		_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, "too many connections"))
		_ = conn.Close()
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.release()
	c := newClient(s, func() { _ = conn.Close() })
	defer c.close()
	out := &wsOut{conn: conn, timeout: s.opts.WriteTimeout}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop(out, s.opts.PingPeriod)
	}()
	c.readLoop(conn)
	c.close()
	<-done
}

// serveSSE runs one subscription from the query parameters; the handler's
// goroutine is the writer.
func (s *Stream) serveSSE(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		writeStreamError(w, http.StatusForbidden, "Origin "+r.Header.Get("Origin")+" is not allowed; see --allowed-origins")
		return
	}
	v := r.URL.Query()
	m := clientMessage{Type: "subscribe", ID: v.Get("id"), Q: v.Get("q")}
	if m.ID == "" {
		m.ID = "sse"
	}
	var err error
	if m.Q == "" {
		err = &fieldError{"q", "missing; give an expression such as name,sps,:eq,:sum"}
	} else if m.Step, err = parseDuration("step", v.Get("step")); err == nil {
		m.Backfill, err = parseDuration("backfill", v.Get("backfill"))
	}
	if err != nil {
		writeStreamError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.ctx.Err() != nil || !s.admit() {
		writeStreamError(w, http.StatusServiceUnavailable, "limit max-connections is reached; try again later")
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	defer s.release()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if o := r.Header.Get("Origin"); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Vary", "Origin")
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := newClient(s, cancel)
	defer c.close()
	stop := context.AfterFunc(ctx, c.close)
	defer stop()
	out := &sseOut{w: w, rc: rc, timeout: s.opts.WriteTimeout}
	if !c.subscribe(m) {
		var buf []byte
		_ = c.writeQueued(out, &buf)
		return
	}
	c.writeLoop(out, 0)
}

// writeStreamError answers a request that did not become a stream.
func writeStreamError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(appendString([]byte(`{"type":"error","message":`), msg), "}\n"...))
}
