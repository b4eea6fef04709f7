package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/querytest"
	"github.com/sextant-dev/sextant/tsdb/tags"
	"github.com/sextant-dev/sextant/ui"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	step  = int64(60_000)
	delay = 5 * time.Second
)

var bubbleStart = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

// pipeListener serves HTTP over in-memory pipes, so a whole server runs
// inside a synctest bubble and its clock drives every step.
type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case l.ch <- srv:
		return cli, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "stream.test:80" }

// server is a store, a live evaluator and a Stream served over pipes.
type server struct {
	ln     *pipeListener
	ev     *live.Evaluator
	stream *ui.Stream
	engine *query.Engine
}

func newServer(t *testing.T, opts ui.StreamOptions) *server {
	t.Helper()
	from := bubbleStart - 3600_000
	var inputs []querytest.Input
	for i, node := range []string{"a", "b", "c"} {
		vals := make([]float64, 180)
		for j := range vals {
			vals[j] = float64(10*(i+1)) + 5*math.Sin(float64(j)/7+float64(i))
		}
		inputs = append(inputs, querytest.Input{Tags: tags.New("name", "requests", "node", node), Start: from, Values: vals})
	}
	store := querytest.Open(t, step, bubbleStart, inputs...)
	ev, err := live.New(live.Options{Querier: store, StorageStep: step, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	opts.Live = ev
	st, err := ui.NewStream(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	st.Register(mux)
	s := &server{ln: newPipeListener(), ev: ev, stream: st, engine: query.NewEngine(store, eval.Options{})}
	srv := &http.Server{Handler: mux}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ev.Run(ctx) })
	wg.Go(func() { _ = srv.Serve(s.ln) })
	t.Cleanup(func() {
		st.Close()
		srv.Shutdown(context.Background())
		cancel()
		wg.Wait()
	})
	return s
}

// message is any server message.
type message struct {
	Type         string            `json:"type"`
	Subscription string            `json:"subscription"`
	ID           string            `json:"id"`
	Label        string            `json:"label"`
	Tags         map[string]string `json:"tags"`
	Start        int64             `json:"start"`
	End          int64             `json:"end"`
	Step         int64             `json:"step"`
	Data         struct {
		Type   string `json:"type"`
		Values []any  `json:"values"`
	} `json:"data"`
	Timestamp int64  `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
	Dropped   int64  `json:"dropped"`
}

func (m *message) values() []float64 {
	out := make([]float64, len(m.Data.Values))
	for i, v := range m.Data.Values {
		f, ok := v.(float64)
		if !ok {
			f = math.NaN()
		}
		out[i] = f
	}
	return out
}

// inbox collects what a client read.
type inbox struct {
	mu   sync.Mutex
	msgs []message
	err  error
}

func (b *inbox) add(m message) { b.mu.Lock(); b.msgs = append(b.msgs, m); b.mu.Unlock() }

func (b *inbox) all() []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]message(nil), b.msgs...)
}

func (b *inbox) of(typ string) []message {
	var out []message
	for _, m := range b.all() {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// dialWS opens a WebSocket; when read is set, a goroutine reads into the
// returned inbox until the connection ends.
func (s *server) dialWS(t *testing.T, read bool, header http.Header) (*websocket.Conn, *inbox) {
	t.Helper()
	d := websocket.Dialer{NetDialContext: s.ln.dial}
	conn, resp, err := d.Dial("ws://stream.test/api/v1/stream", header)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, code)
	}
	box := &inbox{}
	if read {
		go func() {
			for {
				_, data, err := conn.ReadMessage()
				if err != nil {
					box.mu.Lock()
					box.err = err
					box.mu.Unlock()
					return
				}
				var m message
				if err := json.Unmarshal(data, &m); err != nil {
					panic(fmt.Sprintf("bad message %s: %v", data, err))
				}
				box.add(m)
			}
		}()
	}
	t.Cleanup(func() { conn.Close() })
	return conn, box
}

func send(t *testing.T, conn *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

// joined puts a subscription's timeseries messages together per label and
// checks they follow each other without gap or overlap.
func joined(t *testing.T, msgs []message, sub string) (start, end int64, lines map[string][]float64) {
	t.Helper()
	lines = map[string][]float64{}
	ends := map[string]int64{}
	for _, m := range msgs {
		if m.Type != "timeseries" || m.Subscription != sub {
			continue
		}
		if e, ok := ends[m.ID]; ok && e != m.Start {
			t.Fatalf("line %s: message starts at %d, previous ended at %d", m.Label, m.Start, e)
		}
		if m.Start+int64(len(m.Data.Values))*m.Step != m.End {
			t.Fatalf("message [%d, %d) step %d has %d values", m.Start, m.End, m.Step, len(m.Data.Values))
		}
		if start == 0 || m.Start < start {
			start = m.Start
		}
		end = max(end, m.End)
		ends[m.ID] = m.End
		lines[m.Label] = append(lines[m.Label], m.values()...)
	}
	return start, end, lines
}

func (s *server) graph(t *testing.T, q string, start, end int64) map[string][]float64 {
	t.Helper()
	styles, err := query.Parse(q, query.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.engine.Eval(context.Background(), styles, eval.Range{Start: start, End: end, Step: step})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, l := range res.Lines {
		out[l.Label] = l.Values
	}
	return out
}

func same(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

func (s *server) checkGraph(t *testing.T, msgs []message, sub, q string, wantSteps int) {
	t.Helper()
	start, end, lines := joined(t, msgs, sub)
	if n := int((end - start) / step); n != wantSteps {
		t.Errorf("%s: %d steps received, want %d", q, n, wantSteps)
	}
	want := s.graph(t, q, start, end)
	if len(lines) != len(want) || len(lines) == 0 {
		t.Fatalf("%s: %d lines, graph has %d", q, len(lines), len(want))
	}
	for label, got := range lines {
		if !same(got, want[label]) {
			t.Errorf("%s: line %q:\n live %v\ngraph %v", q, label, got, want[label])
		}
	}
}

// TestWebSocket subscribes with backfill over a real WebSocket and checks
// every step against the graph API, heartbeats, and diagnostics.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, ui.StreamOptions{})
		conn, box := s.dialWS(t, true, nil)
		qs := map[string]string{
			"by":    "name,requests,:eq,(,node,),:by",
			"des":   "name,requests,:eq,:sum,5,0.1,0.5,:des",
			"count": "name,requests,:eq,:max,30,:gt,3,:rolling-count",
		}
		for id, q := range qs {
			send(t, conn, map[string]any{"type": "subscribe", "id": id, "q": q, "step": "1m", "backfill": "10m"})
		}
		send(t, conn, map[string]any{"type": "subscribe", "id": "bad", "q": "name,requests,:eq,:frobnicate"})
		send(t, conn, map[string]any{"type": "subscribe", "id": "badstep", "q": "name,requests,:eq", "step": "90s"})
		send(t, conn, map[string]any{"type": "subscribe", "id": "longback", "q": "name,requests,:eq", "backfill": "100d"})
		send(t, conn, map[string]string{"type": "hello"})
		time.Sleep(time.Duration(6*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		msgs := box.all()
		for id, q := range qs {
			s.checkGraph(t, msgs, id, q, 16)
		}
		diags := map[string]string{}
		for _, m := range box.of("diagnostic") {
			diags[m.Subscription] = m.Message
			if m.Level != "error" {
				t.Errorf("diagnostic %+v: level %q, want error", m, m.Level)
			}
		}
		if !strings.Contains(diags["bad"], ":frobnicate") || !strings.Contains(diags["bad"], "position") {
			t.Errorf("bad expression diagnostic %q does not name the word and position", diags["bad"])
		}
		if !strings.HasPrefix(diags["longback"], "backfill:") {
			t.Errorf("long backfill diagnostic %q does not name the field", diags["longback"])
		}
		if !strings.HasPrefix(diags["badstep"], "step:") {
			t.Errorf("bad step diagnostic %q does not name the field", diags["badstep"])
		}
		if !strings.HasPrefix(diags[""], "type:") {
			t.Errorf("bad type diagnostic %q does not name the field", diags[""])
		}
		hbs := box.of("heartbeat")
		if len(hbs) != int(6*step/5000) {
			t.Errorf("%d heartbeats in 6 minutes, want one every 5 s", len(hbs))
		}
		for _, h := range hbs {
			if h.Step != step || h.Timestamp%step != 0 || h.Timestamp > time.Now().UnixMilli() {
				t.Errorf("heartbeat %+v", h)
			}
		}
		// Unsubscribe stops a subscription.
		send(t, conn, map[string]any{"type": "unsubscribe", "id": "by"})
		synctest.Wait()
		n := len(box.all())
		time.Sleep(time.Duration(2*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		for _, m := range box.all()[n:] {
			if m.Subscription == "by" {
				t.Errorf("message after unsubscribe: %+v", m)
			}
		}
	})
}

// TestSlowClientDropped: a client that never reads is disconnected after
// its queue overflowed, while a second client on the same expression keeps
// receiving every step; both cost one evaluation per step.
func TestSlowClientDropped(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, ui.StreamOptions{SendQueue: 4})
		q := "name,requests,:eq,(,node,),:by"
		slow, _ := s.dialWS(t, false, nil)
		fast, box := s.dialWS(t, true, nil)
		send(t, slow, map[string]any{"type": "subscribe", "id": "s", "q": q})
		send(t, fast, map[string]any{"type": "subscribe", "id": "f", "q": q})
		synctest.Wait()
		before := s.ev.Evaluations()
		for i := 0; i < 8; i++ {
			time.Sleep(time.Duration(step) * time.Millisecond) // synctest: advances the bubble's fake clock
			synctest.Wait()
		}
		if got := s.ev.Evaluations() - before; got != 8 {
			t.Errorf("%d evaluations for 8 steps of 2 subscribers, want 8", got)
		}
		if n := s.stream.Connections(); n != 1 {
			t.Errorf("%d connections, want the slow one dropped", n)
		}
		start, end, lines := joined(t, box.all(), "f")
		if (end-start)/step != 8 || len(lines) != 3 {
			t.Errorf("fast client: %d steps of %d lines, want 8 of 3", (end-start)/step, len(lines))
		}
		for _, m := range box.of("diagnostic") {
			t.Errorf("fast client got %+v", m)
		}
	})
}

// TestOriginAndLimits: foreign origins are refused, allowed ones pass; the
// subscription limit is a diagnostic.
func TestOriginAndLimits(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, ui.StreamOptions{AllowedOrigins: []string{"https://dash.example.com"}, MaxSubscriptions: 1, MaxConnections: 1})
		d := websocket.Dialer{NetDialContext: s.ln.dial}
		_, resp, err := d.Dial("ws://stream.test/api/v1/stream", http.Header{"Origin": {"https://evil.example.com"}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("foreign origin: %v, want 403", err)
		}
		if resp != nil {
			resp.Body.Close()
		}
		conn, box := s.dialWS(t, true, http.Header{"Origin": {"https://dash.example.com"}})
		send(t, conn, map[string]any{"type": "subscribe", "id": "1", "q": "name,requests,:eq,:sum"})
		send(t, conn, map[string]any{"type": "subscribe", "id": "2", "q": "name,requests,:eq,:max"})
		synctest.Wait()
		d2 := box.of("diagnostic")
		if len(d2) != 1 || d2[0].Subscription != "2" || !strings.Contains(d2[0].Message, "max-subscriptions-per-connection") {
			t.Errorf("diagnostics %+v, want the subscription limit for 2", d2)
		}
		// A second connection is over the limit: a diagnostic, then a close.
		over, _, err := d.Dial("ws://stream.test/api/v1/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer over.Close()
		_, data, err := over.ReadMessage()
		if err != nil || !strings.Contains(string(data), "max-connections") {
			t.Errorf("over the connection limit: %s, %v; want a diagnostic", data, err)
		}
		if _, _, err := over.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
			t.Errorf("over the connection limit: %v, want a close 1013", err)
		}
	})
}

// TestSSE reads one subscription as Server-Sent Events.
func TestSSE(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, ui.StreamOptions{})
		client := &http.Client{Transport: &http.Transport{DialContext: s.ln.dial}}
		defer client.CloseIdleConnections()
		q := "name,requests,:eq,:sum,3,:rolling-count"
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://stream.test/api/v1/stream/sse?q="+strings.ReplaceAll(q, ",", "%2C")+"&backfill=5m", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		box := &inbox{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			b, _ := io.ReadAll(resp.Body)
			for _, line := range strings.Split(string(b), "\n") {
				if data, ok := strings.CutPrefix(line, "data: "); ok {
					var m message
					if err := json.Unmarshal([]byte(data), &m); err != nil {
						panic(err)
					}
					box.add(m)
				}
			}
		}()
		time.Sleep(time.Duration(4*step) * time.Millisecond) // synctest: advances the bubble's fake clock
		synctest.Wait()
		cancel()
		<-done
		resp.Body.Close()
		s.checkGraph(t, box.all(), "sse", q, 9)

		resp, err = client.Get("http://stream.test/api/v1/stream/sse?q=a,:frob&step=1m")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), ":frob") {
			t.Errorf("bad expression over SSE: %d %s", resp.StatusCode, body)
		}
		resp, err = client.Get("http://stream.test/api/v1/stream/sse?q=a,b,:eq&step=soon")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), "step") {
			t.Errorf("bad step over SSE: %d %s", resp.StatusCode, body)
		}
	})
}
