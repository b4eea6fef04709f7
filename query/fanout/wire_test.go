package fanout

import (
	"bytes"
	"math"
	"regexp"
	"strings"
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
	for i, req := range fetchRequests(t) {
		// Requests without extras are version 1, with a strong read's
		// offsets 2, with a budget 3 (offsets or not).
		var m reqMeta
		if i%2 == 1 {
			m.offs = []partOffset{{P: 0, Offset: 0}, {P: 5, Offset: 1 << 40}, {P: 63, Offset: int64(i)}}
		}
		wantVersion := byte(1 + i%2)
		if i%3 == 2 {
			m.budget = &tsdb.Cost{Series: i, Datapoints: 1 << 40, Bytes: 0}
			wantVersion = 3
		}
		enc := appendFetchRequest(nil, &req, m)
		if enc[0] != wantVersion {
			t.Errorf("request %d has version %d, want %d", i, enc[0], wantVersion)
		}
		got, gotMeta, err := decodeFetchRequest(enc)
		if err != nil {
			t.Fatalf("decode %s: %v", req.Query, err)
		}
		if !cmp.Equal(m, gotMeta, cmp.AllowUnexported(reqMeta{})) {
			t.Errorf("offsets and budget %+v came back as %+v", m, gotMeta)
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
	enc := appendFetchRequest(nil, &fetchRequests(t)[10], reqMeta{offs: []partOffset{{P: 1, Offset: 300}}, budget: &tsdb.Cost{Series: 7, Datapoints: 300, Bytes: 1 << 20}})
	for i := range enc {
		if _, _, err := decodeFetchRequest(enc[:i]); err == nil {
			t.Errorf("decode of %d of %d bytes: no error", i, len(enc))
		}
	}
	if _, _, err := decodeFetchRequest(append(enc, 0)); err == nil {
		t.Error("decode with a trailing byte: no error")
	}
	enc[0] = 4
	if _, _, err := decodeFetchRequest(enc); err == nil || !strings.Contains(err.Error(), "version 4") {
		t.Errorf("decode of version 4 = %v, want a version error", err)
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
	for _, tc := range []struct {
		start, end int64
		offs       []partOffset
		version    byte
	}{
		{0, 0, nil, 1},
		{1_700_000_000_000, 1_700_000_600_000, nil, 2},
		{0, 0, []partOffset{{P: 2, Offset: 7}}, 2},
		{-5, 9, []partOffset{{P: 2, Offset: 0}}, 2},
	} {
		req := req
		req.Start, req.End = tc.start, tc.end
		enc := appendTagsRequest(nil, &req, tc.offs)
		if enc[0] != tc.version {
			t.Errorf("tags request %+v has version %d, want %d", tc, enc[0], tc.version)
		}
		got, offs, err := decodeTagsRequest(enc)
		if err != nil || got.Query.String() != req.Query.String() {
			t.Fatalf("decode: %v, %v", got, err)
		}
		got.Query, req.Query = nil, nil
		if diff := cmp.Diff(req, got); diff != "" || !cmp.Equal(offs, tc.offs) {
			t.Errorf("mismatch (-sent +decoded):\n%s offsets %v, want %v", diff, offs, tc.offs)
		}
	}
	if got, _, err := decodeTagsRequest(appendTagsRequest(nil, &tsdb.TagsRequest{}, nil)); err != nil || got.Query != nil || got.Partitions != nil {
		t.Errorf("empty request: %+v, %v", got, err)
	}
	tcs := []tsdb.TagCount{{Name: "a", Count: 1}, {Name: "", Count: 0}}
	back, err := decodeTagCounts(appendTagCounts(nil, tcs))
	if err != nil || !cmp.Equal(tcs, back) {
		t.Errorf("tag counts: %v, %v", back, err)
	}
}

func TestWireSeries(t *testing.T) {
	t.Parallel()
	req := tsdb.SeriesRequest{Query: tags.Eq("name", "cpu"), Start: 5, End: 9_000, Limit: 3, Partitions: &tsdb.Partitions{N: 4, Want: []int{1, 3}}}
	for _, m := range []reqMeta{
		{offs: []partOffset{{P: 1, Offset: 10}, {P: 3, Offset: 0}}},
		{budget: &tsdb.Cost{Series: 1000}},
		{offs: []partOffset{{P: 1, Offset: 10}}, budget: &tsdb.Cost{Series: 7, Datapoints: 1, Bytes: 2}},
	} {
		r := req
		enc := appendSeriesRequest(nil, &r, m)
		wantVersion := byte(wireVersionStrong)
		if m.budget != nil {
			wantVersion = wireVersionBudget
		}
		if enc[0] != wantVersion {
			t.Errorf("series request %+v: version %d, want %d", m, enc[0], wantVersion)
		}
		got, gotMeta, err := decodeSeriesRequest(enc)
		if err != nil || got.Query.String() != req.Query.String() {
			t.Fatalf("decode: %v, %v", got, err)
		}
		got.Query, r.Query = nil, nil
		if diff := cmp.Diff(r, got); diff != "" || !cmp.Equal(m, gotMeta, cmp.AllowUnexported(reqMeta{})) {
			t.Errorf("mismatch (-sent +decoded):\n%s meta %+v, want %+v", diff, gotMeta, m)
		}
		for i := range enc {
			if _, _, err := decodeSeriesRequest(enc[:i]); err == nil {
				t.Errorf("decode of %d of %d bytes: no error", i, len(enc))
			}
		}
		enc[0] = wireVersionBase
		if _, _, err := decodeSeriesRequest(enc); err == nil {
			t.Error("a series request of version 1: no error")
		}
	}
	sets := []tags.Set{tags.New("name", "a"), tags.New("name", "b", "app", "x")}
	for _, more := range []bool{false, true} {
		back, bmore, err := decodeSeriesList(appendSeriesList(nil, sets, more))
		if err != nil || bmore != more || !cmp.Equal(back, sets) {
			t.Errorf("series list (more %v) came back as %v, %v, %v", more, back, bmore, err)
		}
	}
}

func TestWireTraceQuery(t *testing.T) {
	t.Parallel()
	q := tracing.Query{Service: "api", Attributes: []tracing.AttrFilter{
		{Key: "http.route", Match: tracing.MatchRegex, Value: "/a.*", Regex: regexp.MustCompile("^(?:/a.*)$")},
		{Key: "region", Match: tracing.MatchPrefix, Value: "us-"},
	}, Start: 1, End: 2, Limit: 20}
	enc, err := encodeGob(findRequest{Version: wireVersionBase, Query: toWireQuery(q), N: 4, Want: []int{1}})
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
	for i, req := range fetchRequests(f) {
		var m reqMeta
		if i%2 == 1 {
			m.offs = []partOffset{{P: i, Offset: int64(i) << 20}}
		}
		if i%3 == 2 {
			m.budget = &tsdb.Cost{Series: i, Datapoints: i << 10}
		}
		f.Add(appendFetchRequest(nil, &req, m))
	}
	f.Add([]byte{})
	f.Add([]byte{wireVersionBase, 0, 0, 0, 0, 0, 0, 0, byte(tags.OpNot), byte(tags.OpNot), byte(tags.OpTrue)})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, m, err := decodeFetchRequest(b)
		if err != nil {
			return
		}
		enc := appendFetchRequest(nil, &req, m)
		again, m2, err := decodeFetchRequest(enc)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if enc2 := appendFetchRequest(nil, &again, m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not a fixed point: %x then %x", enc, enc2)
		}
	})
}

// FuzzDecodeAnswers: series sets, tags requests and tag counts decode
// without panicking, and a decoded series set re-encodes to a fixed point.
func FuzzDecodeAnswers(f *testing.F) {
	f.Add(appendSeriesSet(nil, seriesSet()))
	f.Add(appendTagsRequest(nil, &tsdb.TagsRequest{Key: "app", Query: tags.Eq("name", "cpu"), Partitions: &tsdb.Partitions{N: 2, Want: []int{1}}}, nil))
	f.Add(appendTagsRequest(nil, &tsdb.TagsRequest{Key: "app", Start: 1, End: 2}, []partOffset{{P: 1, Offset: 3}}))
	f.Add(appendSeriesRequest(nil, &tsdb.SeriesRequest{Query: tags.Eq("name", "cpu"), Limit: 2, Partitions: &tsdb.Partitions{N: 2, Want: []int{1}}}, reqMeta{offs: []partOffset{{P: 1, Offset: 3}}}))
	f.Add(appendSeriesRequest(nil, &tsdb.SeriesRequest{Query: tags.Eq("name", "cpu")}, reqMeta{budget: &tsdb.Cost{Series: 5}}))
	f.Add(appendSeriesList(nil, []tags.Set{tags.New("name", "a")}, true))
	f.Add(appendTagCounts(nil, []tsdb.TagCount{{Name: "a", Count: 3}}))
	f.Add([]byte{wireVersionBase, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
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
		_, _, _ = decodeTagsRequest(b)
		_, _, _ = decodeSeriesRequest(b)
		if sets, more, err := decodeSeriesList(b); err == nil {
			enc := appendSeriesList(nil, sets, more)
			again, more2, err := decodeSeriesList(enc)
			if err != nil || more2 != more || !bytes.Equal(appendSeriesList(nil, again, more2), enc) {
				t.Fatalf("series list %x: re-encoding %x is not a fixed point (%v)", b, enc, err)
			}
		}
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
	seed(findRequest{Version: wireVersionBase, Query: wireQuery{Service: "a", Limit: 3, Attributes: []wireAttr{{Key: "k", Match: tracing.MatchRegex, Regex: "^a$"}}}, N: 2, Want: []int{0}})
	seed(traceRequest{Version: wireVersionBase, ID: tracing.TraceID{1}})
	seed(catalogRequest{Version: wireVersionBase, Operations: true, Service: "a"})
	seed(traceRequest{Version: wireVersionStrong, ID: tracing.TraceID{1}, Offsets: []partOffset{{P: 0, Offset: 9}}})
	seed(depsRequest{Version: wireVersionStrong, Start: 1, End: 2, Offsets: []partOffset{{P: 1, Offset: 9}}})
	seed(exemplarsRequest{Version: wireVersionBase, Start: 1, End: 2, N: 4, Want: []int{1, 2}})
	seed(depsRequest{Version: wireVersionBudget, Start: 1, End: 2, N: 4, Want: []int{0, 3}})
	seed(depsAnswer{In: []tracing.Dependency{{Parent: "a", Child: "b", CallCount: 3}}, Unplaced: []tracing.Dependency{{Parent: "a", Child: "c", CallCount: 1}}})
	seed([]tracing.Trace{{ID: tracing.TraceID{1}, Spans: []tracing.Span{{Name: "x", Resource: &tracing.Resource{Service: "a"}}}}})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr findRequest
		if decodeGob(b, &fr) == nil {
			_, _ = fr.Query.query()
		}
		var trs []tracing.Trace
		_ = decodeGob(b, &trs)
		var cr catalogRequest
		if decodeGob(b, &cr) == nil {
			_ = checkGobVersion(cr.Version)
		}
		var dr depsRequest
		_ = decodeGob(b, &dr)
		var da depsAnswer
		_ = decodeGob(b, &da)
		var er exemplarsRequest
		_ = decodeGob(b, &er)
		var ex []tracing.Exemplar
		_ = decodeGob(b, &ex)
	})
}
