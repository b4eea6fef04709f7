package ui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sextant-dev/sextant/query/live"
	"github.com/sextant-dev/sextant/query/stack"
)

// item is one queued message: a line of an update, or an encoded message.
type item struct {
	sub  string
	line *live.Line // shared with other subscribers: read only
	// tail, when set, is line encoded for every subscriber (lineCache):
	// read only.
	tail []byte
	live bool // a live step (not backfill): its lag is measured
	raw  []byte
}

// client is one connection's state: its subscriptions and send queue.
type client struct {
	s       *Stream
	ctx     context.Context
	cancel  context.CancelFunc
	kill    func() // closes the connection, unblocking reads and writes
	notify  chan struct{}
	closing sync.Once

	mu struct {
		sync.Mutex
		queue   []item
		dropped int64 // dropped since the last diagnostic
		behind  int   // dropped since the writer last took the queue
		subs    map[string]*clientSub
		closed  bool
	}
}

type clientSub struct {
	sub  *live.Subscription
	step int64
}

func newClient(s *Stream, kill func()) *client {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &client{s: s, ctx: ctx, cancel: cancel, kill: kill, notify: make(chan struct{}, 1)}
	c.mu.subs = map[string]*clientSub{}
	return c
}

// close ends the subscriptions and the connection; safe to call often.
func (c *client) close() {
	c.closing.Do(func() {
		c.cancel()
		c.kill()
		c.mu.Lock()
		c.mu.closed = true
		subs := c.mu.subs
		c.mu.subs = nil
		c.mu.queue = nil
		c.mu.Unlock()
		for _, cs := range subs {
			cs.sub.Close()
		}
	})
}

// enqueue appends messages, dropping the oldest when the queue is full;
// it never blocks. A client that let a whole queue be dropped without the
// writer taking anything is disconnected.
func (c *client) enqueue(items ...item) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	dropped := 0
	for _, it := range items {
		if len(c.mu.queue) >= c.s.opts.SendQueue {
			c.mu.queue[0] = item{}
			c.mu.queue = c.mu.queue[1:]
			dropped++
		}
		c.mu.queue = append(c.mu.queue, it)
	}
	c.mu.dropped += int64(dropped)
	c.mu.behind += dropped
	kick := c.mu.behind > c.s.opts.SendQueue
	c.mu.Unlock()
	if dropped > 0 {
		c.s.m.dropped.Add(float64(dropped))
	}
	if kick {
		c.s.m.kicked.Increment()
		c.s.opts.Logger.Info("stream client too slow, disconnecting", "dropped", dropped)
		// Not close: the subscriptions' Close waits for the delivery that
		// may be calling this. The connection's goroutines end and close.
		c.cancel()
		c.kill()
		return
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (c *client) take() ([]item, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, d := c.mu.queue, c.mu.dropped
	c.mu.queue, c.mu.dropped, c.mu.behind = nil, 0, 0
	return q, d
}

// output is where the writer writes: a WebSocket or an SSE response.
type output interface {
	write(msg []byte) error
	flush() error
	ping() error
}

// writeLoop sends queued messages, heartbeats and pings until the
// connection ends.
func (c *client) writeLoop(out output, pingPeriod time.Duration) {
	defer c.close()
	hb := time.NewTicker(c.s.opts.Heartbeat)
	defer hb.Stop()
	var pingC <-chan time.Time
	if pingPeriod > 0 {
		p := time.NewTicker(pingPeriod)
		defer p.Stop()
		pingC = p.C
	}
	var buf []byte
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-pingC:
			if err := out.ping(); err != nil {
				return
			}
			continue
		case <-hb.C:
			c.enqueue(c.heartbeats()...)
		case <-c.notify:
		}
		if err := c.writeQueued(out, &buf); err != nil {
			// A write that ran out of its deadline is a client that does
			// not read: as slow as one whose queue overflowed, whichever
			// of the two notices first.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.s.m.kicked.Increment()
				c.s.opts.Logger.Info("stream client too slow, disconnecting", "err", err)
			}
			return
		}
	}
}

// writeQueued writes what is queued, after a diagnostic of what was
// dropped since the last time, and flushes.
func (c *client) writeQueued(out output, buf *[]byte) error {
	q, dropped := c.take()
	if dropped > 0 {
		msg := fmt.Sprintf("%d messages dropped: the client reads too slowly", dropped)
		if err := out.write(appendDiagnostic((*buf)[:0], "", "warn", msg, dropped)); err != nil {
			return err
		}
	}
	for i := range q {
		it := &q[i]
		msg := it.raw
		switch {
		case it.tail != nil:
			// Fast path: the line was encoded once for all subscribers.
			*buf = append(appendTimeseriesHead((*buf)[:0], it.sub), it.tail...)
			msg = *buf
		case it.line != nil:
			*buf = appendTimeseries((*buf)[:0], it.sub, it.line)
			msg = *buf
		}
		if err := out.write(msg); err != nil {
			return err
		}
		if it.live {
			c.s.m.lag.Record(c.s.opts.Now().Sub(time.UnixMilli(it.line.End - it.line.Step)))
		}
	}
	c.s.m.messages.Add(float64(len(q)))
	return out.flush()
}

// heartbeats are one heartbeat per distinct step of the subscriptions, or
// of the storage step without any.
func (c *client) heartbeats() []item {
	c.mu.Lock()
	var steps []int64
	for _, cs := range c.mu.subs {
		if !slices.Contains(steps, cs.step) {
			steps = append(steps, cs.step)
		}
	}
	c.mu.Unlock()
	if len(steps) == 0 {
		steps = append(steps, c.s.opts.Live.StorageStep())
	}
	slices.Sort(steps)
	out := make([]item, len(steps))
	for i, st := range steps {
		out[i] = item{raw: appendHeartbeat(nil, c.s.opts.Live.LastClosed(st), st)}
	}
	return out
}

// readLoop reads client messages until the connection ends.
func (c *client) readLoop(conn *websocket.Conn) {
	wait := 2 * c.s.opts.PingPeriod
	conn.SetReadLimit(maxClientMessage)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wait)) })
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		if typ != websocket.TextMessage {
			c.diagnostic("", "error", "message: expecting a JSON text message")
			continue
		}
		m, err := parseClientMessage(data)
		if err != nil {
			c.diagnostic(m.ID, "error", err.Error())
			continue
		}
		switch m.Type {
		case "subscribe":
			c.subscribe(m)
		case "unsubscribe":
			c.unsubscribe(m.ID)
		}
	}
}

func (c *client) diagnostic(sub, level, msg string) {
	c.enqueue(item{raw: appendDiagnostic(nil, sub, level, msg, 0)})
}

// subscribe starts (or replaces) subscription m.ID; it reports whether
// the subscription runs (otherwise a diagnostic is queued).
func (c *client) subscribe(m clientMessage) bool {
	if len(m.Q) > c.s.opts.MaxQueryLength {
		c.diagnostic(m.ID, "error", fmt.Sprintf("q: %d bytes long, limit is %d", len(m.Q), c.s.opts.MaxQueryLength))
		return false
	}
	step := m.Step
	if step == 0 {
		step = c.s.opts.Live.StorageStep()
	}
	if n := m.Backfill / step; n > int64(c.s.opts.MaxBackfillSteps) {
		c.diagnostic(m.ID, "error", fmt.Sprintf("backfill: %d steps, limit is %d: use a larger step or a shorter backfill", n, c.s.opts.MaxBackfillSteps))
		return false
	}
	c.mu.Lock()
	old := c.mu.subs[m.ID]
	n := len(c.mu.subs)
	c.mu.Unlock()
	if old == nil && n >= c.s.opts.MaxSubscriptions {
		c.diagnostic(m.ID, "error", fmt.Sprintf("limit max-subscriptions-per-connection is %d; unsubscribe first", c.s.opts.MaxSubscriptions))
		return false
	}
	if old != nil {
		c.unsubscribe(m.ID)
	}
	var isLive atomic.Bool
	id := m.ID
	sink := func(u live.Update) {
		if u.Err != nil {
			c.diagnostic(id, "error", fmt.Sprintf("evaluation of the step ending at %d: %v", u.End, u.Err))
			return
		}
		items := make([]item, len(u.Lines))
		l := isLive.Load()
		var tails [][]byte
		if l && len(u.Lines) > 0 {
			// Live steps are shared by every subscriber of the expression
			// (backfills are each subscriber's own).
			tails = c.s.lines.tails(u.Lines)
		}
		for i := range u.Lines {
			items[i] = item{sub: id, line: &u.Lines[i], live: l}
			if tails != nil {
				items[i].tail = tails[i]
			}
		}
		c.enqueue(items...)
	}
	sub, err := c.s.opts.Live.Subscribe(c.ctx, live.Request{Expr: m.Q, Step: m.Step, Backfill: m.Backfill}, sink)
	if err != nil {
		c.diagnostic(m.ID, "error", subscribeMessage(err))
		return false
	}
	isLive.Store(true)
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		sub.Close()
		return false
	}
	c.mu.subs[m.ID] = &clientSub{sub: sub, step: step}
	c.mu.Unlock()
	return true
}

// subscribeMessage renders a Subscribe error for the client, naming the
// field (and for expressions the word and position).
func subscribeMessage(err error) string {
	if se, ok := stack.AsError(err); ok {
		return "q: " + se.Error()
	}
	var re *live.RequestError
	if errors.As(err, &re) {
		if re.Field == "step" || re.Field == "backfill" {
			return re.Field + ": " + re.Msg
		}
	}
	var le *live.LimitError
	if errors.As(err, &le) {
		return fmt.Sprintf("limit %s is %d; try again later", le.Limit, le.Max)
	}
	return "q: " + err.Error()
}

func (c *client) unsubscribe(id string) {
	c.mu.Lock()
	cs := c.mu.subs[id]
	delete(c.mu.subs, id)
	c.mu.Unlock()
	if cs == nil {
		c.diagnostic(id, "warn", "id: no subscription "+id)
		return
	}
	cs.sub.Close()
}

// wsOut writes WebSocket text frames.
type wsOut struct {
	conn    *websocket.Conn
	timeout time.Duration
}

func (o *wsOut) write(msg []byte) error {
	if err := o.conn.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil {
		return err
	}
	return o.conn.WriteMessage(websocket.TextMessage, msg)
}

func (o *wsOut) flush() error { return nil }

func (o *wsOut) ping() error {
	return o.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.timeout))
}

// sseOut writes Server-Sent Events, one message per data line.
type sseOut struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func (o *sseOut) write(msg []byte) error {
	if err := o.rc.SetWriteDeadline(time.Now().Add(o.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	o.buf = append(append(append(o.buf[:0], "data: "...), msg...), "\n\n"...)
	_, err := o.w.Write(o.buf)
	return err
}

func (o *sseOut) flush() error { return o.rc.Flush() }

func (o *sseOut) ping() error { return nil }
