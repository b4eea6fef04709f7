package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sextant-dev/sextant/query/api"
	"github.com/sextant-dev/sextant/tsdb"
)

// failingQuerier is a store whose disk fails.
type failingQuerier struct{}

var errDisk = errors.New("read block 42: input/output error")

func (failingQuerier) Fetch(context.Context, tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	return nil, errDisk
}

func (failingQuerier) Tags(context.Context, tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	return nil, errDisk
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServerFaultIs500 is issue #9 item 3: an error the API did not
// recognise was a 400 (the user's fault) and was not logged. A disk error
// is a 500, logged with the request; user mistakes stay 400.
func TestServerFaultIs500(t *testing.T) {
	t.Parallel()
	var logs syncBuf
	a, err := api.New(api.Options{Querier: failingQuerier{}, StorageStep: 60_000,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return time.UnixMilli(t0) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/api/v1/graph?format=json&q=name,cpu,:eq,:sum", "/api/v1/tags?q=name,cpu,:eq"} {
		code, body := get(path)
		if code != 500 || !strings.Contains(body, "input/output error") {
			t.Errorf("%s on a failing disk = %d %s, want 500", path, code, body)
		}
		u, _ := url.Parse(path)
		if !strings.Contains(logs.String(), "query failed") || !strings.Contains(logs.String(), u.Path) {
			t.Errorf("%s: the 500 was not logged with the request: %s", path, logs.String())
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/graph?format=json&q=name,cpu,:eq,:bogus", ":bogus"},
		{"/api/v1/graph?format=json&q=1&step=100000y", "1000 years"},
		{"/api/v1/graph?format=svg&q=1&stack.99=1", "stack.99"},
		{"/api/v1/graph?format=svg&q=1&ylabel.5=x", "ylabel.5"},
		{"/api/v1/graph?format=json&q=1,:time-span", ""},
	} {
		code, body := get(tc.path)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s = %d %s, want a 400 naming %q", tc.path, code, body, tc.want)
		}
	}
}

// blockingQuerier blocks every fetch until its context ends, and reports
// the context's error.
type blockingQuerier struct{ ended chan error }

func (b blockingQuerier) Fetch(ctx context.Context, _ tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, ctx.Err()
}

func (b blockingQuerier) Tags(ctx context.Context, _ tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, ctx.Err()
}

// TestClientGoneStopsQuery: the store's work is cancelled when the client
// goes away, not at the query time limit.
func TestClientGoneStopsQuery(t *testing.T) {
	t.Parallel()
	q := blockingQuerier{ended: make(chan error, 2)}
	a, err := api.New(api.Options{Querier: q, StorageStep: 60_000, QueryTimeout: time.Hour,
		Now: func() time.Time { return time.UnixMilli(t0) }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/graph?format=json&q=name,cpu,:eq,:sum", nil)
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.AfterFunc(100*time.Millisecond, cancel)
	select {
	case err := <-q.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("fetch ended with %v, want Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch went on after the client left")
	}
}
