// Package tracingtest generates span workloads for the tracing
// benchmarks and tests.
package tracingtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Workload: traces of 10 spans across 3 of 20 services, 10 operations
// per service, 6 attributes per span, an event on every fourth span,
// log-normal durations (median 20 ms), spread over 6 hours.
const (
	Services   = 20
	Operations = 10
	TraceSpans = 10
	BatchSpans = 1000
)

// Batch builds request number i: BatchSpans spans in BatchSpans/TraceSpans
// traces, starting in the window before end. Trace ids are TraceID(i, k).
func Batch(i int, end time.Time, window time.Duration) ptrace.Traces {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	td := ptrace.NewTraces()
	svcSpans := map[int]ptrace.SpanSlice{}
	slice := func(svc int) ptrace.SpanSlice {
		if ss, ok := svcSpans[svc]; ok {
			return ss
		}
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%02d", svc))
		rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", svc*7))
		rs.Resource().Attributes().PutStr("service.version", "1.2.3")
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("bench")
		svcSpans[svc] = sc.Spans()
		return sc.Spans()
	}
	for tr := range BatchSpans / TraceSpans {
		tid := TraceID(i, tr)
		start := end.Add(-time.Duration(r.Int64N(int64(window))))
		svcs := [3]int{r.IntN(Services), r.IntN(Services), r.IntN(Services)}
		for sp := range TraceSpans {
			svc := svcs[min(sp/4, 2)]
			s := slice(svc).AppendEmpty()
			s.SetTraceID(tid)
			s.SetSpanID(pcommon.SpanID{0x5a, 6: byte(sp), 7: 1})
			if sp > 0 {
				s.SetParentSpanID(pcommon.SpanID{0x5a, 6: byte((sp - 1) / 2), 7: 1})
			}
			op := r.IntN(Operations)
			s.SetName(fmt.Sprintf("op-%d", op))
			s.SetKind(ptrace.SpanKind(1 + sp%3))
			d := time.Duration(20e6 * math.Exp(0.8*r.NormFloat64()))
			st := start.Add(time.Duration(sp) * time.Millisecond)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(st))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(st.Add(d)))
			if r.IntN(50) == 0 {
				s.Status().SetCode(ptrace.StatusCodeError)
			}
			a := s.Attributes()
			a.PutStr("http.route", fmt.Sprintf("/api/v1/items/%d", op))
			a.PutInt("http.response.status_code", 200)
			a.PutStr("user.id", "u"+strconv.Itoa(r.IntN(1000)))
			a.PutStr("region", []string{"us-east-1", "us-west-2", "eu-west-1"}[r.IntN(3)])
			a.PutBool("cache.hit", r.IntN(2) == 0)
			a.PutDouble("weight", r.Float64())
			if sp%4 == 0 {
				e := s.Events().AppendEmpty()
				e.SetName("retry")
				e.SetTimestamp(pcommon.NewTimestampFromTime(st.Add(time.Millisecond)))
			}
		}
	}
	return td
}

// TraceID is the id of trace k of batch i.
func TraceID(i, k int) pcommon.TraceID {
	var id pcommon.TraceID
	n := uint64(i*1000 + k)
	for b := range 8 {
		id[8+b] = byte(n >> (8 * (7 - b)))
	}
	id[0] = 0x7e
	return id
}
