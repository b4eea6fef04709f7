package api

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/tracing"
)

// The Jaeger query API's JSON model (compat.md §d.2), built from stored
// spans as Jaeger's own OTLP translator does.

type envelope struct {
	Data   any         `json:"data"`
	Total  int         `json:"total"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
	Errors []jaegerErr `json:"errors"`
}

type jaegerErr struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

type jTrace struct {
	TraceID   string              `json:"traceID"`
	Spans     []jSpan             `json:"spans"`
	Processes map[string]jProcess `json:"processes"`
	Warnings  []string            `json:"warnings"`
}

type jSpan struct {
	TraceID       string       `json:"traceID"`
	SpanID        string       `json:"spanID"`
	OperationName string       `json:"operationName"`
	References    []jReference `json:"references"`
	StartTime     int64        `json:"startTime"` // µs since the epoch
	Duration      int64        `json:"duration"`  // µs
	Tags          []jKeyValue  `json:"tags"`
	Logs          []jLog       `json:"logs"`
	ProcessID     string       `json:"processID"`
	Warnings      []string     `json:"warnings"`
	Flags         uint32       `json:"flags"`
}

type jReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type jKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type jLog struct {
	Timestamp int64       `json:"timestamp"`
	Fields    []jKeyValue `json:"fields"`
}

type jProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []jKeyValue `json:"tags"`
}

type jOperation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}

type jDependency struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount int64  `json:"callCount"`
}

// toJaeger converts a stored trace. Processes are numbered p1, p2, ... in
// order of first appearance; spans keep the store's start order.
func toJaeger(tr *tracing.Trace) jTrace {
	out := jTrace{TraceID: tr.ID.String(), Spans: make([]jSpan, 0, len(tr.Spans)), Processes: map[string]jProcess{}}
	procIDs := map[*tracing.Resource]string{}
	byContent := map[string]string{}
	for i := range tr.Spans {
		s := &tr.Spans[i]
		pid, ok := procIDs[s.Resource]
		if !ok {
			p := jProcess{ServiceName: s.Resource.Service, Tags: keyValues(nil, s.Resource.Attributes)}
			key := processKey(&p)
			if pid, ok = byContent[key]; !ok {
				pid = "p" + strconv.Itoa(len(out.Processes)+1)
				byContent[key] = pid
				out.Processes[pid] = p
			}
			procIDs[s.Resource] = pid
		}
		out.Spans = append(out.Spans, toJaegerSpan(s, pid))
	}
	return out
}

// processKey identifies a process by content: the same service and tags
// from different writes are one process.
func processKey(p *jProcess) string {
	var b strings.Builder
	b.WriteString(p.ServiceName)
	for _, kv := range p.Tags {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%v", kv.Key, kv.Type, kv.Value)
	}
	return b.String()
}

func toJaegerSpan(s *tracing.Span, pid string) jSpan {
	js := jSpan{
		TraceID: s.TraceID.String(), SpanID: s.SpanID.String(), OperationName: s.Name,
		References: []jReference{}, StartTime: s.Start / 1000, Duration: (s.End - s.Start) / 1000,
		ProcessID: pid, Flags: s.Flags & 0xff, Logs: []jLog{},
	}
	if js.Flags == 0 {
		js.Flags = 1 // stored spans were sampled
	}
	if !s.ParentSpanID.IsZero() {
		js.References = append(js.References, jReference{RefType: "CHILD_OF", TraceID: js.TraceID, SpanID: s.ParentSpanID.String()})
	}
	for _, l := range s.Links {
		js.References = append(js.References, jReference{RefType: "FOLLOWS_FROM", TraceID: l.TraceID.String(), SpanID: l.SpanID.String()})
	}
	tags := keyValues(make([]jKeyValue, 0, len(s.Attributes)+6), s.Attributes)
	if s.ScopeName != "" {
		tags = append(tags, jKeyValue{"otel.scope.name", "string", s.ScopeName})
	}
	if s.ScopeVersion != "" {
		tags = append(tags, jKeyValue{"otel.scope.version", "string", s.ScopeVersion})
	}
	if k := s.Kind.String(); k != "" {
		tags = append(tags, jKeyValue{"span.kind", "string", k})
	}
	switch s.Status {
	case tracing.StatusOK:
		tags = append(tags, jKeyValue{"otel.status_code", "string", "OK"})
	case tracing.StatusError:
		tags = append(tags, jKeyValue{"otel.status_code", "string", "ERROR"}, jKeyValue{"error", "bool", true})
		if s.StatusMessage != "" {
			tags = append(tags, jKeyValue{"otel.status_description", "string", s.StatusMessage})
		}
	}
	if s.TraceState != "" {
		tags = append(tags, jKeyValue{"w3c.tracestate", "string", s.TraceState})
	}
	js.Tags = tags
	for _, e := range s.Events {
		fields := append(make([]jKeyValue, 0, len(e.Attributes)+1), jKeyValue{"event", "string", e.Name})
		js.Logs = append(js.Logs, jLog{Timestamp: e.Time / 1000, Fields: keyValues(fields, e.Attributes)})
	}
	// Cuts, by the sender or by our limits, show as span warnings.
	for _, w := range []struct {
		n    uint32
		what string
	}{
		{s.DroppedAttributes, "attributes"}, {s.DroppedEvents, "events"}, {s.DroppedLinks, "links"},
		{s.TruncatedValues, "attribute values truncated"},
	} {
		if w.n > 0 {
			if w.what == "attribute values truncated" {
				js.Warnings = append(js.Warnings, fmt.Sprintf("%d %s to the length limit", w.n, w.what))
			} else {
				js.Warnings = append(js.Warnings, fmt.Sprintf("%d %s dropped", w.n, w.what))
			}
		}
	}
	return js
}

// keyValues appends typed Jaeger key/values.
func keyValues(dst []jKeyValue, kvs []tracing.KeyValue) []jKeyValue {
	if dst == nil {
		dst = make([]jKeyValue, 0, len(kvs))
	}
	for _, kv := range kvs {
		j := jKeyValue{Key: kv.Key}
		switch kv.Type {
		case tracing.ValueBool:
			j.Type, j.Value = "bool", kv.Int != 0
		case tracing.ValueInt:
			j.Type, j.Value = "int64", kv.Int
		case tracing.ValueFloat:
			j.Type, j.Value = "float64", kv.Float
			if math.IsNaN(kv.Float) || math.IsInf(kv.Float, 0) {
				// JSON has no NaN or infinities.
				j.Type, j.Value = "string", strconv.FormatFloat(kv.Float, 'g', -1, 64)
			}
		case tracing.ValueBytes:
			j.Type, j.Value = "binary", base64.StdEncoding.EncodeToString([]byte(kv.Str))
		default:
			j.Type, j.Value = "string", kv.Str
		}
		dst = append(dst, j)
	}
	return dst
}
