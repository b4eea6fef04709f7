package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/golang/snappy"
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
		convertRemote(&wk, policy)
		for _, p := range wk.batch.Points {
			if reason, _ := policy.check(p.Tags); reason != "" {
				t.Fatalf("kept invalid tags %v: %s", p.Tags, reason)
			}
		}
	})
}
