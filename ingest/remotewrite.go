package ingest

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Prometheus remote write 1.0 (api.md): a snappy-compressed (block format)
// protobuf WriteRequest. __name__ becomes the name tag; series whose name
// ends in _total, _count, _sum or _bucket are monotonic counters, stored as
// counters so that the store turns them into per-second rates, reset-aware;
// everything else is a gauge. Staleness markers are not data and are
// skipped. Labels are stored as sent under the tag policy (TagPolicy): a
// series that breaks it is rejected alone. When some samples were stored
// and others rejected the reply is 200 with the count rejected in an Atlas
// partial body (a 4xx would make senders log the whole block as dropped);
// when all were rejected it is 400, which senders do not retry; 429 and
// 5xx they do.

// staleNaN is Prometheus's staleness marker.
const staleNaN = 0x7ff0000000000002

type remoteWork struct {
	decoded []byte
	req     prompb.WriteRequest
	arena   []tags.Tag
	spans   []tagSpan
	batch   tsdb.Batch
	rej     rejections
	cut     int // tag values cut to the policy's length
	stored  int // samples stored
}

var remotePool = sync.Pool{New: func() any { return new(remoteWork) }}

func (h *Handler) remoteWrite(w http.ResponseWriter, r *http.Request) {
	req := h.pool.Get().(*publishRequest)
	defer h.pool.Put(req)
	enc, err := h.readBody(w, r, &req.body, "snappy")
	if err != nil {
		writeError(w, r, err)
		return
	}
	wk := remotePool.Get().(*remoteWork)
	defer remotePool.Put(wk)
	if err := decodeRemote(wk, req.body.Bytes(), enc, h.opts.MaxDecodedBytes); err != nil {
		h.reject(protoRemoteWrite, "MalformedPayload", 1)
		writeError(w, r, err)
		return
	}
	if err := h.ingestRemote(r, wk); err != nil {
		writeError(w, r, err)
		return
	}
	if wk.rej.count > 0 {
		if wk.stored == 0 {
			writeJSON(w, http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: wk.rej.count, Message: wk.rej.messages})
			return
		}
		writeJSON(w, http.StatusOK, &publishResponse{Type: "partial", ErrorCount: wk.rej.count, Message: wk.rej.messages})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeRemote decodes a remote-write body into wk.req.
func decodeRemote(wk *remoteWork, raw []byte, enc string, maxDecoded int64) error {
	if enc == "snappy" || enc == "" {
		// Check the declared length before allocating for it: a few bytes
		// can claim gigabytes.
		n, err := snappy.DecodedLen(raw)
		if err != nil {
			return &httpError{status: http.StatusBadRequest, msg: "invalid snappy body: " + err.Error()}
		}
		if int64(n) > maxDecoded {
			return &httpError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("decompressed body of %d bytes exceeds %d", n, maxDecoded)}
		}
		if cap(wk.decoded) < n {
			wk.decoded = make([]byte, n)
		}
		if raw, err = snappy.Decode(wk.decoded[:n], raw); err != nil {
			return &httpError{status: http.StatusBadRequest, msg: "invalid snappy body: " + err.Error()}
		}
	}
	wk.req.Reset()
	if err := wk.req.Unmarshal(raw); err != nil {
		return &httpError{status: http.StatusBadRequest, msg: "invalid WriteRequest: " + err.Error()}
	}
	return nil
}

func (h *Handler) ingestRemote(r *http.Request, wk *remoteWork) error {
	samples := 0
	for i := range wk.req.Timeseries {
		samples += len(wk.req.Timeseries[i].Samples)
	}
	if samples > h.opts.MaxDatapoints {
		return &httpError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%d samples in one request, more than %d", samples, h.opts.MaxDatapoints)}
	}
	for reason, n := range convertRemote(wk, h.opts.Tags) {
		h.reject(protoRemoteWrite, reason, n)
	}
	h.countCut(protoRemoteWrite, wk.cut)
	if len(wk.batch.Points) > 0 {
		if err := h.opts.Appender.Append(r.Context(), &wk.batch); err != nil {
			return err
		}
	}
	for _, rj := range wk.batch.Rejected {
		p := wk.batch.Points[rj.Index]
		h.reject(protoRemoteWrite, rj.Reason.String(), 1)
		wk.rej.add(func() string { return storeReason(rj.Reason, p.T) + " (tags=" + tagString(p.Tags) + ")" })
	}
	wk.stored = len(wk.batch.Points) - len(wk.batch.Rejected)
	h.accepted(protoRemoteWrite, wk.stored)
	return nil
}

// convertRemote maps wk.req into wk.batch and returns rejections by reason.
func convertRemote(wk *remoteWork, policy TagPolicy) map[string]int {
	reasons := map[string]int{}
	wk.arena, wk.spans, wk.cut, wk.stored = wk.arena[:0], wk.spans[:0], 0, 0
	wk.batch.Reset()
	wk.rej.reset()
	for i := range wk.req.Timeseries {
		ts := &wk.req.Timeseries[i]
		start := len(wk.arena)
		name := ""
		for _, l := range ts.Labels {
			k := l.Name
			if k == "__name__" {
				k, name = tags.NameKey, l.Value
			}
			if l.Value == "" {
				continue // an empty label is an absent one in Prometheus
			}
			v, cut := policy.value(l.Value)
			if cut {
				wk.cut++
			}
			wk.arena = append(wk.arena, tags.Tag{Key: k, Value: v})
		}
		dst := "gauge"
		for _, suffix := range []string{"_total", "_count", "_sum", "_bucket"} {
			if strings.HasSuffix(name, suffix) {
				dst = "counter"
			}
		}
		wk.arena = append(wk.arena, tags.Tag{Key: tsdb.DSTypeKey, Value: dst})
		set := tags.Set(wk.arena[start:]).Normalize()
		wk.arena = wk.arena[:start+len(set)]
		if reason, msg := policy.check(set); reason != "" {
			reasons[reason] += len(ts.Samples)
			for range ts.Samples {
				wk.rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(set)) })
			}
			wk.arena = wk.arena[:start]
			continue
		}
		for _, s := range ts.Samples {
			if math.Float64bits(s.Value) == staleNaN {
				continue
			}
			wk.spans = append(wk.spans, tagSpan{int32(start), int32(len(wk.arena))})
			wk.batch.Points = append(wk.batch.Points, tsdb.Datapoint{T: s.Timestamp, V: s.Value})
		}
	}
	for i := range wk.batch.Points {
		wk.batch.Points[i].Tags = wk.arena[wk.spans[i].start:wk.spans[i].end]
	}
	return reasons
}
