package ingest

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestPublishSmallMessages is issue #17 item 9 at the publish endpoint: a
// 10 MB rejected tag value is not echoed whole; a JSON null tag value is
// refused, not stored as "null"; a repeated tag key is not "too many tags";
// a far-future timestamp is reported with its own value.
func TestPublishSmallMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	huge := strings.Repeat("x", 10<<20)
	code, _, out := e.post("/api/v1/publish", payload(`"name":"nn"`, metricJSON(`"kk":"`+huge+`"`, now, "1")))
	msg := fmt.Sprint(out["message"])
	if code != 400 || len(msg) > 2000 || !strings.Contains(msg, "value too long") {
		t.Errorf("10 MB value: %d, message of %d bytes: %.300s", code, len(msg), msg)
	}
	code, _, out = e.post("/api/v1/publish", payload(`"name":"nn"`, metricJSON(`"kk":null`, now, "1")))
	if code != 400 || !strings.Contains(fmt.Sprint(out["message"]), "null") {
		t.Errorf("null tag value: %d %v", code, out)
	}
	if v := e.value(now/minute*minute, "kk", "null"); v != -1 {
		t.Errorf("a null tag value was stored as the string null")
	}
	code, _, out = e.post("/api/v1/publish", payload(`"name":"nn"`, metricJSON(`"kk":"a","kk":"b","atlas.dstype":"gauge"`, now, "1")))
	if strings.Contains(fmt.Sprint(out["message"]), "too many tags") {
		t.Errorf("repeated key: %d %v", code, out)
	}
	far := now + 1000*24*hour
	code, _, out = e.post("/api/v1/publish", payload(`"name":"nn"`, metricJSON(`"atlas.dstype":"gauge"`, far, "1")))
	msg = fmt.Sprint(out["message"])
	if code != 400 || !strings.Contains(msg, fmt.Sprint(far)) || strings.Contains(msg, "too old") {
		t.Errorf("far-future timestamp: %d %s", code, msg)
	}
}

// TestOTLPRejectsWhatItCannotStore is issue #17 item 8: datapoints and
// spans the store could not keep faithfully are rejected through OTLP's
// partial success, each with its reason, instead of being stored mangled
// (a far-future time wrapped to 1970) or without a word.
func TestOTLPRejectsWhatItCannotStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	farFuture := pcommon.Timestamp(math.MaxUint64 - 5)
	req := otlpRequest(func(ms pmetric.MetricSlice) {
		g := ms.AppendEmpty()
		g.SetName("future.gauge")
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(farFuture)
		dp.SetDoubleValue(1)

		h := ms.AppendEmpty()
		h.SetName("bad.histogram")
		hh := h.SetEmptyHistogram()
		hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hdp := hh.DataPoints().AppendEmpty()
		hdp.SetTimestamp(ts(now))
		hdp.ExplicitBounds().FromRaw([]float64{1, 2, 3})
		hdp.BucketCounts().FromRaw([]uint64{1, 2})
		hdp.SetCount(3)

		x := ms.AppendEmpty()
		x.SetName("bad.exphistogram")
		xh := x.SetEmptyExponentialHistogram()
		xh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		xdp := xh.DataPoints().AppendEmpty()
		xdp.SetTimestamp(ts(now))
		xdp.SetScale(40)
		xdp.Positive().BucketCounts().FromRaw([]uint64{1})
		xdp.SetCount(1)

		d := ms.AppendEmpty()
		d.SetName("negative.delta")
		s := d.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		ddp := s.DataPoints().AppendEmpty()
		ddp.SetStartTimestamp(ts(now - minute))
		ddp.SetTimestamp(ts(now))
		ddp.SetDoubleValue(-5)
	})
	body, _ := req.MarshalProto()
	code, _, b := postOTLP(t, e.url, ctProto, body)
	resp := pmetricotlp.NewExportResponse()
	resp.UnmarshalProto(b)
	ps := resp.PartialSuccess()
	msg := ps.ErrorMessage()
	for _, want := range []string{"beyond the year 2262", "3 bounds", "scale 40", "negative increment"} {
		if !strings.Contains(msg, want) {
			t.Errorf("partial success does not say %q: %d, %d rejected, %q", want, code, ps.RejectedDataPoints(), msg)
		}
	}
	if ps.RejectedDataPoints() < 4 {
		t.Errorf("rejected %d datapoints, want 4: %q", ps.RejectedDataPoints(), msg)
	}
	if strings.Contains(msg, "too old") {
		t.Errorf("a far-future time reported as too old: %q", msg)
	}
}

func TestOTLPRejectsBadSpanTimes(t *testing.T) {
	t.Parallel()
	e, _ := traceEnv(t)
	body, _ := spanRequest("checkout", 9, 3, time.Millisecond, func(i int, s ptrace.Span) {
		switch i {
		case 1:
			s.SetEndTimestamp(s.StartTimestamp() - 1000)
		case 2:
			s.SetStartTimestamp(pcommon.Timestamp(math.MaxUint64 - 10))
			s.SetEndTimestamp(pcommon.Timestamp(math.MaxUint64 - 5))
		}
	}).MarshalProto()
	code, b := postTraces(t, e.url, ctProto, body)
	resp := ptraceotlp.NewExportResponse()
	resp.UnmarshalProto(b)
	ps := resp.PartialSuccess()
	if code != 200 || ps.RejectedSpans() != 2 || !strings.Contains(ps.ErrorMessage(), "before it starts") ||
		!strings.Contains(ps.ErrorMessage(), "beyond the year 2262") {
		t.Errorf("bad span times: %d, %d rejected, %q", code, ps.RejectedSpans(), ps.ErrorMessage())
	}
}
