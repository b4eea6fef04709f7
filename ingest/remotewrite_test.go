package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/prometheus/prompb"
)

func remoteBody(t testing.TB, series ...prompb.TimeSeries) []byte {
	t.Helper()
	wr := prompb.WriteRequest{Timeseries: series}
	b, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func labels(kv ...string) []prompb.Label {
	var ls []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls
}

var rwHeaders = []string{"Content-Encoding", "snappy", "Content-Type", "application/x-protobuf", "X-Prometheus-Remote-Write-Version", "0.1.0"}

func TestRemoteWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	body := remoteBody(t,
		prompb.TimeSeries{Labels: labels("__name__", "http_requests_total", "job", "api", "path", "/cart items"),
			Samples: []prompb.Sample{{Timestamp: now - minute, Value: 100}, {Timestamp: now, Value: 160}}},
		prompb.TimeSeries{Labels: labels("__name__", "go_goroutines", "job", "api"),
			Samples: []prompb.Sample{{Timestamp: now, Value: 42}, {Timestamp: now + 1, Value: math.Float64frombits(staleNaN)}}},
	)
	code, _, out := e.post("/api/v1/write", body, rwHeaders...)
	if code != 204 {
		t.Fatalf("remote write: %d %v", code, out)
	}
	// Counters become per-second rates; label values are stored as sent.
	if v := e.value(now, "name", "http_requests_total", "path", "/cart items", "atlas.dstype", "counter"); v != 1 {
		t.Errorf("counter rate = %v, want 1", v)
	}
	if v := e.value(now, "name", "go_goroutines", "atlas.dstype", "gauge"); v != 42 {
		t.Errorf("gauge = %v, want 42", v)
	}
	// One invalid series: 200 with the count dropped, naming it; the valid
	// ones are stored. 21 user tags and one-letter names are fine.
	var many []string
	for i := range 64 {
		many = append(many, fmt.Sprintf("l%d", i), "v")
	}
	body = remoteBody(t,
		prompb.TimeSeries{Labels: labels(append([]string{"__name__", "too_many"}, many...)...), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}},
		prompb.TimeSeries{Labels: labels("__name__", "ok_gauge"), Samples: []prompb.Sample{{Timestamp: now, Value: 5}}},
	)
	code, _, out = e.post("/api/v1/write", body, rwHeaders...)
	if code != 200 || out["type"] != "partial" || out["errorCount"] != 1.0 ||
		!strings.HasPrefix(out["message"].([]any)[0].(string), "too many tags: 66 > 64") {
		t.Errorf("invalid series: %d %v", code, out)
	}
	if v := e.value(now, "name", "ok_gauge"); v != 5 {
		t.Errorf("valid series alongside an invalid one = %v, want 5", v)
	}
	body = remoteBody(t,
		prompb.TimeSeries{Labels: labels(append([]string{"__name__", "twenty_one", "a", "x"}, many[:40]...)...), Samples: []prompb.Sample{{Timestamp: now, Value: 7}}},
		prompb.TimeSeries{Labels: labels("__name__", "bad", "k", "\xff"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}},
	)
	code, _, out = e.post("/api/v1/write", body, rwHeaders...)
	if code != 200 || out["errorCount"] != 1.0 || !strings.Contains(out["message"].([]any)[0].(string), "invalid UTF-8") {
		t.Errorf("invalid UTF-8: %d %v", code, out)
	}
	if v := e.value(now, "name", "twenty_one", "a", "x", "l0", "v"); v != 7 {
		t.Errorf("series with 22 tags and a one-letter one = %v, want 7", v)
	}
	// All rejected: 400.
	code, _, out = e.post("/api/v1/write", remoteBody(t, prompb.TimeSeries{Labels: labels("job", "x"),
		Samples: []prompb.Sample{{Timestamp: now, Value: 1}}}), rwHeaders...)
	if code != 400 {
		t.Errorf("all rejected: %d %v", code, out)
	}
	// A body claiming a huge decoded size is refused before allocating.
	bomb := binary.AppendUvarint(nil, 1<<40)
	code, _, out = e.post("/api/v1/write", append(bomb, 0, 1, 2), rwHeaders...)
	if code != 413 && code != 400 {
		t.Errorf("snappy bomb: %d %v", code, out)
	}
	huge := binary.AppendUvarint(nil, 200<<20)
	code, _, out = e.post("/api/v1/write", append(huge, 0, 1, 2), rwHeaders...)
	if code != 413 {
		t.Errorf("snappy claiming 200 MiB: %d %v", code, out)
	}
	code, _, _ = e.post("/api/v1/write", []byte("not snappy"), rwHeaders...)
	if code != 400 {
		t.Errorf("garbage: %d", code)
	}
}

func FuzzRemoteWrite(f *testing.F) {
	f.Add(remoteBody(f, prompb.TimeSeries{Labels: labels("__name__", "up", "job", "x"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	policy := TagPolicy{}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		var wk remoteWork
		if err := decodeRemote(&wk, b, "snappy", 1<<20); err != nil {
			return
		}
		if len(wk.decoded) > 1<<20 {
			t.Fatalf("decoded %d bytes past the limit", len(wk.decoded))
		}
		convertRemote(&wk, policy, nil, refKey{})
		for _, p := range wk.batch.Points {
			if reason, _ := policy.check(p.Tags); reason != "" {
				t.Fatalf("kept invalid tags %v: %s", p.Tags, reason)
			}
		}
	})
}

// FuzzRemoteWriteRefCache: remote write through the ref cache stores what
// it stores without it, and says the same, over three rounds (the cache
// fills, hits, then meets a store that forgot every series).
func FuzzRemoteWriteRefCache(f *testing.F) {
	f.Add(remoteBody(f,
		prompb.TimeSeries{Labels: labels("__name__", "up", "job", "x"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}, {Timestamp: now + 1, Value: 2}}},
		prompb.TimeSeries{Labels: labels("__name__", "up", "job", "x"), Samples: []prompb.Sample{{Timestamp: now + 2, Value: 3}}},
		prompb.TimeSeries{Labels: labels("job", "x", "__name__", "up"), Samples: []prompb.Sample{{Timestamp: now + 3, Value: 3}}},
		prompb.TimeSeries{Labels: labels("__name__", "bad", "k", "\xff"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}},
		prompb.TimeSeries{Labels: labels("__name__", "long", "k", strings.Repeat("v", 2000)), Samples: []prompb.Sample{{Timestamp: now, Value: 1}}},
		prompb.TimeSeries{Labels: labels("__name__", "reqs_total", "e", ""), Samples: []prompb.Sample{{Timestamp: now, Value: math.Float64frombits(staleNaN)}, {Timestamp: now, Value: 4}}},
	))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := httptest.NewRequest("POST", "/api/v1/write", nil)
		plain, cached := newMemAppender(), newMemAppender()
		hp, err := New(Options{Appender: plain, MaxRefs: -1})
		if err != nil {
			t.Fatal(err)
		}
		hc, err := New(Options{Appender: cached})
		if err != nil {
			t.Fatal(err)
		}
		run := func(h *Handler) string {
			var wk remoteWork
			if err := decodeRemote(&wk, b, "snappy", 1<<20); err != nil {
				return err.Error()
			}
			err := h.ingestRemote(r, &wk)
			return fmt.Sprintf("%v %d %v %v", err, wk.stored, wk.rej.count, wk.rej.messages)
		}
		for round := range 3 {
			if round == 2 {
				plain.forget()
				cached.forget()
			}
			if want, got := run(hp), run(hc); want != got {
				t.Fatalf("round %d: without the cache %s, with it %s", round, want, got)
			}
		}
		slices.Sort(plain.stored)
		slices.Sort(cached.stored)
		if diff := cmp.Diff(plain.stored, cached.stored); diff != "" {
			t.Fatalf("stored (-without +with the cache):\n%s", diff)
		}
	})
}

// TestRemoteWriteRefCache: a second write of the same series goes by ref,
// into the same series; a series with a value cut is not cached (the cut
// is counted on every write).
func TestRemoteWriteRefCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for k := range 3 {
		ts := now - int64(2-k)*minute
		body := remoteBody(t,
			prompb.TimeSeries{Labels: labels("__name__", "go_goroutines", "job", "api"), Samples: []prompb.Sample{{Timestamp: ts, Value: float64(10 + k)}}},
			prompb.TimeSeries{Labels: labels("__name__", "long_gauge", "v", strings.Repeat("x", 2000)), Samples: []prompb.Sample{{Timestamp: ts, Value: 1}}},
		)
		if code, _, out := e.post("/api/v1/write", body, rwHeaders...); code != 204 {
			t.Fatalf("write %d: %d %v", k, code, out)
		}
	}
	for k := range 3 {
		if v := e.value(now-int64(2-k)*minute, "name", "go_goroutines", "job", "api"); v != float64(10+k) {
			t.Errorf("step %d = %v, want %d", k, v, 10+k)
		}
	}
	if got := refCount(e.reg, "hit"); got != 2 {
		t.Errorf("hits = %v, want 2 (the short series, twice)", got)
	}
	if got := e.reg.Counter("sextant.ingest.valuesCut", "protocol", protoRemoteWrite).Count(); got != 3 {
		t.Errorf("values cut = %v, want 3 (one a write)", got)
	}
}

// FuzzRemoteDecode: the one-pass decoder agrees with the generated
// prompb.WriteRequest.Unmarshal on every message the latter accepts (on
// labels and samples; it skips what remote write does not store, so it
// may accept a message whose exemplars or histograms are malformed).
func FuzzRemoteDecode(f *testing.F) {
	seed := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: labels("__name__", "up", "job", "x"), Samples: []prompb.Sample{{Timestamp: now, Value: 1}, {Timestamp: -5, Value: math.Inf(-1)}},
			Exemplars: []prompb.Exemplar{{Labels: labels("trace_id", "abc"), Value: 2, Timestamp: 3}}},
		{Labels: labels("__name__", "h"), Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 3}, Sum: 1.5, Schema: 2}}},
	}, Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Help: "is it"}}}
	b, err := seed.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x00})
	f.Add([]byte{0x0b, 0x0a, 0x00, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got prompb.WriteRequest
		var arena remoteArena
		errWant := want.Unmarshal(b)
		// Decode twice into the same request: reuse must not leak the
		// first decode into the second.
		_ = arena.unmarshalWriteRequest(&got, []byte{0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, 'a', 0x12, 0x01, 'b'})
		errGot := arena.unmarshalWriteRequest(&got, b)
		if errWant != nil {
			return
		}
		if errGot != nil {
			t.Fatalf("prompb decodes %x, the decoder fails: %v", b, errGot)
		}
		if len(got.Timeseries) != len(want.Timeseries) {
			t.Fatalf("%d series, want %d", len(got.Timeseries), len(want.Timeseries))
		}
		for i := range want.Timeseries {
			w, g := want.Timeseries[i], got.Timeseries[i]
			if !cmp.Equal(w.Labels, g.Labels, cmpEmpty) {
				t.Fatalf("series %d labels %v, want %v", i, g.Labels, w.Labels)
			}
			if len(w.Samples) != len(g.Samples) {
				t.Fatalf("series %d: %d samples, want %d", i, len(g.Samples), len(w.Samples))
			}
			for j := range w.Samples {
				if math.Float64bits(w.Samples[j].Value) != math.Float64bits(g.Samples[j].Value) || w.Samples[j].Timestamp != g.Samples[j].Timestamp {
					t.Fatalf("series %d sample %d = %v, want %v", i, j, g.Samples[j], w.Samples[j])
				}
			}
		}
	})
}

// cmpEmpty compares nil and empty slices as equal.
var cmpEmpty = cmp.Comparer(func(a, b []prompb.Label) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
})
