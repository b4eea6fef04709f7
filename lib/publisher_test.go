package lib

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// sink is a fake publish endpoint that records what it receives and
// answers with the codes queued in answers (200 when empty).
type sink struct {
	mu      sync.Mutex
	bodies  []payload
	answers []int
	retry   string // Retry-After of non-200 answers
	calls   atomic.Int32
}

type payload struct {
	Tags    map[string]string
	Metrics []struct {
		Tags      map[string]string
		Timestamp int64
		Value     float64
	}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	code := 200
	if len(s.answers) > 0 {
		code, s.answers = s.answers[0], s.answers[1:]
	}
	s.mu.Unlock()
	if code != 200 {
		if s.retry != "" {
			w.Header().Set("Retry-After", s.retry)
		}
		w.WriteHeader(code)
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" {
		http.Error(w, "not gzip", http.StatusUnsupportedMediaType)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var p payload
	if err := json.NewDecoder(zr).Decode(&p); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, p)
	s.mu.Unlock()
}

func (s *sink) datapoints() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]float64{}
	for _, b := range s.bodies {
		for _, m := range b.Metrics {
			var kv []string
			for k, v := range m.Tags {
				if k != "name" {
					kv = append(kv, k, v)
				}
			}
			out[NewId(m.Tags["name"], kv...).String()] += m.Value
		}
	}
	return out
}

func newPublisher(t *testing.T, r *Registry, url string, opts PublisherOptions) *Publisher {
	t.Helper()
	opts.URI = url
	opts.NoEnvTags = true
	p, err := NewPublisher(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublisherPayload(t *testing.T) {
	t.Parallel()
	// In a synctest bubble: request timeouts and the retry deadline are on
	// the bubble's clock, which a loaded machine cannot make run out.
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := NewRegistry(RegistryOptions{})
		for range 120 {
			r.Counter("requests", "status", "200").Increment()
		}
		r.Gauge("queue").Set(3)
		r.Counter("bad", "route", "/a b").Increment() // invalid character: not sent
		p := newPublisher(t, r, "http://sextant.test/api/v1/publish", PublisherOptions{Client: &http.Client{Transport: handlerTransport(s)}, CommonTags: map[string]string{"nf.app": "checkout"}})
		if err := p.publish(context.Background(), 1_700_000_040_000); err != nil {
			t.Fatal(err)
		}
		if len(s.bodies) != 1 || s.bodies[0].Tags["nf.app"] != "checkout" {
			t.Fatalf("bodies %+v", s.bodies)
		}
		got := map[string]payload{}
		for _, m := range s.bodies[0].Metrics {
			if m.Timestamp != 1_700_000_040_000 {
				t.Errorf("timestamp %d", m.Timestamp)
			}
			got[m.Tags["name"]+"/"+m.Tags["statistic"]+"/"+m.Tags["atlas.dstype"]] = payload{}
			if m.Tags["name"] == "requests" && m.Value != 2 {
				t.Errorf("counter rate %v, want 2/s", m.Value)
			}
		}
		for _, want := range []string{"requests/count/rate", "queue/gauge/gauge"} {
			if _, ok := got[want]; !ok {
				t.Errorf("missing %s in %v", want, got)
			}
		}
		if _, ok := got["bad/count/rate"]; ok {
			t.Error("an invalid tag value was sent")
		}
		if r.Counter("spectator.measurements", "id", "invalid").Count() != 1 {
			t.Error("the invalid meter was not counted")
		}
	})
}

func TestPublisherBatches(t *testing.T) {
	t.Parallel()
	// In a synctest bubble: request timeouts and the retry deadline are on
	// the bubble's clock, which a loaded machine cannot make run out.
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := NewRegistry(RegistryOptions{})
		for i := range 25_000 {
			r.Gauge("gg", "idx", strconv.Itoa(i)).Set(1)
		}
		p := newPublisher(t, r, "http://sextant.test/api/v1/publish", PublisherOptions{Client: &http.Client{Transport: handlerTransport(s)}})
		if err := p.publish(context.Background(), 60_000); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range s.bodies {
			if len(b.Metrics) > 10_000 {
				t.Errorf("batch of %d", len(b.Metrics))
			}
			n += len(b.Metrics)
		}
		if len(s.bodies) != 3 || n < 25_000 {
			t.Errorf("%d batches, %d datapoints", len(s.bodies), n)
		}
		if sent := r.Counter("spectator.measurements", "id", "sent").Count(); sent != float64(n) {
			t.Errorf("sent counter %v, want %d", sent, n)
		}
	})
}

func TestPublisherRetries(t *testing.T) {
	t.Parallel()
	// In a synctest bubble: request timeouts and the retry deadline are on
	// the bubble's clock, which a loaded machine cannot make run out.
	synctest.Test(t, func(t *testing.T) {
		s := &sink{answers: []int{503, 429}, retry: "0"}
		r := NewRegistry(RegistryOptions{})
		r.Counter("hits").Add(60)
		p := newPublisher(t, r, "http://sextant.test/api/v1/publish", PublisherOptions{Client: &http.Client{Transport: handlerTransport(s)}})
		if err := p.publish(context.Background(), 60_000); err != nil {
			t.Fatal(err)
		}
		if s.calls.Load() != 3 || s.datapoints()["hits{atlas.dstype=rate,statistic=count}"] != 1 {
			t.Errorf("%d calls, got %v", s.calls.Load(), s.datapoints())
		}
		// Retry-After beyond the step's deadline: dropped at once, counted.
		s.answers, s.retry = []int{503}, "30"
		r.Counter("hits").Add(60)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := p.publish(ctx, 120_000); err == nil {
			t.Error("a dropped batch reported no error")
		}
		if time.Since(start) > 500*time.Millisecond {
			t.Errorf("waited %v for a Retry-After past the deadline", time.Since(start))
		}
		if d := r.Counter("spectator.measurements", "id", "dropped", "error", "http-503").Count(); d == 0 {
			t.Error("drop not counted")
		}
	})
}

// TestPublisherDeadServer: a server that is gone makes the publisher drop
// and count, quickly; the application never waits. It runs in a synctest
// bubble, so "quickly" is measured on the bubble's clock and cannot flake
// on a loaded machine.
func TestPublisherDeadServer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(RegistryOptions{})
		c := r.Counter("c")
		refused := roundTripFunc(func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		})
		p := newPublisher(t, r, "http://127.0.0.1:1/api/v1/publish",
			PublisherOptions{Step: 100 * time.Millisecond, Client: &http.Client{Transport: refused}})
		p.Start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 100_000 {
				c.Increment() // never blocks on the publisher
			}
		}()
		<-done
		time.Sleep(350 * time.Millisecond) // synctest: three steps and a half of the bubble's clock
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v", d)
		}
		if d := r.Counter("spectator.measurements", "id", "dropped", "error", "network").Count(); d == 0 {
			t.Error("drops to a dead server not counted")
		}
	})
}

// TestPublisherLoopAndClose publishes every step while a counter grows,
// then closes. In a synctest bubble the steps are exact: 5 × 60 ms cross
// the 100, 200 and 300 ms boundaries.
func TestPublisherLoopAndClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s := &sink{}
		r := NewRegistry(RegistryOptions{})
		c := r.Counter("hits")
		p := newPublisher(t, r, "http://sextant.test/api/v1/publish",
			PublisherOptions{Step: 100 * time.Millisecond, Client: &http.Client{Transport: handlerTransport(s)}})
		p.Start()
		for range 5 {
			c.Add(10)
			time.Sleep(60 * time.Millisecond) // synctest: the bubble's clock
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(context.Background()); err == nil {
			t.Error("second Close succeeded")
		}
		// Every increment arrives: rates times the 0.1 s step add back up.
		if got := s.datapoints()["hits{atlas.dstype=rate,statistic=count}"] * 0.1; got < 49.99 || got > 50.01 {
			t.Errorf("published %v increments, want 50 (%d requests)", got, len(s.bodies))
		}
		if len(s.bodies) < 3 {
			t.Errorf("%d requests in 5 steps", len(s.bodies))
		}
	})
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// handlerTransport serves requests with h in the calling goroutine, with no
// network: inside a synctest bubble a real socket is not durably blocking,
// so the bubble's clock could not advance while a connection idles.
func handlerTransport(h http.Handler) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if r.Body != nil {
			r.Body.Close()
		}
		return w.Result(), nil
	})
}

func TestPublisherOptions(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:7101", "ftp://x/y", "http://"} {
		if _, err := NewPublisher(NewRegistry(RegistryOptions{}), PublisherOptions{URI: u}); err == nil {
			t.Errorf("URI %q accepted", u)
		}
	}
	if _, err := NewPublisher(nil, PublisherOptions{URI: "http://localhost:7101/api/v1/publish"}); err == nil {
		t.Error("nil registry accepted")
	}
}
