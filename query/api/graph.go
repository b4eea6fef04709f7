package api

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/chart"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
)

// Formats of the graph API.
var formats = []string{"png", "svg", "json", "std.json", "stats.json", "csv", "txt", "v2.json"}

// graphRequest is a parsed graph request.
type graphRequest struct {
	// q is the program as given; format one of formats.
	q      string
	format string
	// rng is the evaluated range, step-aligned (asl.md §3.2): its first
	// point is the end of the first step after the requested start.
	rng eval.Range
	// loc is the primary tz, for the time axis and the CSV timestamps.
	loc *time.Location
	// styles are the presentations, cq already ANDed in.
	styles []*expr.Style
	chart  chart.Chart
	// explain adds the evaluation's statistics to the JSON formats.
	explain    bool
	start, end int64 // requested, before alignment
}

// graph serves GET /api/v1/graph (asl.md §3.2).
func (a *API) graph(w http.ResponseWriter, r *http.Request) {
	// The latency timer reads the wall clock, not opts.Now: it measures this
	// process, while opts.Now is the time queries are relative to (which a
	// test pins).
	start := time.Now()
	defer func() { a.m.latency.Record(time.Since(start)) }()
	v := r.URL.Query()
	format := v.Get("format")
	if format == "" {
		format = "png"
	}
	g, err := a.parseGraph(v, format)
	if err == nil {
		// QueryTimeout bounds the evaluation, not the encoding: a chart of
		// a finished result is cheap, and the client's own disconnect
		// cancels r.Context() either way.
		var res *query.Result
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
		defer cancel()
		if res, err = a.engine.Eval(ctx, g.styles, g.rng); err == nil {
			err = a.writeGraph(w, g, res, time.Since(start))
		}
	}
	if err != nil {
		// Atlas answers a PNG request's error with a PNG that shows the
		// message, so an <img> tag in a dashboard says what went wrong
		// instead of showing a broken image; the status is still the
		// error's (fail's classification).
		if format == "png" && slices.Contains(formats, format) {
			a.writeErrorImage(w, v, err)
			return
		}
		a.fail(w, r, err)
	}
}

// parseGraph checks and parses every parameter of a graph request
// (asl.md §3.2) into a graphRequest. Each error is a *paramError naming the
// parameter, or the parser's *stack.Error for q: all of them the user's.
// The order of the checks is the order a user fixes them in: format and q
// first, then the size, the time range and step, then the program.
func (a *API) parseGraph(v url.Values, format string) (*graphRequest, error) {
	if !slices.Contains(formats, format) {
		return nil, badParam("format", "unknown format %q; use one of %s", format, strings.Join(formats, ", "))
	}
	q := v.Get("q")
	if q == "" {
		return nil, badParam("q", "missing; give an expression such as name,sps,:eq,:sum")
	}
	if len(q) > a.opts.MaxQueryLength {
		return nil, badParam("q", "%d bytes long, limit is %d", len(q), a.opts.MaxQueryLength)
	}
	g := &graphRequest{q: q, format: format, explain: boolParam(v, "explain") || strings.Contains(v.Get("hints"), "explain")}
	width, err := intParam(v, "w", 700, 10, 4000)
	if err != nil {
		return nil, err
	}
	height, err := intParam(v, "h", 300, 10, 4000)
	if err != nil {
		return nil, err
	}
	// Relative times (e-3h, now-1d) are resolved against one reading of
	// the clock, so s and e cannot straddle a tick.
	now := a.opts.Now().UnixMilli()
	s, e, loc, err := timeRange(v, now, a.opts.DefaultTZ)
	if err != nil {
		return nil, err
	}
	g.start, g.end, g.loc = s, e, loc
	var reqStep int64
	if st := v.Get("step"); st != "" {
		if reqStep, err = expr.ParseDuration(st); err != nil {
			return nil, badParam("step", "%v", err)
		}
		if reqStep <= 0 {
			return nil, badParam("step", "%q is not a positive duration such as 1m or PT5M", st)
		}
	}
	// The step honours the request but widens until there is at most one
	// point per pixel of width, then rounds up to one of Atlas's steps
	// that is a multiple of the storage step (step.go).
	step, err := chooseStep(a.opts.StorageStep, reqStep, s, e, width)
	if err != nil {
		return nil, badParam("step", "%v", err)
	}
	// Align to the step; the points end each step interval (asl.md §3.2).
	fs, fe := floorTo(s, step), floorTo(e, step)
	if fs == fe {
		fs -= step
	}
	g.rng = eval.Range{Start: fs + step, End: fe + step, Step: step}
	if n := g.rng.N(); n > MaxDatapoints {
		return nil, badParam("step", "%d datapoints per line, limit is %d: use a larger step", n, MaxDatapoints)
	}
	// features=unstable opts in to the words marked unstable (asl.md
	// §3.2); anything else is a typo worth a 400, not a silent stable.
	features := v.Get("features")
	if features != "" && features != "stable" && features != "unstable" {
		return nil, badParam("features", "%q: use stable or unstable", features)
	}
	tzName := loc.String()
	g.styles, err = query.Parse(q, query.ParseOptions{TZ: tzName, Unstable: features == "unstable"})
	if err != nil {
		return nil, err
	}
	// cq, the common query, narrows every data expression of every
	// presentation (a dashboard's filter bar): ANDed into the
	// queries, not applied to the results, so the store reads less.
	if cq := v.Get("cq"); cq != "" {
		cqq, err := query.ParseQuery(cq)
		if err != nil {
			return nil, badParam("cq", "%v", err)
		}
		for i, st := range g.styles {
			x, err := expr.AndQuery(st.Expr, cqq)
			if err != nil {
				return nil, badParam("cq", "%v", err)
			}
			g.styles[i] = &expr.Style{Expr: x, Settings: st.Settings}
		}
	}
	ax, err := axes(v)
	if err != nil {
		return nil, err
	}
	g.chart = chart.Chart{
		Width: width, Height: height, Layout: v.Get("layout"), Title: v.Get("title"), Loc: loc,
		Start: g.rng.Start, End: g.rng.End, Step: step, Axes: ax,
		NoLegend: boolParam(v, "no_legend"), NoLegendStats: boolParam(v, "no_legend_stats"),
		OnlyGraph: boolParam(v, "only_graph"), Theme: v.Get("theme"),
	}
	if err := g.chart.Validate(); err != nil {
		return nil, badParam("layout", "%v", err)
	}
	return g, nil
}

// floorTo rounds t (Unix ms, possibly negative) down to a multiple of step.
// Go's % truncates toward zero, so a negative remainder is moved up first.
func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// writeGraph encodes res in g's format (asl.md §3.3). Everything but the
// JSON formats is built in a buffer first, so that an encoding error can
// still become an error status; a JSON answer is one append-built slice.
// took is the time spent so far, for explain.
func (a *API) writeGraph(w http.ResponseWriter, g *graphRequest, res *query.Result, took time.Duration) error {
	var buf bytes.Buffer
	ctype := "application/json"
	switch g.format {
	case "json", "std.json":
		w.Header().Set("Content-Type", ctype)
		var buf []byte
		if isPartial(w) {
			// The flag leads the document, where a client looks first.
			buf = append(buf, `{"partial":true,`...)
		}
		out := appendJSON(buf, g, res, took)
		if len(buf) > 0 {
			out = append(out[:len(buf)], out[len(buf)+1:]...) // appendJSON's own "{"
		}
		_, err := w.Write(out)
		return err
	case "v2.json":
		buf.Write(appendV2JSON(nil, g, res))
	case "stats.json":
		appendStatsJSON(&buf, g, res)
	case "csv":
		ctype = "text/csv; charset=utf-8"
		writeCSV(&buf, g, res, ',')
	case "txt":
		ctype = "text/plain; charset=utf-8"
		writeCSV(&buf, g, res, '\t')
	case "png", "svg":
		c := g.chart
		c.Lines = chartLines(res.Lines)
		s, err := chart.Render(&c)
		if err != nil {
			return badParam("format", "%v", err)
		}
		if g.format == "png" {
			ctype = "image/png"
			err = chart.WritePNG(&buf, s)
		} else {
			ctype = "image/svg+xml"
			err = chart.WriteSVG(&buf, s)
		}
		if err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", ctype)
	_, err := w.Write(buf.Bytes())
	return err
}

// chartLines turns evaluated lines into chart lines. Lines of a
// presentation with :palette take its colors in turn; the others take the
// axis palette's in the chart.
func chartLines(lines []query.Line) []chart.Line {
	out := make([]chart.Line, len(lines))
	next := map[int]int{}
	for i, l := range lines {
		cl := chart.Line{Label: l.Label, Values: l.Values, Style: l.LineStyle, Width: l.Width, Axis: l.Axis}
		switch {
		case l.Color != "":
			cl.Color, _ = chart.ParseHexColor(l.Color)
		case l.Palette != "":
			// A palette's colors were checked at parse time, its name
			// was not: an unknown name leaves the line the axis
			// palette's color rather than failing the whole graph.
			if cols, err := chart.PaletteColors(l.Palette); err == nil {
				cl.Color = cols[next[l.Expr]%len(cols)]
				next[l.Expr]++
			}
		}
		// :alpha is two hex digits (00 transparent, ff opaque), as in
		// Atlas's color strings; :alpha's parser checked them.
		if l.Alpha != "" {
			if a, err := strconv.ParseUint(l.Alpha, 16, 8); err == nil {
				cl.Alpha = uint8(a)
			}
		}
		out[i] = cl
	}
	return out
}
