package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// liveMsg is a server message of the live stream.
type liveMsg struct {
	Type         string `json:"type"`
	Subscription string `json:"subscription"`
	ID           string `json:"id"`
	Label        string `json:"label"`
	Start        int64  `json:"start"`
	End          int64  `json:"end"`
	Step         int64  `json:"step"`
	Data         struct {
		Values []any `json:"values"`
	} `json:"data"`
	Message string `json:"message"`
	Dropped int64  `json:"dropped"`
}

// liveClient collects the messages of one stream connection.
type liveClient struct {
	mu   sync.Mutex
	msgs []liveMsg
	lag  []time.Duration // per live timeseries message: read time - step close
	cond chan struct{}   // signalled on every message
}

func (c *liveClient) lags() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.lag...)
}

func newLiveClient() *liveClient { return &liveClient{cond: make(chan struct{}, 1)} }

func (c *liveClient) add(data []byte) error {
	var m liveMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("message %s: %w", data, err)
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	if m.Type == "timeseries" && m.End-m.Start == m.Step {
		c.lag = append(c.lag, time.Since(time.UnixMilli(m.End-m.Step)))
	}
	c.mu.Unlock()
	select {
	case c.cond <- struct{}{}:
	default:
	}
	return nil
}

// end is the newest end of a subscription's timeseries messages.
func (c *liveClient) end(sub string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := int64(0)
	for _, m := range c.msgs {
		if m.Type == "timeseries" && m.Subscription == sub {
			e = max(e, m.End)
		}
	}
	return e
}

// waitEnd waits (at most a minute: a failure, not a timing) until every
// subscription's messages reach end.
func (c *liveClient) waitEnd(t *testing.T, end int64, subs ...string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		ok := true
		for _, s := range subs {
			ok = ok && c.end(s) >= end
		}
		if ok {
			return
		}
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("subscriptions %v did not reach %d within a minute", subs, end)
		}
	}
}

// joined puts a subscription's lines together per label, failing on a gap
// or an overlap between consecutive messages of a line.
func (c *liveClient) joined(t *testing.T, sub string) (start, end int64, lines map[string][]float64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	lines = map[string][]float64{}
	ends := map[string]int64{}
	for _, m := range c.msgs {
		if m.Type == "diagnostic" {
			t.Errorf("diagnostic: %+v", m)
		}
		if m.Type != "timeseries" || m.Subscription != sub {
			continue
		}
		if e, ok := ends[m.ID]; ok && e != m.Start {
			t.Fatalf("%s line %s: message starts at %d, the previous ended at %d", sub, m.Label, m.Start, e)
		}
		if start == 0 || m.Start < start {
			start = m.Start
		}
		end = max(end, m.End)
		ends[m.ID] = m.End
		for _, v := range m.Data.Values {
			f, ok := v.(float64)
			if !ok {
				f = math.NaN()
			}
			lines[m.Label] = append(lines[m.Label], f)
		}
	}
	// The newest step may be half read (its lines come one message each):
	// keep the steps every line has.
	for _, e := range ends {
		end = min(end, e)
	}
	for label, vs := range lines {
		lines[label] = vs[:min(len(vs), int((end-start)/1000))]
	}
	return start, end, lines
}

// checkGraph compares a subscription with /api/v1/graph over the same
// range, value by value.
func (c *liveClient) checkGraph(t *testing.T, addr, sub, q string) (start, end int64) {
	t.Helper()
	start, end, lines := c.joined(t, sub)
	// The graph's points end each step: s and e one step back give [start, end).
	want := graph(t, addr, q, time.UnixMilli(start-1000), time.UnixMilli(end-1000))
	if len(lines) == 0 || len(lines) != len(want) {
		t.Fatalf("%s: %d lines, the graph API has %d", q, len(lines), len(want))
	}
	for label, got := range lines {
		w := want[label]
		if len(got) != len(w) {
			t.Errorf("%s %q: %d values over [%d, %d), the graph API has %d %v; messages:\n%s", q, label, len(got), start, end, len(w), w, c.describe(sub))
			continue
		}
		for i := range got {
			if got[i] != w[i] && !(math.IsNaN(got[i]) && math.IsNaN(w[i])) {
				t.Errorf("%s %q at %d: live %v, graph %v", q, label, start+int64(i)*1000, got[i], w[i])
			}
		}
	}
	return start, end
}

// describe lists a subscription's messages, for failures.
func (c *liveClient) describe(sub string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.msgs {
		if m.Subscription == sub || m.Type != "timeseries" {
			fmt.Fprintf(&b, "%s %s %q [%d, %d) %v %s\n", m.Type, m.Subscription, m.Label, m.Start, m.End, m.Data.Values, m.Message)
		}
	}
	return b.String()
}

// dialLive opens a WebSocket stream and reads it into a client until it
// closes.
func dialLive(t *testing.T, addr string, subs ...map[string]any) (*websocket.Conn, *liveClient) {
	t.Helper()
	return dialLiveAuth(t, addr, "", subs...)
}

// dialLiveAuth is dialLive with a bearer token ("" for none).
func dialLiveAuth(t *testing.T, addr, token string, subs ...map[string]any) (*websocket.Conn, *liveClient) {
	t.Helper()
	var h http.Header
	if token != "" {
		h = http.Header{"Authorization": {"Bearer " + token}}
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/v1/stream", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := newLiveClient()
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil || c.add(data) != nil {
				return
			}
		}
	}()
	for _, s := range subs {
		s["type"] = "subscribe"
		b, _ := json.Marshal(s)
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	return conn, c
}

// livePublisher publishes two gauges every second, each datapoint two
// seconds before its step closes (the store allows 5 minutes of future
// skew), to the address it is pointed at: on a loaded machine a publish
// may take a while, and a datapoint stored after its step was evaluated
// is a late one, which live does not send again.
type livePublisher struct {
	addr atomic.Pointer[string]
	stop chan struct{}
	done chan struct{}
}

func liveValue(node int, ts int64) float64 {
	return float64(node*3) + float64((ts/1000)%7)
}

func (p *livePublisher) publish(from, to int64) {
	var metrics []map[string]any
	for ts := from; ts <= to; ts += 1000 {
		for n, node := range []string{"a", "b"} {
			metrics = append(metrics, map[string]any{"tags": map[string]string{"name": "live.e2e", "node": node, "atlas.dstype": "gauge"},
				"timestamp": ts, "value": liveValue(n, ts)})
		}
	}
	body, _ := json.Marshal(map[string]any{"metrics": metrics})
	resp, err := http.Post("http://"+*p.addr.Load()+"/api/v1/publish", "application/json", bytes.NewReader(body))
	if err == nil {
		resp.Body.Close()
	}
}

func startLivePublisher(addr string) *livePublisher {
	p := &livePublisher{stop: make(chan struct{}), done: make(chan struct{})}
	p.addr.Store(&addr)
	now := time.Now().UnixMilli()
	last := now/1000*1000 + 2000
	p.publish(now/1000*1000-60_000, last) // a minute of history
	go func() {
		defer close(p.done)
		for {
			now := time.Now()
			next := (now.UnixMilli()/1000 + 1) * 1000
			select {
			case <-p.stop:
				return
			case <-time.After(time.UnixMilli(next).Sub(now)):
			}
			// Every second since the last publish: a publish slower than
			// a second (a loaded machine under -race) must not leave a
			// step without data, which the stream would rightly show as
			// NaN.
			if next+2000 > last {
				p.publish(last+1000, next+2000)
				last = next + 2000
			}
		}
	}()
	return p
}

func liveCounter(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+addr+"/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestLiveBinary runs the real binary with a 1 s step: WebSocket and SSE
// clients get backfill then live steps equal to the graph API's (also for
// :des and :rolling-count), many clients of one expression cost one
// evaluation per step, and after a restart a client reconnecting with
// backfill sees no gap.
func TestLiveBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	flags := []string{"--data-dir", dir, "--memory-retention", "1h", "--live-delay", "300ms"}
	b := runBinary(t, bin, nil, flags...)
	defer func() { b.cmd.Process.Kill(); b.cmd.Wait() }()
	pub := startLivePublisher(b.addr)
	defer func() { close(pub.stop); <-pub.done }()

	qs := map[string]string{
		"by":  "name,live.e2e,:eq,(,node,),:by",
		"des": "name,live.e2e,:eq,:sum,3,0.5,0.5,:des",
		"rc":  "name,live.e2e,:eq,:max,6,:gt,3,:rolling-count",
	}
	var subs []map[string]any
	for id, q := range qs {
		subs = append(subs, map[string]any{"id": id, "q": q, "step": "1s", "backfill": "10s"})
	}
	_, ws := dialLive(t, b.addr, subs...)

	// SSE: one subscription from the query parameters.
	sseQ := "name,live.e2e,:eq,:sum"
	resp, err := http.Get("http://" + b.addr + "/api/v1/stream/sse?" + url.Values{"q": {sseQ}, "backfill": {"5s"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sse := newLiveClient()
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				if sse.add([]byte(data)) != nil {
					return
				}
			}
		}
	}()

	// Many clients of one expression.
	for i := 0; i < 10; i++ {
		dialLive(t, b.addr, map[string]any{"id": "x", "q": qs["by"]})
	}
	ws.waitEnd(t, 1, "by")
	first := ws.end("by")
	sse.waitEnd(t, first, "sse")
	evals0 := liveCounter(t, b.addr, "sextant_live_evaluations_total")
	ws.waitEnd(t, first+6000, "by", "des", "rc")
	evals1 := liveCounter(t, b.addr, "sextant_live_evaluations_total")
	sse.waitEnd(t, first+6000, "sse")
	// 4 groups (by and its 10 sharers, des, rc, the SSE sum) over 6 steps,
	// give or take the step being evaluated while /metrics was read.
	if d := evals1 - evals0; d < 4*5 || d > 4*7 {
		t.Errorf("%v evaluations over 6 steps of 4 distinct expressions and 13 subscriptions, want 24", d)
	}
	for id, q := range qs {
		start, end := ws.checkGraph(t, b.addr, id, q)
		if n := (end - start) / 1000; n < 16 {
			t.Errorf("%s: %d steps, want the 10 s backfill and at least 6 live", id, n)
		}
	}
	sse.checkGraph(t, b.addr, "sse", sseQ)

	// Restart; a client reconnecting with backfill gets everything since
	// the last step it saw, without a gap.
	last := ws.end("by")
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	b = runBinary(t, bin, nil, flags...)
	pub.addr.Store(&b.addr)
	backfill := time.Since(time.UnixMilli(last)) + 3*time.Second
	_, again := dialLive(t, b.addr, map[string]any{"id": "by", "q": qs["by"], "step": "1s", "backfill": backfill.Round(time.Second).String()})
	again.waitEnd(t, time.Now().UnixMilli()/1000*1000+3000, "by")
	start, _ := again.checkGraph(t, b.addr, "by", qs["by"])
	if start > last {
		t.Errorf("after the restart the stream starts at %d, the client last saw %d: a gap", start, last)
	}
}

// TestLiveBinarySlowClient: against the real binary, a WebSocket client
// that never reads (with a tiny receive buffer) is disconnected once its
// queue overflows, while a second client on the same expressions keeps
// getting every step on time.
func TestLiveBinarySlowClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	b := runBinary(t, bin, nil, "--data-dir", t.TempDir(), "--memory-retention", "2h", "--live-delay", "300ms")
	defer func() { b.cmd.Process.Kill(); b.cmd.Wait() }()
	pub := startLivePublisher(b.addr)
	defer func() { close(pub.stop); <-pub.done }()

	// The slow client: a 4 KiB receive buffer, 100 subscriptions with an
	// hour of backfill each (3 600 values per line), and no reads.
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}).DialContext}
	slow, _, err := d.Dial("ws://"+b.addr+"/api/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	q := "name,live.e2e,:eq,(,node,),:by"
	for i := 0; i < 100; i++ {
		msg, _ := json.Marshal(map[string]string{"type": "subscribe", "id": fmt.Sprint(i), "q": q, "backfill": "1h"})
		if err := slow.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
	}
	fastConn, fast := dialLive(t, b.addr, map[string]any{"id": "f", "q": q})
	defer fastConn.Close()
	fast.waitEnd(t, 1, "f")
	from := fast.end("f")

	// Wait for the server to give up on the slow client.
	deadline := time.Now().Add(time.Minute)
	for liveCounter(t, b.addr, `sextant_stream_disconnects_total{reason="slow"}`) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow client was not disconnected within a minute")
		}
		fast.waitEnd(t, fast.end("f")+1000, "f")
	}
	// The fast client had every step meanwhile, each soon after it closed.
	fast.waitEnd(t, fast.end("f")+2000, "f")
	fast.mu.Lock()
	steps := map[int64]int{}
	for _, m := range fast.msgs {
		switch m.Type {
		case "timeseries":
			steps[m.Start]++
		case "diagnostic":
			t.Errorf("fast client: %+v", m)
		}
	}
	fast.mu.Unlock()
	to := fast.end("f") - 1000 // the newest step may be half read
	for ts := from; ts < to; ts += 1000 {
		if steps[ts] != 2 {
			t.Errorf("fast client: %d lines for the step at %d, want 2", steps[ts], ts)
		}
	}
	for _, lag := range fast.lags() {
		if lag > 3*time.Second {
			t.Errorf("fast client: a step arrived %v after it closed", lag)
		}
	}
}
