package ingest

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// otlpRequest builds an export request with one resource; fn adds metrics.
func otlpRequest(fn func(ms pmetric.MetricSlice)) pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	fn(rm.ScopeMetrics().AppendEmpty().Metrics())
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

func ts(ms int64) pcommon.Timestamp { return pcommon.Timestamp(ms * 1e6) }

func postOTLP(t *testing.T, url, ct string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/v1/metrics", ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestOTLPHTTPStatuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	good := otlpRequest(func(ms pmetric.MetricSlice) {
		g := ms.AppendEmpty()
		g.SetName("temperature")
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(now))
		dp.SetDoubleValue(21.5)
		dp.Attributes().PutStr("room", "kitchen")
		bad := ms.AppendEmpty()
		bad.SetName("x") // one letter is a fine name, an empty key is not
		bdp := bad.SetEmptyGauge().DataPoints().AppendEmpty()
		bdp.Attributes().PutStr("", "v")
		bdp.SetTimestamp(ts(now))
		bdp.SetDoubleValue(1)
	})
	for _, ct := range []string{ctProto, ctJSON} {
		var body []byte
		if ct == ctJSON {
			body, _ = good.MarshalJSON()
		} else {
			body, _ = good.MarshalProto()
		}
		code, hdr, b := postOTLP(t, e.url, ct, body)
		if code != 200 || hdr.Get("Content-Type") != ct {
			t.Fatalf("%s: %d %s", ct, code, hdr.Get("Content-Type"))
		}
		resp := pmetricotlp.NewExportResponse()
		if ct == ctJSON {
			resp.UnmarshalJSON(b)
		} else {
			resp.UnmarshalProto(b)
		}
		ps := resp.PartialSuccess()
		if ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), "empty tag key (tags={=v") {
			t.Errorf("%s: partial success %d %q", ct, ps.RejectedDataPoints(), ps.ErrorMessage())
		}
	}
	if v := e.value(now, "name", "temperature", "room", "kitchen", "service.name", "svc"); v != 21.5 {
		t.Errorf("stored gauge = %v", v)
	}
	// Bad data: 400 with a google.rpc.Status in the request's type.
	code, _, b := postOTLP(t, e.url, ctProto, []byte{0xff, 0xff, 0xff})
	var st spb.Status
	if code != 400 || proto.Unmarshal(b, &st) != nil || !strings.Contains(st.Message, "invalid OTLP request") {
		t.Errorf("bad protobuf: %d %v", code, st.String())
	}
	code, _, b = postOTLP(t, e.url, ctJSON, []byte(`{"resourceMetrics":[`))
	if code != 400 || protojson.Unmarshal(b, &st) != nil || st.Code != 3 {
		t.Errorf("bad json: %d %s", code, b)
	}
	code, _, _ = postOTLP(t, e.url, "text/plain", []byte("x"))
	if code != 415 {
		t.Errorf("text/plain: %d, want 415", code)
	}
}

func TestOTLPMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	req := otlpRequest(func(ms pmetric.MetricSlice) {
		// Exponential histogram, delta, seconds: 4 values in (1, 2] s.
		eh := ms.AppendEmpty()
		eh.SetName("rpc.duration")
		eh.SetUnit("s")
		ehd := eh.SetEmptyExponentialHistogram()
		ehd.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := ehd.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(ts(now - minute))
		dp.SetTimestamp(ts(now))
		dp.SetScale(0) // base 2: bucket i is (2^i, 2^(i+1)]
		dp.SetCount(4)
		dp.SetSum(6)
		dp.Positive().SetOffset(0)
		dp.Positive().BucketCounts().FromRaw([]uint64{4})
		// Summary: quantiles become gauges.
		sm := ms.AppendEmpty()
		sm.SetName("gc.pause")
		sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
		sdp.SetTimestamp(ts(now))
		sdp.SetCount(10)
		sdp.SetSum(2.5)
		q := sdp.QuantileValues().AppendEmpty()
		q.SetQuantile(0.99)
		q.SetValue(0.7)
		// Non-monotonic cumulative sum: a gauge. Exemplars are dropped.
		ud := ms.AppendEmpty()
		ud.SetName("queue.size")
		uds := ud.SetEmptySum()
		uds.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		udp := uds.DataPoints().AppendEmpty()
		udp.SetTimestamp(ts(now))
		udp.SetIntValue(17)
		udp.Exemplars().AppendEmpty().SetDoubleValue(1)
	})
	body, _ := req.MarshalProto()
	if code, _, _ := postOTLP(t, e.url, ctProto, body); code != 200 {
		t.Fatalf("export: %d", code)
	}
	// Delta over one minute at a 60 s step: the step ending at now has the
	// per-second rates.
	f := func(want float64, kv ...string) {
		t.Helper()
		if got := e.value(now, kv...); math.Abs(got-want) > 1e-12 {
			t.Errorf("%v = %v, want %v", kv, got, want)
		}
	}
	f(4.0/60, "name", "rpc.duration", "statistic", "count")
	f(6.0/60, "name", "rpc.duration", "statistic", "totalTime")
	f(0.7, "name", "gc.pause", "quantile", "0.99")
	f(17, "name", "queue.size", "atlas.dstype", "gauge")
	// The 4 values, spread over (1 s, 2 s], land in the T buckets of 1e9..2e9 ns.
	set, err := e.store.Fetch(context.Background(), tsdb.FetchRequest{
		Query: tags.And(tags.Eq("name", "rpc.duration"), tags.Eq("statistic", "percentile")),
		Start: now, End: now + minute, Step: minute, Aggregation: tsdb.AggSum, GroupBy: []string{"percentile"}})
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	lo, hi := lib.PercentileTag('T', lib.PercentileBucketIndex(1e9)), lib.PercentileTag('T', lib.PercentileBucketIndex(2e9))
	for _, s := range set.Series {
		p, _ := s.Tags.Get("percentile")
		if p < lo || p > hi {
			t.Errorf("bucket %s outside (1 s, 2 s]: %s..%s", p, lo, hi)
		}
		total += s.Values[0]
	}
	if math.Abs(total-4.0/60) > 1e-12 {
		t.Errorf("bucket rates sum to %v, want %v", total, 4.0/60)
	}
}

// TestOTLPHistogramMinMax: a histogram's min and max become statistic=min
// (a min gauge) and statistic=max (a gauge) in seconds for time units;
// two exports in one step keep the smallest min and the largest max.
func TestOTLPHistogramMinMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i, mm := range [][2]float64{{12, 40}, {7, 30}, {9, 55}} {
		req := otlpRequest(func(ms pmetric.MetricSlice) {
			h := ms.AppendEmpty()
			h.SetName("lat")
			h.SetUnit("ms")
			hd := h.SetEmptyHistogram()
			hd.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			dp := hd.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(ts(now - minute + int64(i)*10_000))
			dp.SetTimestamp(ts(now - minute + int64(i+1)*10_000))
			dp.ExplicitBounds().FromRaw([]float64{10, 100})
			dp.BucketCounts().FromRaw([]uint64{1, 1, 0})
			dp.SetCount(2)
			dp.SetSum(mm[0] + mm[1])
			dp.SetMin(mm[0])
			dp.SetMax(mm[1])
		})
		body, _ := req.MarshalProto()
		if code, _, _ := postOTLP(t, e.url, ctProto, body); code != 200 {
			t.Fatalf("export %d: %d", i, code)
		}
	}
	f := func(want float64, kv ...string) {
		t.Helper()
		if got := e.value(now, kv...); math.Abs(got-want) > 1e-12 {
			t.Errorf("%v = %v, want %v", kv, got, want)
		}
	}
	f(0.007, "name", "lat", "statistic", "min", "atlas.dstype", "min-gauge")
	f(0.055, "name", "lat", "statistic", "max", "atlas.dstype", "gauge")

	// The range is at every step the counts are stored in: a delta's
	// interval (now-90 s, now-30 s] is in the steps ending at now-60 s and
	// now; a cumulative's at the step of its time and the one before.
	for _, temp := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityDelta, pmetric.AggregationTemporalityCumulative} {
		name := "lat." + strings.ToLower(temp.String())
		req := otlpRequest(func(ms pmetric.MetricSlice) {
			h := ms.AppendEmpty()
			h.SetName(name)
			h.SetUnit("s")
			hd := h.SetEmptyHistogram()
			hd.SetAggregationTemporality(temp)
			dp := hd.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(ts(now - 90_000))
			dp.SetTimestamp(ts(now - 30_000))
			dp.ExplicitBounds().FromRaw([]float64{1})
			dp.BucketCounts().FromRaw([]uint64{3, 0})
			dp.SetCount(3)
			dp.SetSum(0.7)
			dp.SetMin(0.1)
			dp.SetMax(0.4)
		})
		body, _ := req.MarshalProto()
		if code, _, _ := postOTLP(t, e.url, ctProto, body); code != 200 {
			t.Fatalf("export %s: %d", name, code)
		}
		for _, at := range []int64{now - minute, now} {
			if got := e.value(at, "name", name, "statistic", "min"); got != 0.1 {
				t.Errorf("%s: min at %d = %v, want 0.1", name, at, got)
			}
			if got := e.value(at, "name", name, "statistic", "max"); got != 0.4 {
				t.Errorf("%s: max at %d = %v, want 0.4", name, at, got)
			}
		}
		if got := e.value(now-2*minute, "name", name, "statistic", "max"); !math.IsNaN(got) {
			t.Errorf("%s: max at the step before its interval = %v, want none", name, got)
		}
	}
}

func FuzzOTLPJSON(f *testing.F) {
	req := otlpRequest(func(ms pmetric.MetricSlice) {
		g := ms.AppendEmpty()
		g.SetName("m")
		dp := g.SetEmptyHistogram().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts(now))
		dp.ExplicitBounds().FromRaw([]float64{1, 10})
		dp.BucketCounts().FromRaw([]uint64{1, 2, 3})
		dp.SetCount(6)
	})
	b, _ := req.MarshalJSON()
	f.Add(b)
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"1"}]}}]}]}]}`))
	policy := TagPolicy{}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		r := pmetricotlp.NewExportRequest()
		if err := r.UnmarshalJSON(b); err != nil {
			return
		}
		if r.Metrics().DataPointCount() > 1000 {
			return // the handler refuses these before mapping
		}
		var c otlpConverter
		c.reset(policy, now, 60_000, nil)
		c.convert(r.Metrics())
		for _, p := range c.points {
			if reason, _ := policy.check(p.Tags); reason != "" {
				t.Fatalf("converter kept invalid tags %v: %s", p.Tags, reason)
			}
		}
	})
}
