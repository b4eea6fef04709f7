package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tracing"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// ExemplarFunc returns the exemplars with T in [start, end) (Unix ms): the
// slowest span of each span-metrics series in each storage step, what links
// a point of a graph to the traces behind it. The span store's Exemplars
// method is one.
type ExemplarFunc func(ctx context.Context, start, end int64) ([]tracing.Exemplar, error)

// exemplarJSON is one exemplar as /api/v1/exemplars shows it: stamped
// with the graph point it belongs to (Unix ms), with the trace and span to
// open and what the span was.
type exemplarJSON struct {
	Timestamp int64   `json:"timestamp"`
	TraceID   string  `json:"traceID"`
	SpanID    string  `json:"spanID"`
	Duration  float64 `json:"duration"` // seconds
	Operation string  `json:"operation"`
	Service   string  `json:"service"`
}

// exemplarLine is one line of the graph with its exemplars, in the order
// of the graph's lines, so a client overlays them by index.
type exemplarLine struct {
	Legend    string            `json:"legend"`
	Tags      map[string]string `json:"tags"`
	Exemplars []exemplarJSON    `json:"exemplars"`
}

// exemplars serves GET /api/v1/exemplars: the graph's lines (same q, s,
// e, step and tz as /api/v1/graph), each with, per step of the graph, the
// slowest span among the span-metrics series behind the line. A series
// is behind a line when a data query of the line's expression matches it
// and it agrees with the line on every span-metrics tag the line has
// (service.name, operation, span.kind, status.code).
func (a *API) exemplars(w http.ResponseWriter, r *http.Request) {
	if a.opts.Exemplars == nil {
		// A 400 naming q rather than an empty answer: a client asking a
		// server without a span store should learn why nothing comes.
		a.fail(w, r, badParam("q", "this server keeps no exemplars"))
		return
	}
	// The graph's own parameters and evaluation, so the lines and their
	// steps are exactly those of the graph being annotated.
	g, err := a.parseGraph(r.URL.Query(), "json")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	res, err := a.engine.Eval(ctx, g.styles, g.rng)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	step := g.rng.Step
	// A graph point at p covers (p-step, p]; exemplars are stamped with
	// the end of their storage step.
	exs, err := a.opts.Exemplars(ctx, g.rng.Start-step+1, g.rng.End-step+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Which styles each exemplar series is behind: decided once per series.
	type series struct {
		tags   map[string]string
		styles []bool
	}
	// Many exemplars share a series (one per storage step); matching a
	// series against every expression's queries is the costly part.
	bySeries := map[string]*series{}
	of := make([]*series, len(exs))
	for i, e := range exs {
		key := tags.FromMap(e.Tags).String()
		sr := bySeries[key]
		if sr == nil {
			sr = &series{tags: e.Tags, styles: make([]bool, len(g.styles))}
			cands := candidates(tags.FromMap(e.Tags))
			for j, st := range g.styles {
				if sr.styles[j], err = matchesAny(ctx, expr.DataExprs(st.Expr), cands); err != nil {
					a.fail(w, r, err)
					return
				}
			}
			bySeries[key] = sr
		}
		of[i] = sr
	}
	out := struct {
		Start int64          `json:"start"`
		End   int64          `json:"end"`
		Step  int64          `json:"step"`
		Lines []exemplarLine `json:"lines"`
	}{Start: g.rng.Start, End: g.rng.End, Step: step, Lines: []exemplarLine{}}
	for _, line := range res.Lines {
		el := exemplarLine{Legend: line.Label, Tags: line.Tags.Map(), Exemplars: []exemplarJSON{}}
		// A graph step may cover several storage steps: keep the slowest
		// exemplar of each graph point, as the storage kept the slowest of
		// each storage step.
		slowest := map[int64]int{} // graph point → index in exs
		for i, e := range exs {
			if !of[i].styles[line.Expr] || !agrees(line.Tags, e.Tags) {
				continue
			}
			p := e.T + (step-e.T%step)%step // up to the graph's step
			if j, ok := slowest[p]; !ok || e.Duration > exs[j].Duration {
				slowest[p] = i
			}
		}
		points := make([]int64, 0, len(slowest))
		for p := range slowest {
			points = append(points, p)
		}
		slices.Sort(points)
		for _, p := range points {
			e := exs[slowest[p]]
			el.Exemplars = append(el.Exemplars, exemplarJSON{Timestamp: p, TraceID: e.TraceID.String(), SpanID: e.SpanID.String(),
				Duration: e.Duration.Seconds(), Operation: e.Tags[tracing.TagOperation], Service: e.Tags[tracing.TagService]})
		}
		out.Lines = append(out.Lines, el)
	}
	// The lines are written after the store answered, so an encoding
	// error can only be the client's connection: nothing to report.
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// agrees reports whether a line's tags agree with an exemplar series'
// wherever the line has one of its keys.
// A grouped line (:by operation) has the group's keys; a line summed
// over everything has none of them, and every exemplar agrees with it.
func agrees(lineTags tags.Set, ex map[string]string) bool {
	for k, v := range ex {
		if lv, ok := lineTags.Get(k); ok && lv != v {
			return false
		}
	}
	return true
}

// candidates are the span-metrics series an exemplar stands for: its
// tags with each metric name and statistic.
func candidates(s tags.Set) []tags.Set {
	var out []tags.Set
	// A query may select any of the span metrics and statistics (a
	// latency percentile, a call rate): the exemplar is behind each.
	// The percentile bucket stands for every bucket, since bucket tags
	// are not the user's to select by.
	for _, name := range tracing.SpanMetricNames() {
		for _, stat := range []string{"count", "totalTime", "max", "percentile"} {
			c := append(tags.Set{{Key: tags.NameKey, Value: name}, {Key: "statistic", Value: stat}}, s...)
			if stat == "percentile" {
				c = append(c, tags.Tag{Key: "percentile", Value: "T0000"})
			}
			out = append(out, c.Normalize())
		}
	}
	return out
}

// exemplarRegexBudget bounds the work of backtracking regexes (Java-only
// syntax) over the few exemplar series of one request, as the store's
// max-regex-time-per-query bounds it over the index.
const exemplarRegexBudget = time.Second

// matchesAny reports whether a data expression's query matches one of the
// candidate series. Backtracking regex leaves are first resolved against
// the candidates' values within a budget: a match that runs out of it is
// a LimitError (422), never a silent "no match" that would drop exemplars.
func matchesAny(ctx context.Context, ds []expr.DataExpr, cands []tags.Set) (bool, error) {
	values := func(key string) []string {
		var vs []string
		for _, c := range cands {
			if v, ok := c.Get(key); ok && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
		return vs
	}
	for _, d := range ds {
		q, err := d.DataQuery().ResolveBacktracking(ctx, values, exemplarRegexBudget)
		var be *tags.RegexBudgetError
		if errors.As(err, &be) {
			ms := int(exemplarRegexBudget.Milliseconds())
			return false, &tsdb.LimitError{Limit: "max-regex-time-per-query", Max: ms, Got: ms + 1, Detail: be.Error()}
		}
		if err != nil {
			return false, err
		}
		for _, c := range cands {
			if q.Matches(c) {
				return true, nil
			}
		}
	}
	return false, nil
}
