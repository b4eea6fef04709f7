package ingest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// Zipkin v2 span ingest (api.md "More ways in"): POST /api/v2/spans with a
// JSON array of spans or a proto3 ListOfSpans (zipkin.proto), answered 202.
// Spans map onto OTLP's model as the OpenTelemetry Collector's Zipkin
// receiver does and go through the same checks, store and span metrics as
// OTLP spans:
//
//   - localEndpoint.serviceName is the resource's service.name (spans
//     without one: "unknown_service"); its ipv4/ipv6 and port are
//     net.host.ip and net.host.port;
//   - kind CLIENT, SERVER, PRODUCER, CONSUMER map to the OTLP kinds;
//   - timestamp and duration (µs) give the start and end;
//   - tags are attributes, stored as sent; a tag "error" makes the status
//     an error with the tag's value as its message;
//   - annotations are events; remoteEndpoint.serviceName is peer.service,
//     its address net.peer.ip and net.peer.port.

// protoZipkin is the protocol tag of Zipkin's self-metrics.
const protoZipkin = "zipkin"

// RegisterZipkin adds POST /api/v2/spans, for the Zipkin listener.
func (h *Handler) RegisterZipkin(mux *http.ServeMux) {
	mux.Handle("POST /api/v2/spans", h.guard(protoZipkin, http.HandlerFunc(h.zipkin)))
}

func (h *Handler) zipkin(w http.ResponseWriter, r *http.Request) {
	if h.opts.Traces == nil {
		writeError(w, r, &httpError{status: http.StatusNotFound, msg: "no span store"})
		return
	}
	req := h.pool.Get().(*publishRequest)
	defer h.pool.Put(req)
	if _, err := h.readBody(w, r, &req.body); err != nil {
		writeError(w, r, err)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var td ptrace.Traces
	var err error
	switch ct {
	case "application/x-protobuf", "application/protobuf":
		td, err = decodeZipkinProto(req.body.Bytes())
	case "application/json", "":
		td, err = decodeZipkinJSON(req.body.Bytes())
	default:
		writeError(w, r, &httpError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Type %q: use application/json or application/x-protobuf", ct)})
		return
	}
	if err != nil {
		h.reject(protoZipkin, "MalformedPayload", 1)
		writeError(w, r, &httpError{status: http.StatusBadRequest, msg: err.Error()})
		return
	}
	resp, err := h.exportTraces(r.Context(), ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if n := resp.PartialSuccess().RejectedSpans(); n > 0 {
		writeJSON(w, http.StatusAccepted, &publishResponse{Type: "partial", ErrorCount: int(n),
			Message: []string{resp.PartialSuccess().ErrorMessage()}})
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// zipkinSpan is a Zipkin v2 span, the fields of the JSON model.
type zipkinSpan struct {
	TraceID        string            `json:"traceId"`
	ID             string            `json:"id"`
	ParentID       string            `json:"parentId"`
	Name           string            `json:"name"`
	Kind           string            `json:"kind"`
	Timestamp      uint64            `json:"timestamp"`
	Duration       uint64            `json:"duration"`
	LocalEndpoint  *zipkinEndpoint   `json:"localEndpoint"`
	RemoteEndpoint *zipkinEndpoint   `json:"remoteEndpoint"`
	Annotations    []zipkinAnnot     `json:"annotations"`
	Tags           map[string]string `json:"tags"`
	Shared         bool              `json:"shared"`
}

type zipkinEndpoint struct {
	ServiceName string `json:"serviceName"`
	IPv4        string `json:"ipv4"`
	IPv6        string `json:"ipv6"`
	Port        int64  `json:"port"`
}

type zipkinAnnot struct {
	Timestamp uint64 `json:"timestamp"`
	Value     string `json:"value"`
}

// decodeZipkinJSON decodes a JSON array of v2 spans.
func decodeZipkinJSON(b []byte) (ptrace.Traces, error) {
	var spans []zipkinSpan
	if err := json.Unmarshal(b, &spans); err != nil {
		return ptrace.Traces{}, fmt.Errorf("invalid Zipkin v2 JSON: %w", err)
	}
	return zipkinTraces(spans)
}

// zipkinTraces maps spans onto OTLP, one resource per service.
func zipkinTraces(spans []zipkinSpan) (ptrace.Traces, error) {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for i := range spans {
		zs := &spans[i]
		svc := "unknown_service"
		if zs.LocalEndpoint != nil && zs.LocalEndpoint.ServiceName != "" {
			svc = zs.LocalEndpoint.ServiceName
		}
		ss, ok := bySvc[svc]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[svc] = ss
		}
		if err := zipkinSpanTo(ss.AppendEmpty(), zs); err != nil {
			return ptrace.Traces{}, fmt.Errorf("span %d: %w", i, err)
		}
	}
	return td, nil
}

func zipkinSpanTo(s ptrace.Span, zs *zipkinSpan) error {
	var tid pcommon.TraceID
	if err := hexID(tid[:], zs.TraceID, "traceId", true); err != nil {
		return err
	}
	var sid, pid pcommon.SpanID
	if err := hexID(sid[:], zs.ID, "id", false); err != nil {
		return err
	}
	if zs.ParentID != "" {
		if err := hexID(pid[:], zs.ParentID, "parentId", false); err != nil {
			return err
		}
	}
	s.SetTraceID(tid)
	s.SetSpanID(sid)
	s.SetParentSpanID(pid)
	s.SetName(zs.Name)
	switch strings.ToUpper(zs.Kind) {
	case "CLIENT":
		s.SetKind(ptrace.SpanKindClient)
	case "SERVER":
		s.SetKind(ptrace.SpanKindServer)
	case "PRODUCER":
		s.SetKind(ptrace.SpanKindProducer)
	case "CONSUMER":
		s.SetKind(ptrace.SpanKindConsumer)
	case "":
		s.SetKind(ptrace.SpanKindInternal)
	default:
		return fmt.Errorf("unknown kind %q", zs.Kind)
	}
	s.SetStartTimestamp(pcommon.Timestamp(zs.Timestamp * 1000))
	s.SetEndTimestamp(pcommon.Timestamp((zs.Timestamp + zs.Duration) * 1000))
	attrs := s.Attributes()
	for k, v := range zs.Tags {
		if k == "error" {
			s.Status().SetCode(ptrace.StatusCodeError)
			s.Status().SetMessage(v)
			continue
		}
		attrs.PutStr(k, v)
	}
	if e := zs.LocalEndpoint; e != nil {
		endpointAttrs(attrs, e, "net.host.ip", "net.host.port")
	}
	if e := zs.RemoteEndpoint; e != nil {
		if e.ServiceName != "" {
			attrs.PutStr("peer.service", e.ServiceName)
		}
		endpointAttrs(attrs, e, "net.peer.ip", "net.peer.port")
	}
	for _, a := range zs.Annotations {
		ev := s.Events().AppendEmpty()
		ev.SetTimestamp(pcommon.Timestamp(a.Timestamp * 1000))
		ev.SetName(a.Value)
	}
	return nil
}

func endpointAttrs(attrs pcommon.Map, e *zipkinEndpoint, ipKey, portKey string) {
	switch {
	case e.IPv4 != "":
		attrs.PutStr(ipKey, e.IPv4)
	case e.IPv6 != "":
		attrs.PutStr(ipKey, e.IPv6)
	}
	if e.Port != 0 {
		attrs.PutInt(portKey, e.Port)
	}
}

// hexID decodes a lower-hex id into dst, right-aligned: a 64-bit trace id
// fills the low half of the 128-bit one.
func hexID(dst []byte, s, field string, allowShort bool) error {
	n := len(dst) * 2
	if len(s) > n || len(s) == 0 || (!allowShort && len(s) != n) || (allowShort && len(s) != n && len(s) != 16) {
		return fmt.Errorf("%s %q: %d hex digits expected", field, s, n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%s %q: not hex", field, s)
	}
	copy(dst[len(dst)-len(b):], b)
	return nil
}

// decodeZipkinProto decodes a proto3 ListOfSpans (zipkin.proto): field 1,
// repeated Span.
func decodeZipkinProto(b []byte) (ptrace.Traces, error) {
	var spans []zipkinSpan
	err := protoFields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		zs, err := decodeZipkinProtoSpan(v)
		if err != nil {
			return fmt.Errorf("span %d: %w", len(spans), err)
		}
		spans = append(spans, zs)
		return nil
	})
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("invalid Zipkin proto3 ListOfSpans: %w", err)
	}
	return zipkinTraces(spans)
}

// protoFields calls f with each field of the message b: bytes fields get
// their payload in v, varint and fixed fields their value in x.
func protoFields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

var zipkinKinds = [...]string{"", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"}

func decodeZipkinProtoSpan(b []byte) (zipkinSpan, error) {
	var zs zipkinSpan
	err := protoFields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			zs.TraceID = hex.EncodeToString(v)
		case 2:
			zs.ParentID = hex.EncodeToString(v)
		case 3:
			zs.ID = hex.EncodeToString(v)
		case 4:
			if x >= uint64(len(zipkinKinds)) {
				return fmt.Errorf("unknown kind %d", x)
			}
			zs.Kind = zipkinKinds[x]
		case 5:
			zs.Name = string(v)
		case 6:
			zs.Timestamp = x
		case 7:
			zs.Duration = x
		case 8, 9:
			e, err := decodeZipkinEndpoint(v)
			if err != nil {
				return err
			}
			if num == 8 {
				zs.LocalEndpoint = e
			} else {
				zs.RemoteEndpoint = e
			}
		case 10:
			var a zipkinAnnot
			if err := protoFields(v, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					a.Timestamp = x
				case 2:
					a.Value = string(v)
				}
				return nil
			}); err != nil {
				return err
			}
			zs.Annotations = append(zs.Annotations, a)
		case 11:
			var k, val string
			if err := protoFields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				switch num {
				case 1:
					k = string(v)
				case 2:
					val = string(v)
				}
				return nil
			}); err != nil {
				return err
			}
			if zs.Tags == nil {
				zs.Tags = map[string]string{}
			}
			zs.Tags[k] = val
		case 13:
			zs.Shared = x != 0
		}
		return nil
	})
	if zs.ParentID != "" && strings.Trim(zs.ParentID, "0") == "" {
		zs.ParentID = ""
	}
	return zs, err
}

func decodeZipkinEndpoint(b []byte) (*zipkinEndpoint, error) {
	e := &zipkinEndpoint{}
	err := protoFields(b, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			e.ServiceName = string(v)
		case 2:
			if len(v) == 4 {
				e.IPv4 = net.IP(v).String()
			}
		case 3:
			if len(v) == 16 {
				e.IPv6 = net.IP(v).String()
			}
		case 4:
			e.Port = int64(int32(x))
		}
		return nil
	})
	return e, err
}
