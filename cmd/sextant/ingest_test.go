package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// Tests of issue #10 through the server's real HTTP paths: what real
// clients send is stored exactly.

// post sends body to url with header pairs and returns the status and body.
func post(t *testing.T, url string, body []byte, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postOTLP sends md as OTLP/HTTP protobuf to addr.
func postOTLP(t *testing.T, addr string, md pmetric.Metrics) (int, string) {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return post(t, "http://"+addr+"/v1/metrics", b, "Content-Type", "application/x-protobuf")
}

// postRemote sends series as a remote-write 1.0 request to addr.
func postRemote(t *testing.T, addr string, series ...prompb.TimeSeries) (int, string) {
	t.Helper()
	wr := prompb.WriteRequest{Timeseries: series}
	b, err := wr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return post(t, "http://"+addr+"/api/v1/write", snappy.Encode(nil, b),
		"Content-Encoding", "snappy", "Content-Type", "application/x-protobuf", "X-Prometheus-Remote-Write-Version", "0.1.0")
}

// total is the sum of the non-NaN values of a one-second-step line: the
// increase a rate line stands for.
func total(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		if !math.IsNaN(x) {
			s += x
		}
	}
	return s
}

// TestCounterIncreasesThroughHTTP: issue #10 item 1. A cumulative OTLP sum
// sent every 0.5 s from 0 to 29 (telemetrygen's shape) holds 29
// increments, not about 55; remote-write samples once a second from T+1 s
// to T+25 s hold 24, not 28; the last partial step is there at once.
func TestCounterIncreasesThroughHTTP(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addr := startServe(t, cfg)
	t0 := time.Now().Add(-2 * time.Minute).Truncate(time.Second).Add(300 * time.Millisecond)

	for k := 0; k <= 58; k++ {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("gen")
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := s.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(k) * 500 * time.Millisecond)))
		dp.SetIntValue(int64(k / 2))
		if code, body := postOTLP(t, addr, md); code != 200 {
			t.Fatalf("OTLP export %d: %d %s", k, code, body)
		}
	}
	for i := 1; i <= 25; i++ {
		code, body := postRemote(t, addr, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "reqs_total"}},
			Samples: []prompb.Sample{{Timestamp: t0.Add(time.Duration(i) * time.Second).UnixMilli(), Value: float64(i)}},
		})
		if code/100 != 2 {
			t.Fatalf("remote write %d: %d %s", i, code, body)
		}
	}
	s, e := t0.Add(-10*time.Second), t0.Add(60*time.Second)
	if got := total(first(graph(t, addr, "name,gen,:eq", s, e))); math.Abs(got-29) > 1e-9 {
		t.Errorf("OTLP cumulative 0..29 every 0.5 s: stored increase %v, want 29", got)
	}
	if got := total(first(graph(t, addr, "name,reqs_total,:eq", s, e))); math.Abs(got-24) > 1e-9 {
		t.Errorf("remote write 1..25 once a second: stored increase %v, want 24", got)
	}
}

// TestHistogramPercentilesWithinMinMax: issue #10 item 2. With the SDK's
// default bucket boundaries and unit s, 90 values between 10 and 99 ms all
// fall into the bucket (0, 5]: percentiles must come from min and max,
// not from the bucket's width, and never leave [min, max].
func TestHistogramPercentilesWithinMinMax(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addr := startServe(t, cfg)
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		bounds   []float64
		counts   []uint64
		min, max float64
	}{
		{"default", []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000},
			[]uint64{0, 90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0.010, 0.099},
		{"good", []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25},
			[]uint64{0, 0, 17, 25, 25, 23, 0, 0}, 0.011, 0.093},
	} {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("lat." + tc.name)
		m.SetUnit("s")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(-time.Second)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
		dp.ExplicitBounds().FromRaw(tc.bounds)
		dp.BucketCounts().FromRaw(tc.counts)
		dp.SetCount(90)
		dp.SetSum(90 * 0.05)
		dp.SetMin(tc.min)
		dp.SetMax(tc.max)
		if code, body := postOTLP(t, addr, md); code != 200 {
			t.Fatalf("OTLP export: %d %s", code, body)
		}
		lines := graph(t, addr, "name,lat."+tc.name+",:eq,(,1,50,99,),:percentiles", t0.Add(-5*time.Second), t0.Add(5*time.Second))
		if len(lines) != 3 {
			t.Fatalf("%s: %d percentile lines, want 3: %v", tc.name, len(lines), lines)
		}
		for legend, xs := range lines {
			n := 0
			for _, x := range xs {
				if math.IsNaN(x) {
					continue
				}
				n++
				if x < tc.min || x > tc.max {
					t.Errorf("%s: %s = %v s, outside [%v, %v]", tc.name, legend, x, tc.min, tc.max)
				}
			}
			if n == 0 {
				t.Errorf("%s: %s has no value", tc.name, legend)
			}
		}
	}
}

// TestTagsStoredAsSent: issue #10 items 3, 4 and 5. Remote write and OTLP
// tags are stored as sent and found by their own spelling in the stack
// language; one bad series is dropped alone with a 2xx; a value over 1024
// bytes is cut; OTel resources promote a documented set of attributes and
// keep the rest in target_info, so a large resource rejects nothing.
func TestTagsStoredAsSent(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addr := startServe(t, cfg)
	t0 := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	long := strings.Repeat("é", 600) // 1200 bytes
	code, body := postRemote(t, addr,
		prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "job:x:rate5m"}, {Name: "a", Value: "1"},
			{Name: "instance", Value: "127.0.0.1:9100"}, {Name: "région", Value: "Île-de-France"}, {Name: "long", Value: long}},
			Samples: []prompb.Sample{{Timestamp: t0.UnixMilli(), Value: 3}}},
		prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "bad"}, {Name: "k", Value: "\xff"}},
			Samples: []prompb.Sample{{Timestamp: t0.UnixMilli(), Value: 1}}},
	)
	if code != 200 || !strings.Contains(body, `"errorCount":1`) {
		t.Errorf("remote write with one bad series: %d %s, want 200 with errorCount 1", code, body)
	}
	s, e := t0.Add(-5*time.Second), t0.Add(5*time.Second)
	for _, q := range []string{
		"name,job:x:rate5m,:eq",
		"instance,127.0.0.1:9100,:eq",
		"région,Île-de-France,:eq",
		"a,1,:eq",
		"long," + long[:1024] + ",:eq",
	} {
		if got := total(first(graph(t, addr, q, s, e))); got != 3 {
			t.Errorf("%.60s: %v, want 3", q, got)
		}
	}

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ra := rm.Resource().Attributes()
	ra.PutStr("service.name", "checkout")
	ra.PutStr("service.namespace", "shop")
	ra.PutStr("deployment.environment.name", "prod")
	ra.PutStr("host.name", "node-7")
	ra.PutStr("k8s.namespace.name", "web")
	ra.PutStr("k8s.deployment.name", "checkout")
	for i := range 30 {
		ra.PutStr(fmt.Sprintf("detector.attr%d", i), "x")
	}
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	dp.SetIntValue(9)
	if code, body := postOTLP(t, addr, md); code != 200 || strings.Contains(body, "rejected") {
		t.Fatalf("OTLP with a 36-attribute resource: %d %q", code, body)
	}
	if got := total(first(graph(t, addr, "name,queue.depth,:eq,service.name,checkout,:eq,:and,k8s.deployment.name,checkout,:eq,:and,host.name,node-7,:eq,:and", s, e))); got != 9 {
		t.Errorf("promoted resource tags: %v, want 9", got)
	}
	if lines := graph(t, addr, "name,queue.depth,:eq,(,detector.attr1,),:by", s, e); len(lines) != 0 {
		t.Errorf("unpromoted attribute became a tag: %v", lines)
	}
	if got := first(graph(t, addr, "name,target_info,:eq,detector.attr29,x,:eq,:and,service.name,checkout,:eq,:and", s, time.Now().Add(time.Minute))); total(got) < 1 {
		t.Errorf("target_info with the other attributes: %v", got)
	}
}

// TestCounterPropertyThroughHTTP: issue #10 item 1 as a property, through
// remote write: random cumulative series with random export intervals
// (0.1× to 3× the 1 s step) and resets store rates whose sum × step is
// each counter's total increase.
func TestCounterPropertyThroughHTTP(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addr := startServe(t, cfg)
	rng := rand.New(rand.NewPCG(10, uint64(time.Now().UnixNano())))
	t0 := time.Now().Add(-20 * time.Minute).UnixMilli()
	for s := range 8 {
		name := fmt.Sprintf("prop_%d_total", s)
		tm, v, want := t0+rng.Int64N(1000), float64(rng.IntN(100)), 0.0
		var samples []prompb.Sample
		samples = append(samples, prompb.Sample{Timestamp: tm, Value: v})
		for range 200 + rng.IntN(200) {
			tm += 100 + rng.Int64N(2901)
			if r := float64(rng.IntN(5)); rng.IntN(25) == 0 && r < v {
				v = r // a reset: the increase is the value after it
				want += v
			} else {
				d := float64(rng.IntN(50))
				v += d
				want += d
			}
			samples = append(samples, prompb.Sample{Timestamp: tm, Value: v})
		}
		// Sent in requests of a few samples, as a scraper's batches.
		for len(samples) > 0 {
			n := min(len(samples), 1+rng.IntN(5))
			if code, body := postRemote(t, addr, prompb.TimeSeries{
				Labels: []prompb.Label{{Name: "__name__", Value: name}}, Samples: samples[:n]}); code/100 != 2 {
				t.Fatalf("remote write: %d %s", code, body)
			}
			samples = samples[n:]
		}
		got := total(first(graph(t, addr, "name,"+name+",:eq", time.UnixMilli(t0-5000), time.UnixMilli(tm+5000))))
		if math.Abs(got-want) > 1e-6*max(1, want) {
			t.Errorf("%s: stored increase %v, want %v", name, got, want)
		}
	}
}
