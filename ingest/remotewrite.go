package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strings"

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

	// The ref cache (refcache.go), keyed by each series' labels as sent:
	// per series its key (zero: not cacheable) and cached ref, per batch
	// point its series, and the retry of refs the store no longer knew.
	keyBuf      []byte
	keys        []refKey
	refs        []tsdb.SeriesRef
	order       []int32
	series      []int32
	stale       []int32        // batch points sent by a ref the store did not know
	reasons     map[string]int // convertRemote's rejections by reason
	retry       tsdb.Batch
	retrySeries []int32
}

// trim lets go of the tag arena when this request used under a quarter of
// it: the arena holds the tags of series the ref cache missed, so after
// the first requests of a load (all misses) it stays mostly unused, and
// kept it cost 2 MB a workspace (10 000 series of 7 tags).
func (wk *remoteWork) trim() {
	if c := cap(wk.arena); c > 1024 && 4*len(wk.arena) < c {
		wk.arena = nil
	}
}

func (h *Handler) remoteWrite(w http.ResponseWriter, r *http.Request) {
	req := h.pool.Get().(*publishRequest)
	defer h.pool.Put(req)
	enc, err := h.readBody(w, r, &req.body, "snappy")
	if err != nil {
		writeError(w, r, err)
		return
	}
	wk := h.remoteWork.get()
	defer func() {
		wk.trim()
		h.remoteWork.put(wk)
	}()
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
	if err := unmarshalWriteRequest(&wk.req, raw); err != nil {
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
	for reason, n := range convertRemote(wk, h.opts.Tags, h.refs, h.rwContext) {
		h.reject(protoRemoteWrite, reason, n)
	}
	h.countCut(protoRemoteWrite, wk.cut)
	hits := 0
	for i := range wk.batch.Points {
		if wk.batch.Points[i].Ref != 0 {
			hits++
		}
	}
	if hits > 0 {
		h.refHits.Add(float64(hits))
	}
	if err := h.appendRemote(r, wk, &wk.batch, wk.series); err != nil {
		return err
	}
	if len(wk.stale) > 0 {
		// Slow path: cached refs the store no longer knows go again with
		// their tags (see publish).
		h.refStale.Add(float64(len(wk.stale)))
		wk.retry.Reset()
		wk.retrySeries = wk.retrySeries[:0]
		for _, k := range wk.stale {
			p, i := wk.batch.Points[k], wk.series[k]
			h.refs.drop(wk.keys[i], p.Ref)
			wk.refs[i] = 0 // so that the new ref is cached
			ts, _, _, _ := remoteTags(wk, &wk.req.Timeseries[i], h.opts.Tags)
			wk.retry.Points = append(wk.retry.Points, tsdb.Datapoint{Tags: ts, T: p.T, V: p.V})
			wk.retrySeries = append(wk.retrySeries, i)
		}
		if err := h.appendRemote(r, wk, &wk.retry, wk.retrySeries); err != nil {
			return err
		}
	}
	h.accepted(protoRemoteWrite, wk.stored)
	return nil
}

// appendRemote stores b, whose point k is of series series[k] of the
// request: it counts what was stored, describes what the store rejected,
// and caches the refs of accepted series. Points sent by a cached ref that
// the store does not know are left in wk.stale for a retry.
func (h *Handler) appendRemote(r *http.Request, wk *remoteWork, b *tsdb.Batch, series []int32) error {
	wk.stale = wk.stale[:0]
	if len(b.Points) == 0 {
		return nil
	}
	if err := h.opts.Appender.Append(r.Context(), b); err != nil {
		return err
	}
	rejected := b.Rejected
	for k := range b.Points {
		p := &b.Points[k]
		i := series[k]
		if len(rejected) == 0 || rejected[0].Index != k {
			if h.refs != nil && wk.refs[i] == 0 && p.Ref != 0 && wk.keys[i] != (refKey{}) {
				if h.refs.put(wk.keys[i], p.Ref) {
					h.refEvicted.Increment()
				}
				wk.refs[i] = p.Ref // its other samples need not put it again
			}
			wk.stored++
			continue
		}
		rj := rejected[0]
		rejected = rejected[1:]
		if rj.Reason == tsdb.MissingName && p.Ref != 0 && len(p.Tags) == 0 {
			wk.stale = append(wk.stale, int32(k))
			continue
		}
		h.reject(protoRemoteWrite, rj.Reason.String(), 1)
		wk.rej.add(func() string {
			ts := p.Tags
			if len(ts) == 0 {
				ts, _, _, _ = remoteTags(wk, &wk.req.Timeseries[i], h.opts.Tags)
			}
			return storeReason(rj.Reason, p.T) + " (tags=" + tagString(ts) + ")"
		})
	}
	return nil
}

// convertRemote maps wk.req into wk.batch and returns rejections by reason.
// With a ref cache, series whose labels it knows are sent by ref: their
// tags are not built, sorted or checked (they passed the policy before,
// whole: series with a value cut are not cached, as a hit would not count
// the cut).
func convertRemote(wk *remoteWork, policy TagPolicy, refs *refCache, ctx refKey) map[string]int {
	if wk.reasons == nil {
		wk.reasons = map[string]int{}
	}
	reasons := wk.reasons
	clear(reasons)
	wk.arena, wk.spans, wk.series, wk.cut, wk.stored = wk.arena[:0], wk.spans[:0], wk.series[:0], 0, 0
	wk.batch.Reset()
	wk.rej.reset()
	n := len(wk.req.Timeseries)
	wk.keys, wk.refs = resize(wk.keys, n), resize(wk.refs, n)
	clear(wk.keys)
	clear(wk.refs)
	if refs != nil {
		for i := range wk.req.Timeseries {
			wk.keyBuf = appendLabels(wk.keyBuf[:0], wk.req.Timeseries[i].Labels)
			wk.keys[i] = refs.key(ctx, wk.keyBuf)
		}
		wk.order = refs.lookupAll(wk.keys, wk.refs, wk.order)
	}
	for i := range wk.req.Timeseries {
		ts := &wk.req.Timeseries[i]
		start, end := int32(len(wk.arena)), int32(len(wk.arena))
		if wk.refs[i] == 0 {
			set, cut, reason, msg := remoteTags(wk, ts, policy)
			if reason != "" {
				reasons[reason] += len(ts.Samples)
				for range ts.Samples {
					wk.rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(set)) })
				}
				wk.arena = wk.arena[:start]
				wk.keys[i] = refKey{}
				continue
			}
			if cut > 0 {
				wk.keys[i] = refKey{}
			}
			wk.cut += cut
			end = int32(len(wk.arena))
		}
		for _, s := range ts.Samples {
			if math.Float64bits(s.Value) == staleNaN {
				continue
			}
			wk.spans = append(wk.spans, tagSpan{start, end})
			wk.series = append(wk.series, int32(i))
			wk.batch.Points = append(wk.batch.Points, tsdb.Datapoint{Ref: wk.refs[i], T: s.Timestamp, V: s.Value})
		}
	}
	for i := range wk.batch.Points {
		if sp := wk.spans[i]; sp.end > sp.start {
			wk.batch.Points[i].Tags = wk.arena[sp.start:sp.end]
		}
	}
	return reasons
}

// remoteTags builds the tag set of ts at the end of wk.arena: labels as
// sent under the policy, __name__ as the name, and the data source type
// from the name's suffix. It returns the set, how many values were cut,
// and the policy's reason and message if it breaks it.
func remoteTags(wk *remoteWork, ts *prompb.TimeSeries, policy TagPolicy) (set tags.Set, cut int, reason, msg string) {
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
		v, c := policy.value(l.Value)
		if c {
			cut++
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
	set = tags.Set(wk.arena[start:]).Normalize()
	wk.arena = wk.arena[:start+len(set)]
	reason, msg = policy.check(set)
	return set, cut, reason, msg
}

// appendLabels appends to dst the labels as the ref cache keys them: each
// name and value with its length first, so that no two label lists
// append the same bytes.
func appendLabels(dst []byte, ls []prompb.Label) []byte {
	for _, l := range ls {
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	}
	return dst
}
