package fanout

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/tracing"
)

// GetTrace implements tracing.Reader: the owners of the trace's partition
// are asked, the first that answers decides (found or not).
func (q *Querier) GetTrace(ctx context.Context, id tracing.TraceID) (tracing.Trace, error) {
	n := q.opts.Owners.Partitions()
	// A trace lives in one partition (its ID decides, as ingest wrote
	// it), so one owner's answer is the whole trace.
	p := tracing.TracePartition(id, n)
	ends, err := q.endOffsets(ctx, LogSpans, n)
	if err != nil {
		return tracing.Trace{}, err
	}
	offs := offsetsFor(ends, []int{p})
	body, err := encodeGob(traceRequest{Version: gobVersion(offs), ID: id, N: n, Offsets: offs})
	if err != nil {
		return tracing.Trace{}, err
	}
	answers, missing, err := scatter(ctx, q, []int{p}, nil, func(ctx context.Context, nd Node, _ []int) (*tracing.Trace, error) {
		data, err := q.post(ctx, nd, PathTrace, body, nil)
		if errors.Is(err, tracing.ErrNotFound) {
			return nil, nil // an answer: the owner has no such trace
		}
		if err != nil {
			return nil, err
		}
		var tr tracing.Trace
		if err := decodeGob(data, &tr); err != nil {
			return nil, err
		}
		return &tr, nil
	})
	if err != nil {
		return tracing.Trace{}, err
	}
	if len(missing) > 0 {
		// The trace's only partition did not answer: nothing to show, and
		// "not found" would be a quiet wrong answer.
		q.m.partial.Increment()
		return tracing.Trace{}, ErrUnavailable
	}
	if answers[0] == nil {
		return tracing.Trace{}, tracing.ErrNotFound
	}
	return *answers[0], nil
}

// FindTraces implements tracing.Reader: every node searches the partitions
// asked of it for q.Limit traces; the merge orders the union newest first
// by the start of the trace's earliest span of q.Service (the store's own
// order) and keeps q.Limit of them.
func (q *Querier) FindTraces(ctx context.Context, tq tracing.Query) ([]tracing.Trace, error) {
	n := q.opts.Owners.Partitions()
	wq := toWireQuery(tq)
	ends, err := q.endOffsets(ctx, LogSpans, n)
	if err != nil {
		return nil, err
	}
	answers, missing, err := scatter(ctx, q, allPartitions(n), nil, func(ctx context.Context, nd Node, ps []int) ([]tracing.Trace, error) {
		offs := offsetsFor(ends, ps)
		body, err := encodeGob(findRequest{Version: gobVersion(offs), Query: wq, N: n, Want: ps, Offsets: offs})
		if err != nil {
			// An encoding failure is ours, not the node's: fatalError stops
			// the scatter instead of failing over to the next owner.
			return nil, &fatalError{err}
		}
		data, err := q.post(ctx, nd, PathTraces, body, nil)
		if err != nil {
			return nil, err
		}
		var trs []tracing.Trace
		if err := decodeGob(data, &trs); err != nil {
			return nil, err
		}
		return trs, nil
	})
	if err != nil {
		return nil, err
	}
	if err := q.partial(ctx, "spans", missing, n, len(answers)); err != nil {
		return nil, err
	}
	type ranked struct {
		key int64
		tr  tracing.Trace
	}
	var all []ranked
	for _, a := range answers {
		for _, tr := range a {
			all = append(all, ranked{serviceStart(tr, tq.Service), tr})
		}
	}
	// Newest first, then by trace ID, so that equal starts from
	// different nodes merge in the same order on every query.
	slices.SortStableFunc(all, func(a, b ranked) int {
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		return strings.Compare(a.tr.ID.String(), b.tr.ID.String())
	})
	out := make([]tracing.Trace, 0, min(len(all), tq.Limit))
	for _, r := range all {
		if len(out) == tq.Limit {
			break
		}
		out = append(out, r.tr)
	}
	return out, nil
}

// serviceStart is the start of the trace's earliest span of service (of
// any span when it has none).
func serviceStart(tr tracing.Trace, service string) int64 {
	first, earliest := int64(0), int64(0)
	found := false
	for i, s := range tr.Spans {
		if i == 0 || s.Start < earliest {
			earliest = s.Start
		}
		if s.Resource != nil && s.Resource.Service == service && (!found || s.Start < first) {
			first, found = s.Start, true
		}
	}
	if !found {
		return earliest
	}
	return first
}

// catalog asks one owner of every partition for its catalog.
func (q *Querier) catalog(ctx context.Context, req catalogRequest) ([]catalogAnswer, error) {
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogSpans, n)
	if err != nil {
		return nil, err
	}
	// A catalog is per node, not per partition: any owner's list covers
	// its partitions, and the union over one owner of each covers all.
	answers, missing, err := scatter(ctx, q, allPartitions(n), nil, func(ctx context.Context, nd Node, ps []int) (catalogAnswer, error) {
		r := req
		r.Offsets = offsetsFor(ends, ps)
		r.Version = gobVersion(r.Offsets)
		body, err := encodeGob(r)
		if err != nil {
			return catalogAnswer{}, &fatalError{err}
		}
		data, err := q.post(ctx, nd, PathCatalog, body, nil)
		if err != nil {
			return catalogAnswer{}, err
		}
		var a catalogAnswer
		err = decodeGob(data, &a)
		return a, err
	})
	if err != nil {
		return nil, err
	}
	return answers, q.partial(ctx, "spans", missing, n, len(answers))
}

// Services implements tracing.Catalog: the union of the nodes' services.
func (q *Querier) Services(ctx context.Context) ([]string, error) {
	answers, err := q.catalog(ctx, catalogRequest{Version: wireVersionBase})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range answers {
		out = append(out, a.Services...)
	}
	slices.Sort(out)
	// Sorted then compacted: the same service seen by several nodes
	// is listed once.
	return slices.Compact(out), nil
}

// Operations implements tracing.Catalog: the union of the nodes'
// operations of service, sorted by name then kind.
func (q *Querier) Operations(ctx context.Context, service string, kind tracing.SpanKind) ([]tracing.Operation, error) {
	answers, err := q.catalog(ctx, catalogRequest{Version: wireVersionBase, Operations: true, Service: service, Kind: kind})
	if err != nil {
		return nil, err
	}
	var out []tracing.Operation
	for _, a := range answers {
		out = append(out, a.Operations...)
	}
	slices.SortFunc(out, func(a, b tracing.Operation) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	return slices.Compact(out), nil
}

// Dependencies implements tracing.DependencyReader. Every node counts the
// calls in the traces of the partitions asked of it (a trace lives in one
// partition, and its spans on that partition's owners), so the counts of
// the nodes add up to exactly what one store holding every span counts.
// Calls a node counted without a partition (written before it knew the
// log's partitions: spans of a release before, or a store that cannot
// tell) cannot be added up: each edge gets, on top of the sum, the
// largest such count of a node (a lower bound), and the answer is marked
// partial.
func (q *Querier) Dependencies(ctx context.Context, start, end int64) ([]tracing.Dependency, error) {
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogSpans, n)
	if err != nil {
		return nil, err
	}
	answers, missing, err := scatter(ctx, q, allPartitions(n), nil, func(ctx context.Context, nd Node, ps []int) (depsAnswer, error) {
		offs := offsetsFor(ends, ps)
		body, err := encodeGob(depsRequest{Version: wireVersionBudget, Start: start, End: end, Offsets: offs, N: n, Want: ps})
		if err != nil {
			return depsAnswer{}, &fatalError{err}
		}
		data, err := q.post(ctx, nd, PathDeps, body, nil)
		if err != nil {
			return depsAnswer{}, err
		}
		var a depsAnswer
		err = decodeGob(data, &a)
		return a, err
	})
	if err != nil {
		return nil, err
	}
	if err := q.partial(ctx, "spans", missing, n, len(answers)); err != nil {
		return nil, err
	}
	type pair struct{ parent, child string }
	counts, unplaced := map[pair]int64{}, map[pair]int64{}
	for _, a := range answers {
		for _, d := range a.In {
			counts[pair{d.Parent, d.Child}] += d.CallCount
		}
		for _, d := range a.Unplaced {
			k := pair{d.Parent, d.Child}
			unplaced[k] = max(unplaced[k], d.CallCount)
		}
	}
	if len(unplaced) > 0 {
		tracing.MarkPartial(ctx)
		q.opts.Logger.Warn("dependencies counted without partitions", "edges", len(unplaced))
		for k, c := range unplaced {
			counts[k] += c
		}
	}
	out := make([]tracing.Dependency, 0, len(counts))
	for k, c := range counts {
		out = append(out, tracing.Dependency{Parent: k.parent, Child: k.child, CallCount: c})
	}
	slices.SortFunc(out, func(a, b tracing.Dependency) int {
		if c := strings.Compare(a.Parent, b.Parent); c != 0 {
			return c
		}
		return strings.Compare(a.Child, b.Child)
	})
	return out, nil
}
