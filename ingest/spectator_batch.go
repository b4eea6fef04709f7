package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Spectator's batch payload (api.md "More ways in"), as Spectator's HTTP
// publishers (spectator-go v0.x) send it to /api/v1/publish: a JSON array
// [N, s0 … sN-1, then per measurement: tagCount, (keyIndex, valueIndex) ×
// tagCount, op, value] with 0-based indices into the string table. Op 0
// adds a count to the current step (stored as a per-second rate), op 10
// keeps the step's maximum (a gauge). The time is the time of receipt.
// Tags follow Atlas's publish rules, as the Atlas JSON payload does.

// Batch ops.
const (
	batchOpAdd = 0
	batchOpMax = 10
)

// isSpectatorBatch reports whether a publish body is a batch payload: its
// first byte other than white space is '['.
func isSpectatorBatch(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// batchMeasurement is one decoded measurement.
type batchMeasurement struct {
	tags  tags.Set
	op    int
	value float64
}

// decodeSpectatorBatch decodes a batch payload of at most maxPoints
// measurements.
func decodeSpectatorBatch(b []byte, maxPoints int) ([]batchMeasurement, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		return nil, fmt.Errorf("invalid batch payload: %w", err)
	}
	if len(arr) == 0 {
		return nil, fmt.Errorf("invalid batch payload: empty array")
	}
	i := 0
	next := func(what string) (float64, error) {
		if i >= len(arr) {
			return 0, fmt.Errorf("invalid batch payload: %s expected at element %d, found the end", what, i)
		}
		var f float64
		if err := json.Unmarshal(arr[i], &f); err != nil {
			var s string
			if json.Unmarshal(arr[i], &s) == nil && s == "NaN" && what == "value" {
				i++
				return math.NaN(), nil
			}
			return 0, fmt.Errorf("invalid batch payload: %s expected at element %d, found %.40s", what, i, arr[i])
		}
		i++
		return f, nil
	}
	index := func(what string, n int) (int, error) {
		f, err := next(what)
		if err != nil {
			return 0, err
		}
		if f != math.Trunc(f) || f < 0 || f >= float64(n) {
			return 0, fmt.Errorf("invalid batch payload: %s %v at element %d is not an integer in [0, %d)", what, f, i-1, n)
		}
		return int(f), nil
	}
	n, err := index("string count", len(arr))
	if err != nil {
		return nil, err
	}
	strs := make([]string, n)
	for k := range strs {
		if i >= len(arr) || json.Unmarshal(arr[i], &strs[k]) != nil {
			return nil, fmt.Errorf("invalid batch payload: string %d of the table expected at element %d", k, i)
		}
		i++
	}
	var out []batchMeasurement
	for i < len(arr) {
		if len(out) >= maxPoints {
			return nil, &tooManyError{max: maxPoints}
		}
		tc, err := index("tag count", 1+len(arr)/2)
		if err != nil {
			return nil, err
		}
		ts := make(tags.Set, 0, tc)
		for range tc {
			k, err := index("key index", n)
			if err != nil {
				return nil, err
			}
			v, err := index("value index", n)
			if err != nil {
				return nil, err
			}
			ts = append(ts, tags.Tag{Key: strs[k], Value: strs[v]})
		}
		op, err := next("op")
		if err != nil {
			return nil, err
		}
		if op != batchOpAdd && op != batchOpMax {
			return nil, fmt.Errorf("invalid batch payload: op %v at element %d (0 = add, 10 = max)", op, i-1)
		}
		v, err := next("value")
		if err != nil {
			return nil, err
		}
		out = append(out, batchMeasurement{tags: ts, op: int(op), value: v})
	}
	return out, nil
}

// publishBatch stores a batch payload and answers as the Atlas publish API
// does (200, 202 partial, 400).
func (h *Handler) publishBatch(w http.ResponseWriter, r *http.Request, body []byte) {
	ms, err := decodeSpectatorBatch(body, h.opts.MaxDatapoints)
	if err != nil {
		var tm *tooManyError
		if errors.As(err, &tm) {
			writeError(w, r, &httpError{status: http.StatusRequestEntityTooLarge, msg: err.Error()})
			return
		}
		h.reject(protoAtlas, "MalformedPayload", 1)
		writeJSON(w, http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: 1, Message: []string{err.Error()}})
		return
	}
	if len(ms) == 0 {
		writeJSON(w, http.StatusBadRequest, &publishResponse{Type: "error", Message: []string{"empty payload"}})
		return
	}
	now := h.opts.Now()
	stepSec := float64(h.opts.Step) / 1000
	var rej rejections
	batch := tsdb.Batch{}
	for _, m := range ms {
		dst, v := "sum", m.value/stepSec
		if m.op == batchOpMax {
			dst, v = "gauge", m.value
		}
		ts := append(m.tags, tags.Tag{Key: tsdb.DSTypeKey, Value: dst}).Normalize()
		if reason, msg := h.opts.Rules.Validate(ts); reason != "" {
			h.reject(protoAtlas, reason, 1)
			rej.add(func() string { return fmt.Sprintf("%s (tags=%s)", msg, tagString(ts)) })
			continue
		}
		if math.IsNaN(v) {
			continue // no measurement, as in Atlas
		}
		batch.Points = append(batch.Points, tsdb.Datapoint{Tags: ts, T: now, V: v})
	}
	if len(batch.Points) > 0 {
		if err := h.opts.Appender.Append(r.Context(), &batch); err != nil {
			writeError(w, r, err)
			return
		}
	}
	for _, rj := range batch.Rejected {
		p := batch.Points[rj.Index]
		h.reject(protoAtlas, rj.Reason.String(), 1)
		rej.add(func() string { return storeReason(rj.Reason, p.T) + " (tags=" + tagString(p.Tags) + ")" })
	}
	h.accepted(protoAtlas, len(batch.Points)-len(batch.Rejected))
	switch {
	case rej.count == 0:
		w.WriteHeader(http.StatusOK)
	case rej.count < len(ms):
		writeJSON(w, http.StatusAccepted, &publishResponse{Type: "partial", ErrorCount: rej.count, Message: rej.messages})
	default:
		writeJSON(w, http.StatusBadRequest, &publishResponse{Type: "error", ErrorCount: rej.count, Message: rej.messages})
	}
}
