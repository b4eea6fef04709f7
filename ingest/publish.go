package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// maxMessages is how many rejected datapoints a response names.
const maxMessages = 5

// publishRequest is the pooled working space of one publish request.
type publishRequest struct {
	body   bytes.Buffer
	dec    publishDecoder
	final  []tags.Tag // merged tag sets of the accepted datapoints
	batch  tsdb.Batch
	metric []int32 // batch point i comes from dec.metrics[metric[i]]
	spans  []span  // accepted point i's tags are final[spans[i].start:spans[i].end]
	rej    rejections
}

// span is a range of publishRequest.final.
type span struct{ start, end int32 }

// rejections collects what a request refused: a count, and the first few
// datapoints with their reasons.
type rejections struct {
	count    int
	messages []string
}

func (r *rejections) reset() { r.count, r.messages = 0, r.messages[:0] }

// add records a rejected datapoint; msg is only built for the first few.
func (r *rejections) add(msg func() string) {
	r.count++
	if len(r.messages) < maxMessages {
		r.messages = append(r.messages, msg())
	}
}

// publish serves POST /api/v1/publish.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	req := h.pool.Get().(*publishRequest)
	defer h.pool.Put(req)
	if _, err := h.readBody(w, r, &req.body); err != nil {
		writeError(w, r, err)
		return
	}
	if isSpectatorBatch(req.body.Bytes()) {
		h.publishBatch(w, r, req.body.Bytes())
		return
	}
	status, body, err := h.ingestPublish(r, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if status == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, status, body)
}

// publishResponse is Atlas's body for a request with rejections.
type publishResponse struct {
	Type       string   `json:"type"`
	ErrorCount int      `json:"errorCount"`
	Message    []string `json:"message"`
}

// ingestPublish decodes, validates and stores req.body. It returns the
// status and, unless everything was accepted, the response body.
func (h *Handler) ingestPublish(r *http.Request, req *publishRequest) (int, *publishResponse, error) {
	rules := h.opts.Rules
	d := &req.dec
	d.reset(req.body.Bytes(), rules, h.opts.MaxDatapoints)
	if err := d.decode(); err != nil {
		var tm *tooManyError
		if errors.As(err, &tm) {
			return 0, nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: err.Error()}
		}
		h.reject(protoAtlas, "MalformedPayload", 1)
		return http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: 1, Message: []string{err.Error()}}, nil
	}
	if len(d.metrics) == 0 {
		return http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: 0, Message: []string{"empty payload"}}, nil
	}
	d.common = tags.Set(d.common).Normalize()

	req.rej.reset()
	req.final, req.metric = req.final[:0], req.metric[:0]
	req.batch.Reset()
	// Tag sets are built first and pointed into afterwards: req.final may
	// grow (and move) while it fills.
	spanBuf := req.spans[:0]
	for i := range d.metrics {
		m := &d.metrics[i]
		start := len(req.final)
		req.final = d.merge(req.final, m)
		ts := tags.Set(req.final[start:])
		var reason, msg string
		switch {
		case m.overflow:
			reason, msg = ReasonTags, fmt.Sprintf("too many tags: more than %d", rules.MaxTags)
		case !m.hasT:
			reason, msg = ReasonTimestamp, "missing timestamp"
		default:
			reason, msg = rules.validate(ts, m.dirty || d.dirtyCommon)
		}
		if reason != "" {
			h.reject(protoAtlas, reason, 1)
			req.rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(ts)) })
			req.final = req.final[:start] // after the message: ts aliases it
			continue
		}
		spanBuf = append(spanBuf, span{int32(start), int32(len(req.final))})
		req.metric = append(req.metric, int32(i))
	}
	req.spans = spanBuf
	for k, s := range spanBuf {
		m := &d.metrics[req.metric[k]]
		req.batch.Points = append(req.batch.Points, tsdb.Datapoint{Tags: req.final[s.start:s.end], T: m.t, V: m.v})
	}
	if len(req.batch.Points) > 0 {
		if err := h.opts.Appender.Append(r.Context(), &req.batch); err != nil {
			return 0, nil, err
		}
	}
	for _, rj := range req.batch.Rejected {
		p := req.batch.Points[rj.Index]
		m := &d.metrics[req.metric[rj.Index]]
		h.reject(protoAtlas, rj.Reason.String(), 1)
		req.rej.add(func() string { return storeReason(rj.Reason, m.t) + " (tags=" + tagString(p.Tags) + ")" })
	}
	accepted := len(req.batch.Points) - len(req.batch.Rejected)
	h.accepted(protoAtlas, accepted)
	switch {
	case req.rej.count == 0:
		return http.StatusOK, nil, nil
	case accepted > 0:
		return http.StatusAccepted, &publishResponse{Type: "partial", ErrorCount: req.rej.count, Message: req.rej.messages}, nil
	}
	return http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: req.rej.count, Message: req.rej.messages}, nil
}

// storeReason explains a rejection by the store.
func storeReason(r tsdb.Reason, t int64) string {
	switch r {
	case tsdb.TooOld:
		return fmt.Sprintf("DataTooOld: timestamp %d is older than the ingest max age", t)
	case tsdb.FromFuture:
		return fmt.Sprintf("DataFromFuture: timestamp %d is more than 5m ahead", t)
	case tsdb.SeriesLimit:
		return "SeriesLimitExceeded: the store holds its maximum number of series; new series are refused"
	case tsdb.NameLimit:
		return "NameSeriesLimitExceeded: this name has its maximum number of series; new series are refused"
	case tsdb.OutOfOrder:
		return fmt.Sprintf("OutOfOrder: counter sample at %d is older than the series' last one", t)
	case tsdb.MissingName:
		return "missing key 'name'"
	}
	return r.String()
}

// tagString renders tags as {k=v, ...}, shortened for messages.
func tagString(ts tags.Set) string {
	s := ts.String()
	if len(s) > 400 {
		s = s[:400] + "...}"
	}
	return strings.ToValidUTF8(s, "?")
}
