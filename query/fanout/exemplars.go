package fanout

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
)

// exemplarsRequest asks for the exemplars with T in [Start, End) of the
// traces of partitions Want of N.
type exemplarsRequest struct {
	Version    int
	Start, End int64
	N          int
	Want       []int
	Offsets    []partOffset // version 2: a strong read's offsets
}

// Exemplars returns the span-metrics exemplars with T in [start, end)
// (Unix ms), as tracing.ExemplarStore's read side does on one node (the
// query APIs take it as their ExemplarFunc). An exemplar lives with its
// trace, on the owners of the trace's partition; every node answers for
// the partitions asked of it, and the merge keeps, per series and step,
// the slowest, as a single node does. The answer is sorted by T, then by
// series.
func (q *Querier) Exemplars(ctx context.Context, start, end int64) ([]tracing.Exemplar, error) {
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogSpans, n)
	if err != nil {
		return nil, err
	}
	answers, missing, err := scatter(ctx, q, allPartitions(n), nil, func(ctx context.Context, nd Node, ps []int) ([]tracing.Exemplar, error) {
		offs := offsetsFor(ends, ps)
		body, err := encodeGob(exemplarsRequest{Version: gobVersion(offs), Start: start, End: end, N: n, Want: ps, Offsets: offs})
		if err != nil {
			return nil, &fatalError{err}
		}
		data, err := q.post(ctx, nd, PathExemplars, body, nil)
		if err != nil {
			return nil, err
		}
		var ex []tracing.Exemplar
		err = decodeGob(data, &ex)
		return ex, err
	})
	if err != nil {
		return nil, err
	}
	if err := q.partial(ctx, "spans", missing, n, len(answers)); err != nil {
		return nil, err
	}
	type slot struct {
		t      int64
		series string
	}
	best := map[slot]tracing.Exemplar{}
	for _, a := range answers {
		for _, e := range a {
			k := slot{e.T, exemplarSeries(e.Tags)}
			if b, ok := best[k]; !ok || e.Duration > b.Duration {
				best[k] = e
			}
		}
	}
	keys := make([]slot, 0, len(best))
	for k := range best {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b slot) int { return cmp.Or(cmp.Compare(a.t, b.t), strings.Compare(a.series, b.series)) })
	out := make([]tracing.Exemplar, len(keys))
	for i, k := range keys {
		out[i] = best[k]
	}
	return out, nil
}

// exemplarSeries is a key of an exemplar's series: its tags sorted by key,
// each key and value followed by a NUL byte (the span store's order).
func exemplarSeries(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(tags[k])
		b.WriteByte(0)
	}
	return b.String()
}

// exemplars serves a store node's exemplars of the partitions asked.
func (h *Handler) exemplars(ctx context.Context, body []byte, _ http.ResponseWriter) ([]byte, error) {
	var req exemplarsRequest
	if err := decodeGob(body, &req); err != nil {
		return nil, err
	}
	if err := checkGobVersion(req.Version); err != nil {
		return nil, err
	}
	if req.N <= 0 || req.N > maxListLen {
		return nil, fmt.Errorf("%w: %d partitions", errWire, req.N)
	}
	want := make([]bool, req.N)
	for _, p := range req.Want {
		if p < 0 || p >= req.N {
			return nil, fmt.Errorf("%w: partition %d out of [0, %d)", errWire, p, req.N)
		}
		want[p] = true
	}
	// A replaying node refuses, as for the other reads of a partition.
	if err := h.ready(ctx, LogSpans, &tsdb.Partitions{N: req.N, Want: req.Want}, req.Offsets); err != nil {
		return nil, err
	}
	var ex []tracing.Exemplar
	if h.opts.Exemplars != nil {
		var err error
		if ex, err = h.opts.Exemplars.Exemplars(ctx, req.Start, req.End); err != nil {
			return nil, err
		}
	}
	// The node may hold exemplars of partitions it no longer serves.
	ex = slices.DeleteFunc(ex, func(e tracing.Exemplar) bool { return !want[tracing.TracePartition(e.TraceID, req.N)] })
	return encodeGob(ex)
}
