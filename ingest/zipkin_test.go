package ingest

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestZipkinJSONMapping(t *testing.T) {
	t.Parallel()
	td, err := decodeZipkinJSON([]byte(`[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","parentId":"0020000000000001",
		"name":"get","kind":"CLIENT","timestamp":1472470996199000,"duration":207000,
		"localEndpoint":{"serviceName":"frontend","ipv6":"::1","port":80},"tags":{"error":"boom","k":"v"},
		"annotations":[{"timestamp":1472470996238000,"value":"foo"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	rs := td.ResourceSpans().At(0)
	if v, _ := rs.Resource().Attributes().Get("service.name"); v.Str() != "frontend" {
		t.Errorf("service.name = %q", v.Str())
	}
	s := rs.ScopeSpans().At(0).Spans().At(0)
	if s.TraceID().String() != "0000000000000000463ac35c9f6413ad" || s.ParentSpanID().String() != "0020000000000001" ||
		s.Kind().String() != "Client" || s.Status().Message() != "boom" || s.Events().At(0).Name() != "foo" ||
		int64(s.EndTimestamp()-s.StartTimestamp()) != 207000*1000 {
		t.Errorf("span = %s %s %s %q %d", s.TraceID(), s.ParentSpanID(), s.Kind(), s.Status().Message(), s.EndTimestamp()-s.StartTimestamp())
	}
	for _, bad := range []string{`{}`, `[{"traceId":"12","id":"a2fb4a1d1a96d312"}]`, `[{"traceId":"463ac35c9f6413ad","id":"zz"}]`,
		`[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","kind":"SIDEWAYS"}]`} {
		if _, err := decodeZipkinJSON([]byte(bad)); err == nil {
			t.Errorf("decodeZipkinJSON(%s) accepted", bad)
		}
	}
}

func FuzzZipkin(f *testing.F) {
	f.Add([]byte(`[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","name":"x","timestamp":1,"duration":2,"tags":{"a":"b"}}]`))
	var sp []byte
	sp = protowire.AppendTag(sp, 1, protowire.BytesType)
	sp = protowire.AppendBytes(sp, make([]byte, 16))
	sp = protowire.AppendTag(sp, 3, protowire.BytesType)
	sp = protowire.AppendBytes(sp, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	sp = protowire.AppendTag(sp, 11, protowire.BytesType)
	sp = protowire.AppendBytes(sp, []byte{10, 1, 'k', 18, 1, 'v'})
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), sp))
	f.Fuzz(func(t *testing.T, b []byte) {
		if td, err := decodeZipkinJSON(b); err == nil && td.SpanCount() < 0 {
			t.Fatal("negative span count")
		}
		if td, err := decodeZipkinProto(b); err == nil && td.SpanCount() < 0 {
			t.Fatal("negative span count")
		}
	})
}
