package ingest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
)

// unavailable is an Appender whose backend (the cluster's log) is down.
type unavailable struct{}

func (unavailable) Append(context.Context, *tsdb.Batch) error {
	return fmt.Errorf("produce to partition 3: %w", tsdb.ErrUnavailable)
}

// TestLogUnavailable: a store that cannot be reached (Kafka down in
// cluster mode) is a 503 with Retry-After, never a 500 or a silent 200.
func TestLogUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.Appender = unavailable{} })
	body := fmt.Sprintf(`{"metrics":[{"tags":{"name":"cpu"},"timestamp":%d,"value":1}]}`, now)
	resp, err := http.Post(e.url+"/api/v1/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("publish with the log down = %d (Retry-After %q), want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
