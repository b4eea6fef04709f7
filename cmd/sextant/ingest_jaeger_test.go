package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// TestJaegerUINewerCalls: issue #10 item 8. Jaeger UI's
// /api/v3/trace-summaries from the span store and the Monitor tab's
// /api/metrics/* from the span metrics, after spans sent over Zipkin.
func TestJaegerUINewerCalls(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ZipkinListen = freeAddr(t)
	addr := startServe(t, cfg)
	now := time.Now()
	start := now.Add(-30 * time.Second).UnixMicro()
	var spans []string
	for i := range 4 {
		tid := fmt.Sprintf("%032x", 0xabc0+i)
		errTag := ""
		if i == 3 {
			errTag = `,"tags":{"error":"boom"}`
		}
		spans = append(spans,
			fmt.Sprintf(`{"traceId":"%s","id":"%016x","name":"GET /cart","kind":"SERVER","timestamp":%d,"duration":%d,
				"localEndpoint":{"serviceName":"checkout"}%s}`, tid, 0x100+i, start+int64(i)*1000, 20000*(i+1), errTag),
			fmt.Sprintf(`{"traceId":"%s","id":"%016x","parentId":"%016x","name":"select","kind":"CLIENT","timestamp":%d,"duration":5000,
				"localEndpoint":{"serviceName":"db"}}`, tid, 0x200+i, 0x100+i, start+int64(i)*1000+100))
	}
	body := "["
	for i, s := range spans {
		if i > 0 {
			body += ","
		}
		body += s
	}
	body += "]"
	if code, out := post(t, "http://"+cfg.ZipkinListen+"/api/v2/spans", []byte(body), "Content-Type", "application/json"); code != 202 {
		t.Fatalf("zipkin: %d %s", code, out)
	}

	q := url.Values{"query.serviceName": {"checkout"}, "query.start_time_min": {now.Add(-time.Hour).Format(time.RFC3339)},
		"query.startTimeMax": {now.Add(time.Minute).Format(time.RFC3339)}}
	code, out := get(t, "http://"+addr+"/api/v3/trace-summaries?"+q.Encode())
	var sum struct {
		Summaries []struct {
			TraceID, RootServiceName, RootSpanName, StartTime, Duration string
			SpanCount, ErrorSpanCount                                   int
			Services                                                    []struct {
				Name      string
				SpanCount int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &sum); code != 200 || err != nil || len(sum.Summaries) != 4 {
		t.Fatalf("trace-summaries: %d %v %s", code, err, out)
	}
	errs := 0
	for _, s := range sum.Summaries {
		if s.RootServiceName != "checkout" || s.RootSpanName != "GET /cart" || s.SpanCount != 2 || len(s.Services) != 2 {
			t.Errorf("summary %+v", s)
		}
		errs += s.ErrorSpanCount
	}
	if errs != 1 {
		t.Errorf("error spans = %d, want 1", errs)
	}
	if code, out := get(t, "http://"+addr+"/api/v3/trace-summaries?query.service_name=checkout"); code != 400 {
		t.Errorf("no start time: %d %s", code, out)
	}

	type family struct {
		Name    string
		Type    string
		Metrics []struct {
			Labels       []struct{ Name, Value string }
			MetricPoints []struct {
				GaugeValue struct{ DoubleValue float64 }
				Timestamp  string
			}
		}
	}
	metric := func(path string) (family, float64) {
		t.Helper()
		v := url.Values{"service": {"checkout"}, "endTs": {fmt.Sprint(now.Add(10 * time.Second).UnixMilli())},
			"lookback": {"120000"}, "step": {"1000"}, "spanKind": {"server"}, "quantile": {"0.95"}, "groupByOperation": {"true"}}
		code, out := get(t, "http://"+addr+"/api/metrics/"+path+"?"+v.Encode())
		var f family
		if err := json.Unmarshal([]byte(out), &f); code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", path, code, err, out)
		}
		total := 0.0
		for _, m := range f.Metrics {
			for _, p := range m.MetricPoints {
				total += p.GaugeValue.DoubleValue
			}
		}
		return f, total
	}
	eventually(t, "span metrics", func() bool { _, calls := metric("calls"); return calls == 4 })
	f, _ := metric("calls")
	if f.Name != "service_call_rate" || f.Type != "GAUGE" || len(f.Metrics) != 1 || len(f.Metrics[0].Labels) != 2 ||
		f.Metrics[0].Labels[0].Value != "checkout" || f.Metrics[0].Labels[1].Value != "GET /cart" {
		t.Errorf("calls: %+v", f)
	}
	if _, e := metric("errors"); e <= 0 {
		t.Errorf("errors: %v, want a positive rate", e)
	}
	f, _ = metric("latencies")
	for _, m := range f.Metrics {
		for _, p := range m.MetricPoints {
			if v := p.GaugeValue.DoubleValue; v < 10 || v > 100 {
				t.Errorf("p95 latency %v ms, want within 20 to 80 ms give or take a bucket", v)
			}
		}
	}
	if code, out := get(t, "http://"+addr+"/api/metrics/minstep"); code != 200 || out != "{\"data\":1000,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":null}\n" {
		t.Errorf("minstep: %d %s", code, out)
	}
	if code, out := get(t, "http://"+addr+"/api/metrics/latencies?service=checkout"); code != 400 {
		t.Errorf("latencies without quantile: %d %s", code, out)
	}
}
