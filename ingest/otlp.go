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

	"go.opentelemetry.io/collector/pdata/pmetric"
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
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// otlpWork is the pooled working space of one OTLP export.
type otlpWork struct {
	conv  otlpConverter
	batch tsdb.Batch
	// The slow paths of the ref cache: the request converted again without
	// it (plain), for the tags of points sent by ref, and the retry of the
	// points whose ref the store no longer knew. outcome is the store's
	// answer per point, after the retry.
	plain    otlpConverter
	plainOK  bool
	retry    tsdb.Batch
	retryIdx []int32
	outcome  []tsdb.Reason
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
// an error means the client may retry: nothing was stored, unless the
// store failed on the retry of stale refs (retryStale), after the rest.
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
	c.reset(h.opts.Tags, h.opts.Now(), h.opts.Step, h.refs)
	c.convert(md)
	wk.plainOK = false
	h.countCut(protoOTLP, c.cut)
	for reason, n := range c.reasons {
		h.reject(protoOTLP, reason, n)
	}
	if c.dropped > 0 {
		h.opts.Registry.Counter("sextant.ingest.exemplarsDropped", "protocol", protoOTLP).Add(float64(c.dropped))
	}
	if c.ref.hits > 0 {
		h.refHits.Add(float64(c.ref.hits))
	}
	wk.batch.Reset()
	wk.batch.Points = append(wk.batch.Points, c.points...)
	if len(wk.batch.Points) > 0 {
		if err := h.opts.Appender.Append(ctx, &wk.batch); err != nil {
			return resp, err
		}
	}
	points := wk.batch.Points
	wk.outcome = resize(wk.outcome, len(points))
	clear(wk.outcome)
	for _, rj := range wk.batch.Rejected {
		wk.outcome[rj.Index] = rj.Reason
	}
	if err := h.retryStale(ctx, wk, md); err != nil {
		return resp, err
	}
	if h.refs != nil {
		// Cache the refs of the series the store accepted by their tags.
		for i, p := range points {
			if k := c.ref.keys[i]; wk.outcome[i] == tsdb.Accepted && c.ref.sent[i] == 0 && p.Ref != 0 && k != (refKey{}) {
				if h.refs.put(k, p.Ref) {
					h.refEvicted.Increment()
				}
			}
		}
	}
	accepted := 0
	for i, r := range wk.outcome {
		if c.zero[i] {
			continue // a start we know of already, or one too old: no datapoint of the client's
		}
		if r == tsdb.Accepted {
			accepted++
			continue
		}
		p := points[i]
		h.reject(protoOTLP, r.String(), 1)
		c.rej.add(func() string { return storeReason(r, p.T) + " (tags=" + tagString(h.otlpTags(wk, md, i)) + ")" })
	}
	h.accepted(protoOTLP, accepted)
	if c.rej.count > 0 {
		ps := resp.PartialSuccess()
		ps.SetRejectedDataPoints(int64(c.rej.count))
		ps.SetErrorMessage(fmt.Sprintf("%d datapoints rejected: %s", c.rej.count, strings.Join(c.rej.messages, "; ")))
	}
	return resp, nil
}

// retryStale sends again, with their tags, the points of wk.batch sent by
// a cached ref that the store no longer knew (a series deleted by
// retention: a MissingName rejection of a point without tags), after
// dropping those refs from the cache; their outcome is the retry's.
func (h *Handler) retryStale(ctx context.Context, wk *otlpWork, md pmetric.Metrics) error {
	c := &wk.conv
	if c.ref.hits == 0 {
		return nil
	}
	wk.retry.Reset()
	wk.retryIdx = wk.retryIdx[:0]
	for i, r := range wk.outcome {
		p := &wk.batch.Points[i]
		if r != tsdb.MissingName || c.ref.sent[i] == 0 || len(p.Tags) > 0 {
			continue
		}
		// Slow path: a stale ref.
		h.refs.drop(c.ref.keys[i], c.ref.sent[i])
		c.ref.sent[i] = 0 // so that the new ref is cached
		wk.retry.Points = append(wk.retry.Points, tsdb.Datapoint{Tags: h.otlpTags(wk, md, i), T: p.T, V: p.V})
		wk.retryIdx = append(wk.retryIdx, int32(i))
	}
	if len(wk.retry.Points) == 0 {
		return nil
	}
	h.refStale.Add(float64(len(wk.retry.Points)))
	if err := h.opts.Appender.Append(ctx, &wk.retry); err != nil {
		return err
	}
	for k, i := range wk.retryIdx {
		wk.outcome[i] = tsdb.Accepted
		wk.batch.Points[i].Ref = wk.retry.Points[k].Ref
	}
	for _, rj := range wk.retry.Rejected {
		wk.outcome[wk.retryIdx[rj.Index]] = rj.Reason
	}
	return nil
}

// otlpTags returns the tags of point i of wk.batch: its own, or, for a
// point sent by ref, those of the same point of the request converted
// again without the cache (once per request, on this slow path only).
// The two conversions make the same points in the same order: a cache hit
// skips building a series' tags, never a point.
func (h *Handler) otlpTags(wk *otlpWork, md pmetric.Metrics, i int) tags.Set {
	if ts := wk.batch.Points[i].Tags; len(ts) > 0 {
		return ts
	}
	if !wk.plainOK {
		wk.plainOK = true
		wk.plain.reset(h.opts.Tags, wk.conv.now, wk.conv.step, nil)
		wk.plain.convert(md)
	}
	if len(wk.plain.points) != len(wk.batch.Points) {
		h.opts.Logger.Error("BUG: otlp conversion without the ref cache made another number of points",
			"points", len(wk.plain.points), "want", len(wk.batch.Points))
		return nil
	}
	return wk.plain.points[i].Tags
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
