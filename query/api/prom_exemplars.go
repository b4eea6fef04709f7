package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// exemplars serves /api/v1/query_exemplars: the slowest span of each
// span-metrics series and storage step in [start, end] (what ingest keeps
// as exemplars), for every span-metrics series a selector of the query
// matches. Each exemplar carries trace_id and span_id; its value is the
// span's duration in seconds.
func (p *promAPI) exemplars(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		p.writeError(w, err)
		return
	}
	q, err := p.queryText(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	now := p.a.opts.Now().UnixMilli()
	end, err := timeParam(r, "end", now)
	if err != nil {
		p.writeError(w, err)
		return
	}
	// Without a start, the hour before end: Grafana always sends the
	// panel's range, a bare curl gets the recent exemplars.
	start, err := timeParam(r, "start", end-3600_000)
	if err != nil {
		p.writeError(w, err)
		return
	}
	if start > end {
		p.writeError(w, badPromParam("end", "end timestamp must not be before start time"))
		return
	}
	var queries []*tags.Query
	// The query may be PromQL or a stack-language program (the same
	// endpoint serves both, as /query does); either way only its
	// selectors matter here, not what it computes.
	if p.en.IsASL(q) {
		styles, err := query.Parse(q, query.ParseOptions{})
		if err != nil {
			p.writeError(w, &promql.Error{Type: promql.BadData, Msg: "invalid parameter \"query\": " + err.Error(), Err: err})
			return
		}
		for _, st := range styles {
			for _, d := range expr.DataExprs(st.Expr) {
				queries = append(queries, d.DataQuery())
			}
		}
	} else if queries, err = p.en.Selectors(q); err != nil {
		p.writeError(w, err)
		return
	}
	// Prometheus's shape: labels of the exemplar (the trace to jump
	// to), the value as a string, the time in float seconds.
	type exemplar struct {
		Labels    map[string]string `json:"labels"`
		Value     string            `json:"value"`
		Timestamp float64           `json:"timestamp"`
	}
	type group struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []exemplar        `json:"exemplars"`
	}
	out := []*group{}
	// No exemplar source (no span store wired in): an empty list, not
	// an error, as Prometheus answers a server without exemplars.
	if p.a.opts.Exemplars == nil {
		writePromData(w, out, nil)
		return
	}
	ctx, cancel, err := p.context(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	defer cancel()
	// [start, end] inclusive here, [start, end) below the API.
	exs, err := p.a.opts.Exemplars(ctx, start, end+1)
	if err != nil {
		p.writeError(w, err)
		return
	}
	byKey := map[string]*group{}
	for _, e := range exs {
		// One exemplar per metric: under the first of its series a
		// selector matches, not once per statistic.
		done := map[string]bool{}
		for _, c := range spanSeries(tags.FromMap(e.Tags)) {
			name := c.Name()
			if done[name] || !slices.ContainsFunc(queries, func(q *tags.Query) bool { return q.Matches(c) }) {
				continue
			}
			done[name] = true
			key := c.String()
			g := byKey[key]
			if g == nil {
				g = &group{SeriesLabels: map[string]string{}}
				for _, t := range c {
					g.SeriesLabels[promql.PromKey(t.Key)] = t.Value
				}
				byKey[key] = g
				out = append(out, g)
			}
			g.Exemplars = append(g.Exemplars, exemplar{
				Labels:    map[string]string{"trace_id": e.TraceID.String(), "span_id": e.SpanID.String()},
				Value:     string(appendPromFloat(nil, e.Duration.Seconds())),
				Timestamp: float64(e.T) / 1000,
			})
		}
	}
	// A stable order for the client and the tests: by the series' tags
	// in the store's form.
	slices.SortFunc(out, func(a, b *group) int {
		return strings.Compare(tags.FromMap(a.SeriesLabels).String(), tags.FromMap(b.SeriesLabels).String())
	})
	writePromData(w, out, nil)
}

// spanSeries are the span-metrics series an exemplar belongs to (see
// ingest's span metrics): the calls count, the errors count for a failed
// span, and the duration timer's statistics (percentile buckets first,
// standing as one, as latency panels read them).
func spanSeries(s tags.Set) []tags.Set {
	var out []tags.Set
	add := func(name string, stats ...string) {
		for _, stat := range stats {
			c := append(tags.Set{{Key: tags.NameKey, Value: name}, {Key: "statistic", Value: stat}}, s...)
			out = append(out, c.Normalize())
		}
	}
	// The names and statistics are those ingest writes for span metrics
	// (tracing's SpanMetrics names); a series the exemplar's span did
	// not count (errors for a span that succeeded) is left out.
	add("span.calls", "count")
	if v, _ := s.Get("status.code"); v == "ERROR" {
		add("span.errors", "count")
	}
	add("span.duration", "percentile", "count", "totalTime", "max")
	return out
}
