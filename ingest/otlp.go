package ingest

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sextant-dev/sextant/tsdb"
)

// otlpWork is the pooled working space of one OTLP export.
type otlpWork struct {
	conv  otlpConverter
	batch tsdb.Batch
}

var otlpPool = sync.Pool{New: func() any { return new(otlpWork) }}

// OTLP/HTTP content types; a response uses the request's.
const (
	ctProto = "application/x-protobuf"
	ctJSON  = "application/json"
)

// otlpHTTP serves POST /v1/metrics (OTLP/HTTP, protobuf or JSON).
func (h *Handler) otlpHTTP(w http.ResponseWriter, r *http.Request) {
	req := pmetricotlp.NewExportRequest()
	h.serveOTLP(w, r, protoOTLP, req, func(ctx context.Context) (otlpEncoder, error) {
		return h.exportMetrics(ctx, req)
	})
}

// otlpDecoder and otlpEncoder are what the pdata export requests and
// responses of every signal have in common.
type otlpDecoder interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}

type otlpEncoder interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// serveOTLP reads an OTLP/HTTP request into req (protobuf or JSON, as the
// Content-Type says), runs export, and answers in the request's type.
func (h *Handler) serveOTLP(w http.ResponseWriter, r *http.Request, protocol string, req otlpDecoder,
	export func(context.Context) (otlpEncoder, error)) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != ctProto && ct != ctJSON {
		writeOTLPError(w, ctProto, &httpError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("unsupported Content-Type %q: use %s or %s", ct, ctProto, ctJSON)})
		return
	}
	pr := h.pool.Get().(*publishRequest)
	defer h.pool.Put(pr)
	if _, err := h.readBody(w, r, &pr.body); err != nil {
		writeOTLPError(w, ct, err)
		return
	}
	var err error
	if ct == ctJSON {
		err = req.UnmarshalJSON(pr.body.Bytes())
	} else {
		err = req.UnmarshalProto(pr.body.Bytes())
	}
	if err != nil {
		h.reject(protocol, "MalformedPayload", 1)
		writeOTLPError(w, ct, &httpError{status: http.StatusBadRequest, msg: "invalid OTLP request: " + err.Error()})
		return
	}
	resp, err := export(r.Context())
	if err != nil {
		writeOTLPError(w, ct, err)
		return
	}
	var body []byte
	if ct == ctJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		writeOTLPError(w, ct, err)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// exportMetrics maps and stores one export request. Rejected datapoints go
// into the response's partial success, which the client must not retry;
// an error means nothing was stored and the client may retry.
func (h *Handler) exportMetrics(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	resp := pmetricotlp.NewExportResponse()
	md := req.Metrics()
	if n := md.DataPointCount(); n > h.opts.MaxDatapoints {
		return resp, &httpError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d datapoints in one request, more than %d", n, h.opts.MaxDatapoints)}
	}
	wk := otlpPool.Get().(*otlpWork)
	defer otlpPool.Put(wk)
	c := &wk.conv
	c.reset(h.opts.Tags, h.opts.Now(), h.opts.Step)
	c.convert(md)
	h.countCut(protoOTLP, c.cut)
	for reason, n := range c.reasons {
		h.reject(protoOTLP, reason, n)
	}
	if c.dropped > 0 {
		h.opts.Registry.Counter("sextant.ingest.exemplarsDropped", "protocol", protoOTLP).Add(float64(c.dropped))
	}
	wk.batch.Reset()
	wk.batch.Points = append(wk.batch.Points, c.points...)
	if len(wk.batch.Points) > 0 {
		if err := h.opts.Appender.Append(ctx, &wk.batch); err != nil {
			return resp, err
		}
	}
	zeros, zerosRejected := 0, 0
	for _, z := range c.zero {
		if z {
			zeros++
		}
	}
	for _, rj := range wk.batch.Rejected {
		if c.zero[rj.Index] {
			zerosRejected++ // a start we know of already, or one too old
			continue
		}
		p := wk.batch.Points[rj.Index]
		h.reject(protoOTLP, rj.Reason.String(), 1)
		c.rej.add(func() string { return storeReason(rj.Reason, p.T) + " (tags=" + tagString(p.Tags) + ")" })
	}
	h.accepted(protoOTLP, len(wk.batch.Points)-len(wk.batch.Rejected)-(zeros-zerosRejected))
	if c.rej.count > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedDataPoints(int64(c.rej.count))
		ps.SetErrorMessage(fmt.Sprintf("%d datapoints rejected: %s", c.rej.count, strings.Join(c.rej.messages, "; ")))
	}
	return resp, nil
}

// writeOTLPError answers with a google.rpc.Status in the request's type.
func writeOTLPError(w http.ResponseWriter, ct string, err error) {
	he := statusOf(err)
	st := &spb.Status{Code: int32(grpcCode(he.status)), Message: he.msg}
	var body []byte
	if ct == ctJSON {
		body, _ = protojson.Marshal(st)
	} else {
		body, _ = proto.Marshal(st)
		ct = ctProto
	}
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(he.status)
	w.Write(body)
}

// grpcCode maps an HTTP status to the gRPC code OTLP pairs it with.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

// grpcMetrics implements the OTLP MetricsService.
type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	h *Handler
}

// RegisterGRPC adds the OTLP MetricsService (and the TraceService when a
// span store is wired) to s. Create s with
// GRPCServerOptions so that message sizes are bounded.
func (h *Handler) RegisterGRPC(s *grpc.Server) {
	pmetricotlp.RegisterGRPCServer(s, &grpcMetrics{h: h})
	h.registerGRPCTraces(s)
}

// GRPCServerOptions bound received messages to the decoded body limit.
func (h *Handler) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(int(h.opts.MaxDecodedBytes))}
}

// Export implements the MetricsService.
func (g *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	return grpcExport(ctx, g.h, req, g.h.exportMetrics, pmetricotlp.NewExportResponse)
}

// grpcExport runs one gRPC export of any signal with the OTLP rules:
// overload is UNAVAILABLE with a RetryInfo (so clients retry later), bad
// data INVALID_ARGUMENT.
func grpcExport[Req, Resp any](ctx context.Context, h *Handler, req Req, export func(context.Context, Req) (Resp, error), empty func() Resp) (Resp, error) {
	if h.memoryFull() {
		return empty(), retryable("server memory is saturated", 5*time.Second)
	}
	select {
	case h.inflight <- struct{}{}:
		defer func() { <-h.inflight }()
	default:
		return empty(), retryable("too many requests in flight", time.Second)
	}
	resp, err := export(ctx, req)
	if err == nil {
		return resp, nil
	}
	he := statusOf(err)
	if he.retryAfter > 0 {
		return resp, retryable(he.msg, time.Duration(he.retryAfter)*time.Second)
	}
	var hErr *httpError
	if errors.As(err, &hErr) {
		return resp, status.Error(grpcCode(hErr.status), hErr.msg)
	}
	return resp, status.Error(codes.Internal, err.Error())
}

func retryable(msg string, after time.Duration) error {
	st, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)})
	if err != nil {
		return status.Error(codes.Unavailable, msg)
	}
	return st.Err()
}
