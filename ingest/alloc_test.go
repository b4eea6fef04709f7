package ingest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// refAppender stores nothing and gives every datapoint sent by tags a ref,
// as a store does.
type refAppender struct{}

func (refAppender) Append(_ context.Context, b *tsdb.Batch) error {
	b.Rejected = b.Rejected[:0]
	for i := range b.Points {
		if b.Points[i].Ref == 0 {
			b.Points[i].Ref = tsdb.SeriesRef(i + 1)
		}
	}
	return nil
}

// TestPublishAlloc holds the Atlas publish path (decode, merge with the
// common tags, Atlas's rules, the batch for the store) to its allocation
// budget: nothing per request once the pooled working space has grown,
// whatever the number of datapoints, through the ref cache too (an
// appender that hands out refs fills it; discard does not).
func TestPublishAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		n   int
		app tsdb.Appender
	}{{100, discard{}}, {10_000, discard{}}, {100, refAppender{}}, {10_000, refAppender{}}} {
		n := tc.n
		body := tsdbtest.AtlasBody(t, n)
		h, err := New(Options{Appender: tc.app, Now: func() int64 { return 1_700_006_400_000 }})
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
		run() // grow the working space (and fill the ref cache)
		if _, refs := tc.app.(refAppender); refs && h.refs.len() != n {
			t.Fatalf("%d refs cached after a publish of %d series", h.refs.len(), n)
		}
		if a := testing.AllocsPerRun(10, run); a != 0 {
			t.Errorf("publish of %d datapoints to %T: %.1f allocations per request, want 0", n, tc.app, a)
		}
	}
}

// TestRemoteWriteAlloc holds remote write (snappy, the one-pass decode,
// the tag policy, the ref cache, the batch for the store) to nothing
// allocated per request once its pooled working space has grown.
func TestRemoteWriteAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var series []prompb.TimeSeries
	for i := range 1000 {
		series = append(series, prompb.TimeSeries{Labels: labels("__name__", fmt.Sprintf("m%d_total", i%10), "job", "api", "instance", fmt.Sprint(i)),
			Samples: []prompb.Sample{{Timestamp: now, Value: float64(i)}}})
	}
	body := remoteBody(t, series...)
	for _, app := range []tsdb.Appender{discard{}, refAppender{}} {
		h, err := New(Options{Appender: app, Now: func() int64 { return now }})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", "/api/v1/write", nil)
		var wk remoteWork
		run := func() {
			if err := decodeRemote(&wk, body, "snappy", 1<<20); err != nil {
				t.Fatal(err)
			}
			if err := h.ingestRemote(r, &wk); err != nil || wk.stored != 1000 {
				t.Fatalf("ingestRemote: %v, %d stored", err, wk.stored)
			}
		}
		run()
		if a := testing.AllocsPerRun(10, run); a != 0 {
			t.Errorf("remote write of 1 000 samples to %T: %.1f allocations per request, want 0", app, a)
		}
	}
}

// TestOTLPAlloc holds the OTLP metrics mapping (attributes to tags, a
// histogram's series, the ref cache, the batch for the store) to a
// budget of allocations per request that does not grow with its
// datapoints, once the pooled working space has grown: the response's
// (pdata) only. The protobuf decode is pdata's and not counted.
func TestOTLPAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w := tsdbtest.LoadWorkload(t, 2000, 1, now)
	for _, app := range []tsdb.Appender{discard{}, refAppender{}} {
		var per [2]float64
		for i, n := range []int{200, 2000} {
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(otlpBody(t, w, 0, 0, n)); err != nil {
				t.Fatal(err)
			}
			h, err := New(Options{Appender: app, Now: func() int64 { return w.End() }})
			if err != nil {
				t.Fatal(err)
			}
			run := func() {
				resp, err := h.exportMetrics(context.Background(), req)
				if err != nil || resp.PartialSuccess().RejectedDataPoints() > 0 {
					t.Fatalf("export: %v %s", err, resp.PartialSuccess().ErrorMessage())
				}
			}
			run()
			per[i] = testing.AllocsPerRun(10, run)
		}
		if per[0] != per[1] || per[1] > otlpAllocBudget {
			t.Errorf("OTLP export to %T: %v and %v allocations per request of 200 and 2 000 series, want the same, at most %d",
				app, per[0], per[1], otlpAllocBudget)
		}
	}
}

// otlpAllocBudget is what an OTLP export allocates whatever its size: the
// response (pmetricotlp.NewExportResponse: two).
const otlpAllocBudget = 2
