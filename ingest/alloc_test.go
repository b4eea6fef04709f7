package ingest

import (
	"net/http/httptest"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// TestPublishAlloc holds the Atlas publish path (decode, merge with the
// common tags, Atlas's rules, the batch for the store) to its allocation
// budget: nothing per request once the pooled working space has grown,
// whatever the number of datapoints.
func TestPublishAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, n := range []int{100, 10_000} {
		body := tsdbtest.AtlasBody(t, n)
		h, err := New(Options{Appender: discard{}, Now: func() int64 { return 1_700_006_400_000 }})
		if err != nil {
			t.Fatal(err)
		}
		req := &publishRequest{}
		r := httptest.NewRequest("POST", "/api/v1/publish", nil)
		run := func() {
			req.body.Reset()
			req.body.Write(body)
			if status, resp, err := h.ingestPublish(r, req); err != nil || status != 200 {
				t.Fatalf("ingestPublish: status %d, %v, %v", status, resp, err)
			}
		}
		run() // grow the working space
		if a := testing.AllocsPerRun(10, run); a != 0 {
			t.Errorf("publish of %d datapoints: %.1f allocations per request, want 0", n, a)
		}
	}
}
