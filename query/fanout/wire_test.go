package fanout

import (
	"bytes"
	"math"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// wireQueries covers every query operator.
func wireQueries(tb testing.TB) []*tags.Query {
	re := func(q *tags.Query, err error) *tags.Query {
		if err != nil {
			tb.Fatal(err)
		}
		return q
	}
	return []*tags.Query{
		tags.True(), tags.False(), tags.Eq("name", "cpu"), tags.Has("app"),
		tags.Lt("k", "b"), tags.Le("k", "b"), tags.Gt("k", "b"), tags.Ge("k", ""),
		tags.In("zone", []string{"a", "b", "c"}),
		re(tags.Re("app", "api.*")), re(tags.ReIC("app", "(?=x)API")), // RE2 and backtracking
		tags.And(tags.Eq("name", "cpu"), tags.Or(tags.Not(tags.Eq("app", "a")), tags.Has("node"))),
	}
}

func fetchRequests(tb testing.TB) []tsdb.FetchRequest {
	var out []tsdb.FetchRequest
	for i, q := range wireQueries(tb) {
		out = append(out, tsdb.FetchRequest{Query: q, Start: -60_000 * int64(i), End: 1_700_000_000_000, Step: 60_000,
			CF: tsdb.Consolidation(i % 4), Aggregation: tsdb.Aggregation(i % 5)})
	}
	out[3].GroupBy = []string{"app", "zone"}
	out[4].Partitions = &tsdb.Partitions{N: 64, Want: []int{0, 5, 63}}
	return out
}

func TestWireFetchRequest(t *testing.T) {
	t.Parallel()
	for _, req := range fetchRequests(t) {
		got, err := decodeFetchRequest(appendFetchRequest(nil, &req))
		if err != nil {
			t.Fatalf("decode %s: %v", req.Query, err)
		}
		if got.Query.String() != req.Query.String() {
			t.Errorf("query %s came back as %s", req.Query, got.Query)
		}
		got.Query, req.Query = nil, nil
		if diff := cmp.Diff(req, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("request mismatch (-sent +decoded):\n%s", diff)
		}
	}
	// Truncations and trailing bytes are errors, never panics.
	enc := appendFetchRequest(nil, &fetchRequests(t)[10])
	for i := range enc {
		if _, err := decodeFetchRequest(enc[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes: no error", i, len(enc))
		}
	}
	if _, err := decodeFetchRequest(append(enc, 0)); err == nil {
		t.Error("decode with a trailing byte: no error")
	}
}

func seriesSet() *tsdb.SeriesSet {
	return &tsdb.SeriesSet{
		Series: []tsdb.Series{
			{Tags: tags.New("name", "cpu", "app", "a"), DSType: tsdb.Gauge, Values: []float64{1, math.NaN(), math.Inf(-1), -0.5}},
			{Tags: nil, Values: []float64{}},
			{Tags: tags.New("app", "b"), Values: []float64{math.MaxFloat64}},
		},
		Stats: tsdb.Stats{SeriesScanned: 3, DatapointsScanned: 1 << 40},
	}
}

func TestWireSeriesSet(t *testing.T) {
	t.Parallel()
	want := seriesSet()
	enc := appendSeriesSet(nil, want)
	got, err := decodeSeriesSet(enc)
	if err != nil {
		t.Fatal(err)
	}
	// Bit-exact: NaN and infinities cross unchanged.
	if !bytes.Equal(appendSeriesSet(nil, got), enc) {
		t.Errorf("re-encoding differs")
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateNaNs(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("mismatch (-sent +decoded):\n%s", diff)
	}
	for i := range enc {
		if _, err := decodeSeriesSet(enc[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes: no error", i, len(enc))
		}
	}
}

func TestWireTags(t *testing.T) {
	t.Parallel()
	req := tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), After: "a", Limit: 10, Partitions: &tsdb.Partitions{N: 3, Want: []int{2}}}
	got, err := decodeTagsRequest(appendTagsRequest(nil, &req))
	if err != nil || got.Query.String() != req.Query.String() {
		t.Fatalf("decode: %v, %v", got, err)
	}
	got.Query, req.Query = nil, nil
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("mismatch (-sent +decoded):\n%s", diff)
	}
	if got, err := decodeTagsRequest(appendTagsRequest(nil, &tsdb.TagsRequest{})); err != nil || got.Query != nil || got.Partitions != nil {
		t.Errorf("empty request: %+v, %v", got, err)
	}
	tcs := []tsdb.TagCount{{Name: "a", Count: 1}, {Name: "", Count: 0}}
	back, err := decodeTagCounts(appendTagCounts(nil, tcs))
	if err != nil || !cmp.Equal(tcs, back) {
		t.Errorf("tag counts: %v, %v", back, err)
	}
}

func TestWireTraceQuery(t *testing.T) {
	t.Parallel()
	q := tracing.Query{Service: "api", Attributes: []tracing.AttrFilter{
		{Key: "http.route", Match: tracing.MatchRegex, Value: "/a.*", Regex: regexp.MustCompile("^(?:/a.*)$")},
		{Key: "region", Match: tracing.MatchPrefix, Value: "us-"},
	}, Start: 1, End: 2, Limit: 20}
	enc, err := encodeGob(findRequest{Version: wireVersion, Query: toWireQuery(q), N: 4, Want: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	var req findRequest
	if err := decodeGob(enc, &req); err != nil {
		t.Fatal(err)
	}
	got, err := req.Query.query()
	if err != nil {
		t.Fatal(err)
	}
	if got.Attributes[0].Regex.String() != q.Attributes[0].Regex.String() || got.Limit != 20 || got.Attributes[1].Regex != nil {
		t.Errorf("query came back as %+v", got)
	}
}

// FuzzDecodeFetchRequest: any bytes decode to a request or an error; a
// decoded request encodes to a fixed point.
func FuzzDecodeFetchRequest(f *testing.F) {
	for _, req := range fetchRequests(f) {
		f.Add(appendFetchRequest(nil, &req))
	}
	f.Add([]byte{})
	f.Add([]byte{wireVersion, 0, 0, 0, 0, 0, 0, 0, byte(tags.OpNot), byte(tags.OpNot), byte(tags.OpTrue)})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeFetchRequest(b)
		if err != nil {
			return
		}
		enc := appendFetchRequest(nil, &req)
		again, err := decodeFetchRequest(enc)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if enc2 := appendFetchRequest(nil, &again); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %x then %x", enc, enc2)
		}
	})
}

// FuzzDecodeAnswers: series sets, tags requests and tag counts decode
// without panicking, and a decoded series set re-encodes to a fixed point.
func FuzzDecodeAnswers(f *testing.F) {
	f.Add(appendSeriesSet(nil, seriesSet()))
	f.Add(appendTagsRequest(nil, &tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), Partitions: &tsdb.Partitions{N: 2, Want: []int{1}}}))
	f.Add(appendTagCounts(nil, []tsdb.TagCount{{Name: "a", Count: 3}}))
	f.Add([]byte{wireVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if set, err := decodeSeriesSet(b); err == nil {
			// Integers may come non-minimal; the re-encoding is canonical
			// and a fixed point.
			enc := appendSeriesSet(nil, set)
			again, err := decodeSeriesSet(enc)
			if err != nil || !bytes.Equal(appendSeriesSet(nil, again), enc) {
				t.Fatalf("series set %x: re-encoding %x is not a fixed point (%v)", b, enc, err)
			}
		}
		_, _ = decodeTagsRequest(b)
		_, _ = decodeTagCounts(b)
	})
}

// FuzzDecodeTraceMessages: the gob messages of the span side decode
// without panicking.
func FuzzDecodeTraceMessages(f *testing.F) {
	seed := func(v any) {
		b, err := encodeGob(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(findRequest{Version: wireVersion, Query: wireQuery{Service: "a", Limit: 3, Attributes: []wireAttr{{Key: "k", Match: tracing.MatchRegex, Regex: "^a$"}}}, N: 2, Want: []int{0}})
	seed(traceRequest{Version: wireVersion, ID: tracing.TraceID{1}})
	seed(catalogRequest{Version: wireVersion, Operations: true, Service: "a"})
	seed([]tracing.Trace{{ID: tracing.TraceID{1}, Spans: []tracing.Span{{Name: "x", Resource: &tracing.Resource{Service: "a"}}}}})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr findRequest
		if decodeGob(b, &fr) == nil {
			_, _ = fr.Query.query()
		}
		var trs []tracing.Trace
		_ = decodeGob(b, &trs)
		var cr catalogRequest
		_ = decodeGob(b, &cr)
	})
}
