package ingest

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tsdbtest"
)

// discard is an Appender that stores nothing, to measure ingest alone.
type discard struct{}

func (discard) Append(_ context.Context, b *tsdb.Batch) error {
	b.Rejected = b.Rejected[:0]
	return nil
}

// BenchmarkPublishDecode decodes and validates one Atlas body of the tsdbtest workload of
// 10 000 datapoints per op: the JSON scan, the merge with the common tags,
// Atlas's rules and the batch for the store. It reports datapoints per
// second and allocations per datapoint.
func BenchmarkPublishDecode(b *testing.B) {
	body := tsdbtest.AtlasBody(b, 10_000)
	h, err := New(Options{Appender: discard{}, Now: func() int64 { return 1_700_006_400_000 }})
	if err != nil {
		b.Fatal(err)
	}
	req := &publishRequest{}
	r := httptest.NewRequest("POST", "/api/v1/publish", nil)
	run := func() {
		req.body.Reset()
		req.body.Write(body)
		status, resp, err := h.ingestPublish(r, req)
		if err != nil || status != 200 {
			b.Fatalf("status %d %v %v", status, resp, err)
		}
	}
	run()
	n := len(req.batch.Points)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/perOp/1e6, "Mdp/s")
	b.ReportMetric(perOp*1e9/float64(n), "ns/dp")
}
