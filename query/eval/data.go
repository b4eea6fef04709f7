package eval

import (
	"slices"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// fetch reads a data expression from the store, once per evaluation.
//
// Results are memoized by the expression's canonical string: a program
// such as an error ratio names the same data twice (numerator and
// denominator share a query), and styles repeat whole expressions, so
// without the cache one graph could read the same series several times.
// The limits are checked here, after the store answered but before the
// values are used, because only the store knows how many series a query
// matches; x.held counts every value the evaluation keeps alive so that a
// program cannot exceed MaxDatapoints by splitting its reads.
func (x *run) fetch(d expr.DataExpr, req tsdb.FetchRequest) ([]Series, error) {
	key := d.String()
	if s, ok := x.data[key]; ok {
		return s, nil
	}
	// An offset shifts the window the store reads, not the timestamps of
	// the result: the lines come back aligned to the graph's own steps.
	off := alignOffset(d.DataOffset(), x.r.Step)
	req.Query = d.DataQuery()
	req.Start, req.End, req.Step = x.r.Start-off, x.r.End-off, x.r.Step
	start := time.Now()
	set, err := x.ev.q.Fetch(x.ctx, req)
	x.stats.FetchTime += time.Since(start)
	if err != nil {
		return nil, err
	}
	x.stats.Fetches++
	x.stats.SeriesScanned += set.Stats.SeriesScanned
	x.stats.DatapointsScanned += set.Stats.DatapointsScanned
	x.stats.InputLines += len(set.Series)
	if err := x.checkLines(len(set.Series)); err != nil {
		return nil, err
	}
	x.held += len(set.Series) * x.n
	if x.held > x.ev.opts.MaxDatapoints {
		return nil, &tsdb.LimitError{Limit: "max-datapoints-per-query", Max: x.ev.opts.MaxDatapoints, Got: x.held}
	}
	out := make([]Series, len(set.Series))
	for i, s := range set.Series {
		out[i] = Series{Tags: s.Tags, Values: s.Values, Offset: d.DataOffset()}
	}
	x.data[key] = out
	return out, nil
}

// alignOffset rounds an offset up to a whole number of steps: a shifted
// timestamp between two steps reads the earlier one, as Atlas does.
func alignOffset(off, step int64) int64 {
	if r := off % step; r != 0 {
		off += step - r
	}
	return off
}

// consolidation maps the language's consolidation function to the store's.
// CFDefault depends on the aggregation (Atlas: avg for sum and count, min
// for min, max for max), so that zooming out of a :max graph keeps its
// peaks instead of averaging them away.
func consolidation(cf expr.CF, fn expr.AggFn) tsdb.Consolidation {
	switch cf.Effective(fn) {
	case expr.CFSum:
		return tsdb.CFSum
	case expr.CFMin:
		return tsdb.CFMin
	case expr.CFMax:
		return tsdb.CFMax
	}
	return tsdb.CFAvg
}

// aggregation maps an aggregate word to the aggregation the store performs
// while it reads, so that a :sum over many series never materializes one
// array per series above the store.
func aggregation(fn expr.AggFn) tsdb.Aggregation {
	switch fn {
	case expr.Count:
		return tsdb.AggCount
	case expr.Min:
		return tsdb.AggMin
	case expr.Max:
		return tsdb.AggMax
	}
	return tsdb.AggSum
}

// aggregate is q,:sum and friends: one line tagged with the query's exact
// tags (name=unknown if it has none).
func (x *run) aggregate(a *expr.Aggregate) ([]Series, error) {
	got, err := x.fetch(a, tsdb.FetchRequest{CF: consolidation(a.CF, a.Fn), Aggregation: aggregation(a.Fn)})
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		// An empty answer is still a line (all NaN, Atlas's NO_DATA) so
		// that legends, alerts on absence and binary operations have
		// something to hold on to.
		return x.noData(a.Query)
	}
	// Only the query's exact-match tags describe every series that went
	// into the sum; any other tag would claim more than the line knows.
	ts := a.Query.ExactKeys()
	if len(ts) == 0 {
		ts = tags.New(tags.NameKey, "unknown")
	}
	label := a.Fn.String() + "(" + QueryLabel(a.Query) + ")" + offsetSuffix(a.Offset)
	return []Series{{Tags: ts, Label: label, Values: got[0].Values, Offset: a.Offset}}, nil
}

// groupBy is af,(,keys,),:by: one line per group, tagged with the query's
// exact tags and the group keys, labelled (k1=v1 k2=v2), in label order.
func (x *run) groupBy(g *expr.GroupBy) ([]Series, error) {
	a := g.Agg
	got, err := x.fetch(g, tsdb.FetchRequest{CF: consolidation(a.CF, a.Fn), Aggregation: aggregation(a.Fn), GroupBy: g.Keys})
	if err != nil {
		return nil, err
	}
	exact := a.Query.ExactKeys()
	out := make([]Series, 0, len(got))
	for _, s := range got {
		label, ok := expr.GroupLabel(g.Keys, s.Tags)
		if !ok {
			// A series without one of the keys belongs to no group:
			// Atlas drops it rather than inventing an empty value.
			continue
		}
		out = append(out, Series{Tags: merge(exact, s.Tags), Label: label + offsetSuffix(a.Offset), Values: s.Values, Offset: a.Offset})
	}
	slices.SortStableFunc(out, func(a, b Series) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

// all is q,:all: every matching series with its own tags.
func (x *run) all(a *expr.All) ([]Series, error) {
	got, err := x.fetch(a, tsdb.FetchRequest{CF: tsdb.CFAvg, Aggregation: tsdb.AggNone})
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(got))
	for i, s := range got {
		out[i] = Series{Tags: s.Tags, Label: TagsLabel(s.Tags) + offsetSuffix(a.Offset), Values: s.Values, Offset: a.Offset}
	}
	return out, nil
}

// merge returns a ∪ b with b's values winning.
func merge(a, b tags.Set) tags.Set {
	out := make(tags.Set, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	return out.Normalize()
}

// offsetSuffix marks a shifted line's label, so that this week and last
// week's lines of one graph can be told apart in the legend.
func offsetSuffix(off int64) string {
	if off == 0 {
		return ""
	}
	return " (offset=" + expr.FormatDuration(off) + ")"
}

// TagsLabel is the default label of a raw line: k1=v1, k2=v2 in key order.
func TagsLabel(ts tags.Set) string {
	if len(ts) == 0 {
		return "NO TAGS"
	}
	var b strings.Builder
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Key)
		b.WriteByte('=')
		b.WriteString(t.Value)
	}
	return b.String()
}

// QueryLabel renders a query for labels: name=sps, (a) and (b), k~/^re/.
func QueryLabel(q *tags.Query) string {
	switch q.Op() {
	case tags.OpTrue:
		return "true"
	case tags.OpFalse:
		return "false"
	case tags.OpEq:
		return q.Key() + "=" + q.Value()
	case tags.OpHas:
		return "has(" + q.Key() + ")"
	case tags.OpLt:
		return q.Key() + "<" + q.Value()
	case tags.OpLe:
		return q.Key() + "<=" + q.Value()
	case tags.OpGt:
		return q.Key() + ">" + q.Value()
	case tags.OpGe:
		return q.Key() + ">=" + q.Value()
	case tags.OpRe:
		return q.Key() + "~/^" + q.Value() + "/"
	case tags.OpReIC:
		return q.Key() + "~/^" + q.Value() + "/i"
	case tags.OpIn:
		return q.Key() + " in (" + strings.Join(q.Values(), ",") + ")"
	case tags.OpAnd:
		return "(" + QueryLabel(q.Subs()[0]) + ") and (" + QueryLabel(q.Subs()[1]) + ")"
	case tags.OpOr:
		return "(" + QueryLabel(q.Subs()[0]) + ") or (" + QueryLabel(q.Subs()[1]) + ")"
	case tags.OpNot:
		return "not(" + QueryLabel(q.Subs()[0]) + ")"
	}
	return q.String()
}
