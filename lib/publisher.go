package lib

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dev/sextant/lib/wire"
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// URI is the server's publish endpoint, e.g.
	// http://localhost:7101/api/v1/publish.
	URI string
	// Step is how often meters are measured and sent; it should equal the
	// server's storage step. Default 60 s.
	Step time.Duration
	// CommonTags are added to every datapoint (a meter's own tags win).
	// They extend the environment's (EnvTags) unless NoEnvTags is set.
	CommonTags map[string]string
	NoEnvTags  bool
	// BatchSize bounds the datapoints of one request; default 10 000.
	BatchSize int
	// Timeout bounds one request; default 5 s.
	Timeout time.Duration
	// MaxAttempts bounds the tries of a batch the server answered 429 or
	// 503 (or did not answer); default 3. Retries wait for Retry-After
	// (or 100 ms, 200 ms ...) and never past the next step: then the
	// batch is dropped and counted.
	MaxAttempts int
	// Client sends the requests; default a client of its own.
	Client *http.Client
	// Rules validate tags before sending, as the server would; default
	// Atlas's (lib/wire).
	Rules  *wire.Rules
	Logger *slog.Logger
	// Clock tells the time; default the system clock.
	Clock Clock
	// AuthToken, when set, is sent as "Authorization: Bearer <AuthToken>"
	// (a server started with --auth-token requires it).
	AuthToken string
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Step <= 0 {
		o.Step = time.Minute
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 10_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Rules == nil {
		o.Rules = wire.DefaultRules()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// Publisher sends a registry's meters to a Sextant server every step. Its
// goroutine belongs to it: Close stops it. Sending never blocks the
// application: meters are read atomically, a step's data is sent before
// the next step starts or dropped (and counted), and memory holds at most
// one step of measurements.
type Publisher struct {
	reg     *Registry
	opts    PublisherOptions
	common  []wire.Tag
	stop    chan struct{}
	done    chan struct{}
	start   sync.Once
	started atomic.Bool
	closed  sync.Once
	// last is the boundary of the previous step sent (Unix ms); owned by
	// the run loop, then by Close.
	last int64
	m    struct {
		sent, invalid *Counter
		dropped       func(reason string) *Counter
	}
}

// NewPublisher returns a publisher of reg's meters; Start starts it.
func NewPublisher(reg *Registry, opts PublisherOptions) (*Publisher, error) {
	opts = opts.withDefaults()
	u, err := url.Parse(opts.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("lib: publish URI %q is not an http(s) URL", opts.URI)
	}
	if reg == nil {
		return nil, errors.New("lib: publisher needs a registry")
	}
	tags := map[string]string{}
	if !opts.NoEnvTags {
		for k, v := range EnvTags() {
			tags[k] = v
		}
	}
	for k, v := range opts.CommonTags {
		tags[k] = v
	}
	p := &Publisher{reg: reg, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	for k, v := range tags {
		p.common = append(p.common, wire.Tag{Key: k, Value: v})
	}
	p.common = wire.SortTags(p.common)
	// Spectator's own meters: what was sent, dropped and refused.
	p.m.sent = reg.Counter("spectator.measurements", "id", "sent")
	p.m.invalid = reg.Counter("spectator.measurements", "id", "invalid")
	p.m.dropped = func(reason string) *Counter {
		return reg.Counter("spectator.measurements", "id", "dropped", "error", reason)
	}
	return p, nil
}

// Start starts publishing at every step boundary.
func (p *Publisher) Start() {
	p.start.Do(func() {
		p.started.Store(true)
		p.last = p.boundary(p.opts.Clock())
		go p.run()
	})
}

// Close stops the publisher and sends the measurements of the step in
// progress, waiting at most until ctx ends. Closing twice is an error.
func (p *Publisher) Close(ctx context.Context) error {
	err := errors.New("lib: publisher already closed")
	p.closed.Do(func() {
		p.start.Do(func() {}) // Start after Close does nothing
		close(p.stop)
		if p.started.Load() {
			select {
			case <-p.done:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
		err = p.publish(ctx, p.boundary(p.opts.Clock())+p.opts.Step.Milliseconds())
	})
	return err
}

// boundary returns the step boundary at or before t, in Unix ms.
func (p *Publisher) boundary(t time.Time) int64 {
	ms, step := t.UnixMilli(), p.opts.Step.Milliseconds()
	return ms - ms%step
}

func (p *Publisher) run() {
	defer close(p.done)
	for {
		next := p.boundary(p.opts.Clock()) + p.opts.Step.Milliseconds()
		t := time.NewTimer(max(time.UnixMilli(next).Sub(p.opts.Clock()), 0))
		select {
		case <-p.stop:
			t.Stop()
			return
		case <-t.C:
		}
		// The step's data must be out before the next step is measured;
		// Close cuts a send short.
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.Step*9/10)
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := p.publish(ctx, next); err != nil {
			p.opts.Logger.Warn("publish metrics", "err", err)
		}
		cancel()
	}
}

// publish measures the registry and sends the step ending at ts (ms).
func (p *Publisher) publish(ctx context.Context, ts int64) (err error) {
	defer func() {
		// lib must never crash the application it lives in.
		if r := recover(); r != nil {
			err = fmt.Errorf("BUG: publish panicked: %v", r)
		}
	}()
	interval := p.opts.Step
	if p.last != 0 && ts-p.last > p.opts.Step.Milliseconds() {
		// Steps skipped while a slow send ran: rates over the real interval.
		interval = time.Duration(ts-p.last) * time.Millisecond
	}
	p.last = ts
	ms := p.reg.Measure(interval)
	dps := make([]wire.Datapoint, 0, len(ms))
	invalid := 0
	for _, m := range ms {
		tags := make([]wire.Tag, 0, len(m.Id.tags)+2)
		tags = append(tags, wire.Tag{Key: "name", Value: m.Id.name})
		for _, t := range m.Id.tags {
			tags = append(tags, wire.Tag{Key: t.Key, Value: t.Value})
		}
		dstype := "rate"
		if m.Gauge {
			dstype = "gauge"
		}
		tags = append(tags, wire.Tag{Key: "atlas.dstype", Value: dstype})
		if reason := p.validate(tags); reason != "" {
			invalid++
			p.opts.Logger.Debug("invalid meter not published", "meter", m.Id.String(), "reason", reason)
			continue
		}
		dps = append(dps, wire.Datapoint{Tags: tags, Timestamp: ts, Value: m.Value})
	}
	p.m.invalid.Add(float64(invalid))
	var errs []error
	for i := 0; i < len(dps); i += p.opts.BatchSize {
		batch := dps[i:min(i+p.opts.BatchSize, len(dps))]
		if err := p.send(ctx, batch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validate checks a datapoint's tags merged with the common tags.
func (p *Publisher) validate(ts []wire.Tag) string {
	merged := make([]wire.Tag, 0, len(ts)+len(p.common))
	merged = append(merged, p.common...)
	merged = append(merged, ts...)
	reason, _ := p.opts.Rules.Validate(wire.SortTags(merged))
	return reason
}

// send posts one batch, retrying what the server asks to retry.
func (p *Publisher) send(ctx context.Context, batch []wire.Datapoint) error {
	body, err := p.encode(batch)
	if err != nil {
		return err
	}
	n := len(batch)
	for attempt := 1; ; attempt++ {
		code, retryAfter, errorCount, err := p.post(ctx, body)
		switch {
		case err == nil && (code == 200 || code == 202):
			p.m.sent.Add(float64(n - errorCount))
			p.m.invalid.Add(float64(errorCount))
			return nil
		case err == nil && code == 400:
			p.m.invalid.Add(float64(max(errorCount, n)))
			return fmt.Errorf("lib: server refused %d datapoints (400)", n)
		case err == nil && code != 429 && code != 503:
			p.m.dropped("http-" + strconv.Itoa(code)).Add(float64(n))
			return fmt.Errorf("lib: publish answered %d", code)
		}
		// 429, 503, or no answer: retry within the budget.
		reason := "http-" + strconv.Itoa(code)
		if err != nil {
			reason = "network"
			if ctx.Err() != nil {
				reason = "timeout"
			}
		}
		wait := retryAfter
		if wait <= 0 {
			wait = time.Duration(attempt) * 100 * time.Millisecond
		}
		deadline, ok := ctx.Deadline()
		if attempt >= p.opts.MaxAttempts || ctx.Err() != nil || (ok && time.Now().Add(wait).After(deadline)) {
			p.m.dropped(reason).Add(float64(n))
			if err == nil {
				err = fmt.Errorf("lib: publish answered %d after %d attempts", code, attempt)
			}
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			p.m.dropped("timeout").Add(float64(n))
			return ctx.Err()
		case <-t.C:
		}
	}
}

var gzipWriters = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return w }}

func (p *Publisher) encode(batch []wire.Datapoint) ([]byte, error) {
	raw := wire.AppendPayload(make([]byte, 0, 128*len(batch)), p.common, batch)
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// post sends one request and reads what a retry or the counters need.
func (p *Publisher) post(ctx context.Context, body []byte) (code int, retryAfter time.Duration, errorCount int, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.URI, bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if p.opts.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.opts.AuthToken)
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
			retryAfter = time.Duration(secs) * time.Second
		}
	}
	if resp.StatusCode == 202 || resp.StatusCode == 400 {
		var r struct {
			ErrorCount int `json:"errorCount"`
		}
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r) == nil {
			errorCount = r.ErrorCount
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, retryAfter, errorCount, nil
}
