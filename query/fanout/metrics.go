package fanout

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// Fetch implements tsdb.Querier: every store node computes the request's
// aggregate over the partitions asked of it (the aggregation is pushed
// down) and the partial aggregates are merged here: sums and counts add
// up, minima and maxima take the extreme, NaN (no data) is the identity.
// An average is a sum divided by a count above the store, and percentiles
// are grouped sums of bucket series, so both merge exactly. AggNone is the
// union of the nodes' series: the partitions split the series, so no
// series comes from two nodes. The fetch is held to Options.Limits on the
// total over the nodes, as one store holding all the data holds it
// (budget.go).
func (q *Querier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	if req.Query == nil {
		return nil, errors.New("fanout: fetch without a query")
	}
	start := time.Now()
	defer func() { q.m.latency.Record(time.Since(start)) }()
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogMetrics, n)
	if err != nil {
		return nil, err
	}
	// The query's limits bound the total over the nodes, as they bound
	// one store (budget.go); the caller's Admit, if any, is the store's
	// business and does not cross the wire.
	b := newBudget(q.opts.Limits)
	sets, missing, err := scatter(ctx, q, allPartitions(n), b, func(ctx context.Context, nd Node, ps []int) (*tsdb.SeriesSet, error) {
		r := req
		r.Partitions = &tsdb.Partitions{N: n, Want: ps}
		body := appendFetchRequest(nil, &r, reqMeta{offs: offsetsFor(ends, ps), budget: b.remaining()})
		data, err := q.post(ctx, nd, PathFetch, body, b.heard(nd.ID))
		if err != nil {
			return nil, err
		}
		return decodeSeriesSet(data)
	})
	if err != nil {
		return nil, err
	}
	if err := q.partial(ctx, "metrics", missing, n, len(sets)); err != nil {
		return nil, err
	}
	return mergeSets(&req, sets), nil
}

// partial marks the read partial when partitions are missing, and fails it
// when nothing answered. side names the data in the log ("metrics",
// "spans"): the mark itself is one for both contracts (tsdb.MarkPartial
// and tracing.MarkPartial set the same lib/partial tracker).
func (q *Querier) partial(ctx context.Context, side string, missing []int, n, answers int) error {
	if len(missing) == 0 {
		return nil
	}
	q.m.partial.Increment()
	q.opts.Logger.Warn("partial answer", "data", side, "missing_partitions", len(missing), "partitions", n)
	if answers == 0 {
		return ErrUnavailable
	}
	tsdb.MarkPartial(ctx)
	return nil
}

// mergeSets merges the answers of the store nodes to req.
func mergeSets(req *tsdb.FetchRequest, sets []*tsdb.SeriesSet) *tsdb.SeriesSet {
	out := &tsdb.SeriesSet{}
	for _, s := range sets {
		out.Stats.SeriesScanned += s.Stats.SeriesScanned
		out.Stats.DatapointsScanned += s.Stats.DatapointsScanned
	}
	if req.Aggregation == tsdb.AggNone {
		for _, s := range sets {
			out.Series = append(out.Series, s.Series...)
		}
		slices.SortFunc(out.Series, func(a, b tsdb.Series) int { return compareTags(a.Tags, b.Tags) })
		return out
	}
	type group struct {
		key string
		s   tsdb.Series
	}
	var groups []group
	index := map[string]int{} // group key -> index in groups
	for _, s := range sets {
		for _, sr := range s.Series {
			k := groupKey(req.GroupBy, sr.Tags)
			i, ok := index[k]
			if !ok {
				index[k] = len(groups)
				groups = append(groups, group{k, sr}) // the decoded answer is ours to merge into
				continue
			}
			mergeValues(req.Aggregation, groups[i].s.Values, sr.Values)
		}
	}
	// The store orders groups by their values in GroupBy order; so does
	// the merge, with the same key.
	slices.SortFunc(groups, func(a, b group) int { return strings.Compare(a.key, b.key) })
	out.Series = make([]tsdb.Series, len(groups))
	for i, g := range groups {
		out.Series[i] = g.s
	}
	return out
}

// groupKey is the values of the group-by keys joined by 0 bytes, as the
// store keys its groups.
func groupKey(by []string, ts tags.Set) string {
	var b strings.Builder
	for _, k := range by {
		v, _ := ts.Get(k)
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String()
}

// mergeValues folds the partial aggregate src into dst.
func mergeValues(agg tsdb.Aggregation, dst, src []float64) {
	for i := range min(len(dst), len(src)) {
		a, b := dst[i], src[i]
		switch {
		case math.IsNaN(b):
			continue
		case math.IsNaN(a):
			dst[i] = b
		case agg == tsdb.AggMin:
			dst[i] = min(a, b)
		case agg == tsdb.AggMax:
			dst[i] = max(a, b)
		default: // sum, count
			dst[i] = a + b
		}
	}
}

func compareTags(a, b tags.Set) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i].Key, b[i].Key); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].Value, b[i].Value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// Tags implements tsdb.Querier: the nodes count the series of the
// partitions asked of them; counts of one name add up. Every node answers
// its first Limit names after After, which hold the first Limit names of
// the union, so the merged page is exact.
func (q *Querier) Tags(ctx context.Context, req tsdb.TagsRequest) ([]tsdb.TagCount, error) {
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogMetrics, n)
	if err != nil {
		return nil, err
	}
	answers, missing, err := scatter(ctx, q, allPartitions(n), nil, func(ctx context.Context, nd Node, ps []int) ([]tsdb.TagCount, error) {
		r := req
		r.Partitions = &tsdb.Partitions{N: n, Want: ps}
		data, err := q.post(ctx, nd, PathTags, appendTagsRequest(nil, &r, offsetsFor(ends, ps)), nil)
		if err != nil {
			return nil, err
		}
		return decodeTagCounts(data)
	})
	if err != nil {
		return nil, err
	}
	if err := q.partial(ctx, "metrics", missing, n, len(answers)); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, a := range answers {
		for _, tc := range a {
			counts[tc.Name] += tc.Count
		}
	}
	out := make([]tsdb.TagCount, 0, len(counts))
	for name, c := range counts {
		out = append(out, tsdb.TagCount{Name: name, Count: c})
	}
	slices.SortFunc(out, func(a, b tsdb.TagCount) int { return strings.Compare(a.Name, b.Name) })
	if req.Limit > 0 && len(out) > req.Limit {
		out = out[:req.Limit]
	}
	return out, nil
}

// Series implements tsdb.SeriesLister: every node lists the series of the
// partitions asked of it, sorted, its first Limit; the partitions split
// the series, so the merged list's first Limit are exact, and there were
// more when a node said so or the union is longer. max-series-per-query
// (Options.Limits) holds on the total, as for Fetch.
func (q *Querier) Series(ctx context.Context, req tsdb.SeriesRequest) ([]tags.Set, bool, error) {
	if req.Query == nil {
		return nil, false, errors.New("fanout: series without a query")
	}
	n := q.opts.Owners.Partitions()
	ends, err := q.endOffsets(ctx, LogMetrics, n)
	if err != nil {
		return nil, false, err
	}
	type answer struct {
		sets []tags.Set
		more bool
	}
	// max-series-per-query on the total, as for a fetch (budget.go).
	b := newBudget(tsdb.Cost{Series: q.opts.Limits.Series})
	answers, missing, err := scatter(ctx, q, allPartitions(n), b, func(ctx context.Context, nd Node, ps []int) (answer, error) {
		r := req
		r.Partitions = &tsdb.Partitions{N: n, Want: ps}
		body := appendSeriesRequest(nil, &r, reqMeta{offs: offsetsFor(ends, ps), budget: b.remaining()})
		data, err := q.post(ctx, nd, PathSeries, body, b.heard(nd.ID))
		if err != nil {
			return answer{}, err
		}
		sets, more, err := decodeSeriesList(data)
		return answer{sets, more}, err
	})
	if err != nil {
		return nil, false, err
	}
	if err := q.partial(ctx, "metrics", missing, n, len(answers)); err != nil {
		return nil, false, err
	}
	var out []tags.Set
	more := false
	for _, a := range answers {
		out = append(out, a.sets...)
		more = more || a.more
	}
	slices.SortFunc(out, compareTags)
	if req.Limit > 0 && len(out) > req.Limit {
		out, more = out[:req.Limit], true
	}
	if out == nil {
		out = []tags.Set{}
	}
	return out, more, nil
}
