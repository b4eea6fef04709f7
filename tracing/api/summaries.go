package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/sextant-dev/sextant/tracing"
)

// traceSummary is one trace of GET /api/v3/trace-summaries, the list view
// of newer Jaeger UI builds: the root span's service and name, when the
// trace started, how long it took, and its spans per service.
type traceSummary struct {
	TraceID         string           `json:"traceId"`
	RootServiceName string           `json:"rootServiceName"`
	RootSpanName    string           `json:"rootSpanName"`
	StartTime       string           `json:"startTime"` // RFC 3339, as protobuf JSON writes a Timestamp
	Duration        string           `json:"duration"`  // seconds with an "s", as protobuf JSON writes a Duration
	SpanCount       int              `json:"spanCount"`
	ErrorSpanCount  int              `json:"errorSpanCount"`
	Services        []serviceSummary `json:"services"`
}

type serviceSummary struct {
	Name      string `json:"name"`
	SpanCount int    `json:"spanCount"`
}

// v3TraceSummaries searches as GET /api/v3/traces does (the same query.*
// parameters, snake_case or lowerCamelCase) and answers one summary per
// trace; an empty search answers an empty list.
func (a *API) v3TraceSummaries(ctx context.Context, r *http.Request) ([]byte, error) {
	q, err := v3Query(snakeParams(r.URL.Query()))
	if err != nil {
		return nil, err
	}
	traces, err := a.opts.Reader.FindTraces(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]traceSummary, 0, len(traces))
	for _, tr := range traces {
		out = append(out, summarize(tr))
	}
	return json.Marshal(map[string]any{"summaries": out})
}

// summarize describes one trace. The root is the span without a parent
// (the earliest such), or the earliest span when the root is missing.
func summarize(tr tracing.Trace) traceSummary {
	s := traceSummary{TraceID: tr.ID.String(), SpanCount: len(tr.Spans)}
	if len(tr.Spans) == 0 {
		return s
	}
	var root *tracing.Span
	start, end := tr.Spans[0].Start, tr.Spans[0].End
	perService := map[string]int{}
	for i := range tr.Spans {
		sp := &tr.Spans[i]
		start, end = min(start, sp.Start), max(end, sp.End)
		if sp.Status == tracing.StatusError {
			s.ErrorSpanCount++
		}
		svc := ""
		if sp.Resource != nil {
			svc = sp.Resource.Service
		}
		perService[svc]++
		isRoot := sp.ParentSpanID.IsZero()
		switch {
		case root == nil,
			isRoot && !root.ParentSpanID.IsZero(),
			isRoot == root.ParentSpanID.IsZero() && sp.Start < root.Start:
			root = sp
		}
	}
	if root.Resource != nil {
		s.RootServiceName = root.Resource.Service
	}
	s.RootSpanName = root.Name
	s.StartTime = time.Unix(0, start).UTC().Format(time.RFC3339Nano)
	s.Duration = protoDuration(time.Duration(end - start))
	for name, n := range perService {
		s.Services = append(s.Services, serviceSummary{Name: name, SpanCount: n})
	}
	sort.Slice(s.Services, func(i, j int) bool { return s.Services[i].Name < s.Services[j].Name })
	return s
}

// protoDuration writes d as protobuf JSON writes a Duration: "1.5s".
func protoDuration(d time.Duration) string {
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	if ns == 0 {
		return fmt.Sprintf("%ds", sec)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%09d", sec, ns), "0") + "s"
}

// snakeParams returns v with lowerCamelCase keys also under their
// snake_case spelling (query.serviceName → query.service_name), as
// Jaeger's gateway accepts both; a snake_case key sent as such wins.
func snakeParams(v url.Values) url.Values {
	out := url.Values{}
	for k, vals := range v {
		var b strings.Builder
		for _, r := range k {
			if unicode.IsUpper(r) {
				b.WriteByte('_')
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		}
		if sk := b.String(); sk != k {
			if _, ok := v[sk]; !ok {
				out[sk] = vals
			}
		}
		out[k] = vals
	}
	return out
}
