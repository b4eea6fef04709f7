package kafkalog

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

func testPoints() []tsdb.Datapoint {
	return []tsdb.Datapoint{
		{Tags: tags.New("name", "cpu", "node", "a"), T: 1_700_000_000_000, V: 0.5},
		{Tags: tags.New("name", "cpu", "node", "b"), T: 1_700_000_001_000, V: math.Inf(-1)},
		{Tags: tags.New("name", "requests", "status", "200", "atlas.dstype", "counter"), T: -5, V: 1e300},
		{Tags: tags.New("name", string(make([]byte, 300)), "k", ""), T: 0, V: 0},
	}
}

func TestDatapointsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, pts := range [][]tsdb.Datapoint{nil, testPoints()[:1], testPoints()} {
		rec := AppendDatapoints([]byte("prefix"), pts)
		if string(rec[:6]) != "prefix" {
			t.Fatalf("AppendDatapoints overwrote dst")
		}
		rec = rec[6:]
		if k, err := KindOf(rec); k != KindDatapoints || err != nil {
			t.Fatalf("KindOf = %v, %v", k, err)
		}
		b := tsdb.Batch{Points: []tsdb.Datapoint{{T: 42}}}
		if err := DecodeDatapoints(rec, &b); err != nil {
			t.Fatalf("DecodeDatapoints: %v", err)
		}
		want := append([]tsdb.Datapoint{{T: 42}}, pts...)
		if diff := cmp.Diff(want, b.Points, cmp.Comparer(func(a, b float64) bool {
			return math.Float64bits(a) == math.Float64bits(b)
		})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	// NaN keeps its bits.
	rec := AppendDatapoints(nil, []tsdb.Datapoint{{Tags: tags.New("name", "x"), V: math.NaN()}})
	var b tsdb.Batch
	if err := DecodeDatapoints(rec, &b); err != nil || !math.IsNaN(b.Points[0].V) {
		t.Errorf("NaN round trip = %v, %v", b.Points, err)
	}
}

func TestSpansRoundTrip(t *testing.T) {
	t.Parallel()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "api")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3})
	sp.SetSpanID(pcommon.SpanID{4})
	sp.SetName("GET /")
	rec, err := AppendSpans(nil, td)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSpans(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.SpanCount() != 1 || got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name() != "GET /" {
		t.Errorf("DecodeSpans lost the span")
	}
	var b tsdb.Batch
	if err := DecodeDatapoints(rec, &b); !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeDatapoints(spans record) = %v, want ErrCorrupt", err)
	}
}

// TestCorrupt: a flipped bit anywhere, a truncation, another version: all
// ErrCorrupt, never a panic or a wrong datapoint.
func TestCorrupt(t *testing.T) {
	t.Parallel()
	rec := AppendDatapoints(nil, testPoints())
	for i := range len(rec) * 8 {
		bad := append([]byte(nil), rec...)
		bad[i/8] ^= 1 << (i % 8)
		var b tsdb.Batch
		if err := DecodeDatapoints(bad, &b); !errors.Is(err, ErrCorrupt) || len(b.Points) != 0 {
			t.Fatalf("bit %d flipped: %v, %d points", i, err, len(b.Points))
		}
	}
	for n := range len(rec) {
		var b tsdb.Batch
		if err := DecodeDatapoints(rec[:n], &b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
}
