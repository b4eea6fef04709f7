package tracing_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sextant-dev/sextant/tracing"
)

func TestDedupSpans(t *testing.T) {
	t.Parallel()
	res := &tracing.Resource{Service: "api"}
	span := func(id byte, start int64, name string) tracing.Span {
		return tracing.Span{TraceID: tracing.TraceID{1}, SpanID: tracing.SpanID{id}, Name: name, Start: start, End: start + 10,
			Kind: tracing.SpanKindServer, Resource: res, Attributes: []tracing.KeyValue{{Key: "n", Type: tracing.ValueInt, Int: int64(id)}}}
	}
	client := span(2, 100, "get")
	client.Kind = tracing.SpanKindClient
	otherRes := span(1, 100, "get")
	otherRes.Resource = &tracing.Resource{Service: "api"} // equal content, another pointer
	renamed := span(1, 100, "put")
	f := func(name string, in, want []tracing.Span) {
		t.Helper()
		got := tracing.DedupSpans(append([]tracing.Span(nil), in...))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: DedupSpans (-want +got):\n%s", name, diff)
		}
	}
	f("empty", nil, nil)
	f("one", []tracing.Span{span(1, 100, "get")}, []tracing.Span{span(1, 100, "get")})
	f("distinct", []tracing.Span{span(1, 100, "get"), span(2, 100, "get"), span(3, 90, "get")},
		[]tracing.Span{span(1, 100, "get"), span(2, 100, "get"), span(3, 90, "get")})
	f("written twice", []tracing.Span{span(1, 100, "get"), span(2, 100, "get"), span(1, 100, "get"), span(2, 100, "get")},
		[]tracing.Span{span(1, 100, "get"), span(2, 100, "get")})
	f("same content, another resource pointer", []tracing.Span{span(1, 100, "get"), otherRes}, []tracing.Span{span(1, 100, "get")})
	f("shared id, other kind (zipkin)", []tracing.Span{span(2, 100, "get"), client}, []tracing.Span{span(2, 100, "get"), client})
	f("same id and times, other name", []tracing.Span{span(1, 100, "get"), renamed}, []tracing.Span{span(1, 100, "get"), renamed})
}
