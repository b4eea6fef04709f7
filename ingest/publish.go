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
	spans  []span  // accepted point i's tags are final[spans[i].start:spans[i].end], or start -1 for a ref
	rej    rejections

	// The retry of cached refs the store no longer knew: their metrics,
	// and the batch that sends them again with tags.
	stale       []int32
	retry       tsdb.Batch
	retryMetric []int32
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
	d.reset(req.body.Bytes(), rules, h.opts.MaxDatapoints, h.refs)
	err := d.decode()
	if err == nil {
		err = d.keyAll()
	} else if err2 := d.materializeAll(); err2 != nil {
		err = err2 // an earlier error in tags the scan skipped
	}
	if err != nil {
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
	hits := 0
	for i := range d.metrics {
		m := &d.metrics[i]
		if m.ref != 0 && m.hasT {
			// Fast path: a series from the ref cache. Its tag text passed
			// the rules with these common tags before.
			spanBuf = append(spanBuf, span{-1, -1})
			req.metric = append(req.metric, int32(i))
			hits++
			continue
		}
		start := len(req.final)
		ts, reason, msg := h.tagsOf(req, m)
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
		p := tsdb.Datapoint{T: m.t, V: m.v}
		if s.start < 0 {
			p.Ref = m.ref
		} else {
			p.Tags = req.final[s.start:s.end]
		}
		req.batch.Points = append(req.batch.Points, p)
	}
	accepted, err := h.appendPublish(r, req, &req.batch, req.metric)
	if err != nil {
		return 0, nil, err
	}
	if hits > 0 {
		h.refHits.Add(float64(hits))
	}
	if len(req.stale) > 0 {
		h.refStale.Add(float64(len(req.stale)))
		// Slow path: cached refs the store no longer knows (a series
		// dropped by retention, a ref the Appender forgot) go again with
		// their tags.
		req.retry.Reset()
		req.retryMetric = req.retryMetric[:0]
		for _, i := range req.stale {
			m := &d.metrics[i]
			h.refs.drop(m.key, m.ref)
			m.ref = 0
			start := len(req.final)
			ts, reason, msg := h.tagsOf(req, m)
			if reason != "" { // the rules are fixed: only a broken cache gets here
				h.reject(protoAtlas, reason, 1)
				req.rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(ts)) })
				req.final = req.final[:start]
				continue
			}
			req.retry.Points = append(req.retry.Points, tsdb.Datapoint{Tags: ts, T: m.t, V: m.v})
			req.retryMetric = append(req.retryMetric, i)
		}
		n, err := h.appendPublish(r, req, &req.retry, req.retryMetric)
		if err != nil {
			return 0, nil, err
		}
		accepted += n
	}
	h.accepted(protoAtlas, accepted)
	switch {
	case req.rej.count == 0:
		return http.StatusOK, nil, nil
	case accepted > 0:
		return http.StatusAccepted, &publishResponse{Type: "partial", ErrorCount: req.rej.count, Message: req.rej.messages}, nil
	}
	return http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: req.rej.count, Message: req.rej.messages}, nil
}

// tagsOf builds the tag set of m at the end of req.final (decoding its tags
// first if the ref cache skipped them) and checks it against the rules. It
// returns the set and, if it fails them, the reason and message.
func (h *Handler) tagsOf(req *publishRequest, m *metric) (ts tags.Set, reason, msg string) {
	d := &req.dec
	if err := d.materialize(m); err != nil {
		// The text decoded before; a body cannot change under a request.
		return nil, "MalformedPayload", err.Error()
	}
	start := len(req.final)
	req.final = d.merge(req.final, m)
	ts = tags.Set(req.final[start:])
	rules := h.opts.Rules
	switch {
	case m.overflow:
		return ts, ReasonTags, fmt.Sprintf("too many tags: more than %d", rules.MaxTags)
	case !m.hasT:
		return ts, ReasonTimestamp, "missing timestamp"
	}
	reason, msg = rules.validate(ts, m.dirty || d.dirtyCommon)
	return ts, reason, msg
}

// appendPublish stores b, whose point k is metric metric[k] of the
// request, counts and describes what the store rejected, caches the refs
// of accepted series, and returns how many points were accepted. Points
// sent by a cached ref that the store does not know are neither accepted
// nor rejected: their metric indexes are left in req.stale for a retry.
func (h *Handler) appendPublish(r *http.Request, req *publishRequest, b *tsdb.Batch, metric []int32) (int, error) {
	req.stale = req.stale[:0]
	if len(b.Points) == 0 {
		return 0, nil
	}
	if err := h.opts.Appender.Append(r.Context(), b); err != nil {
		return 0, err
	}
	d := &req.dec
	rejected := b.Rejected
	accepted := 0
	for k := range b.Points {
		p := &b.Points[k]
		m := &d.metrics[metric[k]]
		if len(rejected) == 0 || rejected[0].Index != k {
			if h.refs != nil && m.ref == 0 && p.Ref != 0 && m.key != (refKey{}) {
				if h.refs.put(m.key, p.Ref) {
					h.refEvicted.Increment()
				}
			}
			accepted++
			continue
		}
		rj := rejected[0]
		rejected = rejected[1:]
		if rj.Reason == tsdb.MissingName && p.Ref != 0 && len(p.Tags) == 0 {
			req.stale = append(req.stale, metric[k])
			continue
		}
		h.reject(protoAtlas, rj.Reason.String(), 1)
		req.rej.add(func() string {
			ts := p.Tags
			if len(ts) == 0 {
				ts, _, _ = h.tagsOf(req, m)
			}
			return storeReason(rj.Reason, m.t) + " (tags=" + tagString(ts) + ")"
		})
	}
	return accepted, nil
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
