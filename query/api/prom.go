package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/lib"
	"github.com/sextant-dev/sextant/query/promql"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The Prometheus HTTP API (docs/prometheus.md): what Grafana's Prometheus
// data source calls, with Prometheus's envelopes, error types and status
// codes. /api/v1/rules and /api/v1/alerts belong to alerting/api.

// promCompatVersion is the Prometheus release whose HTTP API this answers
// like; buildinfo reports it so that clients enable the features of that
// API. Sextant's own version is in revision.
const promCompatVersion = "2.53.0"

// defaultSeriesWindow is how far back series, and labels with match[],
// look when the request gives no start: the store's memory window.
const defaultSeriesWindow = 24 * time.Hour

// maxSeriesWindow bounds the range series and labels with match[] read.
const maxSeriesWindow = 32 * 24 * time.Hour

// promAPI serves the Prometheus endpoints.
type promAPI struct {
	// a is the API it belongs to: options, registry, logger and the
	// partial tracker's writer are shared with the Atlas endpoints.
	a *API
	// en translates PromQL into the store's requests; it holds no state
	// between queries and is safe for concurrent use.
	en      *promql.Engine
	latency *lib.Timer
	bufs    bufPool // answer buffers (prom_encode.go)
}

// registerProm adds the Prometheus HTTP API to mux.
func (a *API) registerProm(mux partialMux) {
	en, err := promql.New(a.opts.Querier, promql.Options{
		StorageStep: a.opts.StorageStep, MaxLines: a.opts.MaxLines, MaxDatapoints: a.opts.MaxDatapoints, Now: a.opts.Now,
	})
	// promql.New fails only on a storage step that is not positive,
	// which Options.Validate refused before registerProm runs.
	if err != nil {
		panic("BUG: options validated by New: " + err.Error())
	}
	p := &promAPI{a: a, en: en, latency: a.reg.Timer("sextant.query.latency", "api", "prometheus")}
	// Grafana sends long queries as POST forms; both methods take the
	// same parameters (form reads the query string and the body).
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /api/v1/query", p.query)
		mux.HandleFunc(m+" /api/v1/query_range", p.queryRange)
		mux.HandleFunc(m+" /api/v1/query_exemplars", p.exemplars)
		mux.HandleFunc(m+" /api/v1/labels", p.labels)
		mux.HandleFunc(m+" /api/v1/series", p.series)
	}
	mux.HandleFunc("GET /api/v1/label/{name}/values", p.labelValues)
	mux.HandleFunc("GET /api/v1/metadata", p.metadata)
	mux.HandleFunc("GET /api/v1/status/buildinfo", p.buildinfo)
}

// promStatus maps an error type to its HTTP status, as Prometheus does.
func promStatus(t promql.ErrorType) int {
	switch t {
	case promql.BadData:
		return http.StatusBadRequest
	case promql.Execution:
		return http.StatusUnprocessableEntity
	case promql.Timeout, promql.Unavailable:
		return http.StatusServiceUnavailable
	// 499 is the nginx code Prometheus uses for a client that went
	// away: no client reads it, but the error counter tells it apart
	// from a timeout.
	case promql.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

// writeError answers err in Prometheus's error envelope.
func (p *promAPI) writeError(w http.ResponseWriter, err error) {
	e := promql.Classify(err)
	code := promStatus(e.Type)
	// Only faults are logged: a timeout or an unavailable store is
	// counted, and a user's mistake is in the answer.
	if code >= 500 && e.Type == promql.Internal {
		p.a.opts.Logger.Error("prometheus query failed", "err", err)
	}
	p.a.reg.Counter("sextant.query.errors", "status", strconv.Itoa(code)).Increment()
	writeJSON(w, code, struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", string(e.Type), e.Msg})
}

// writeData answers data in Prometheus's success envelope.
func writePromData(w http.ResponseWriter, data any, warnings []string) {
	if isPartial(w) {
		warnings = append(warnings, partialWarning)
	}
	writeJSON(w, http.StatusOK, struct {
		Status   string   `json:"status"`
		Data     any      `json:"data"`
		Warnings []string `json:"warnings,omitempty"`
	}{"success", data, warnings})
}

// badPromParam is the Prometheus twin of badParam: a bad_data error (400)
// naming the parameter, with Prometheus's wording.
func badPromParam(name, format string, args ...any) error {
	return &promql.Error{Type: promql.BadData, Msg: fmt.Sprintf("invalid parameter %q: %s", name, fmt.Sprintf(format, args...))}
}

// form parses the query string and a POST form body.
func form(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return &promql.Error{Type: promql.BadData, Msg: "invalid form body: " + err.Error()}
	}
	return nil
}

// timeParam parses a time parameter, def when absent.
func timeParam(r *http.Request, name string, def int64) (int64, error) {
	s := r.Form.Get(name)
	if s == "" {
		return def, nil
	}
	t, err := ParsePromTime(s)
	if err != nil {
		return 0, badPromParam(name, "%v", err)
	}
	return t, nil
}

// queryText returns the query parameter, bounded in length.
func (p *promAPI) queryText(r *http.Request) (string, error) {
	q := r.Form.Get("query")
	switch {
	case strings.TrimSpace(q) == "":
		return "", badPromParam("query", "missing; give a PromQL expression or a stack-language program")
	case len(q) > p.a.opts.MaxQueryLength:
		return "", badPromParam("query", "%d bytes long, limit is %d", len(q), p.a.opts.MaxQueryLength)
	}
	return q, nil
}

// context bounds a request by the server's query timeout and the
// request's timeout parameter, whichever is shorter.
func (p *promAPI) context(r *http.Request) (context.Context, context.CancelFunc, error) {
	// The request may shorten the server's timeout, never lengthen it.
	d := p.a.opts.QueryTimeout
	if s := r.Form.Get("timeout"); s != "" {
		t, err := timeoutParam(s)
		if err != nil {
			return nil, nil, badPromParam("timeout", "%v", err)
		}
		d = min(d, t)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

// timeoutParam parses timeout: seconds (to the nanosecond) or a
// Prometheus duration; it must be positive.
func timeoutParam(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if !(f > 0) || f > float64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("%q is not a positive duration", s)
		}
		// A positive timeout below a nanosecond still times out at once
		// rather than meaning no timeout.
		return max(time.Duration(f*float64(time.Second)), 1), nil
	}
	ms, err := ParsePromDuration(s)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// query serves /api/v1/query: an instant query at time (default now).
func (p *promAPI) query(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { p.latency.Record(time.Since(start)) }()
	res, err := p.runQuery(r, true)
	if err != nil {
		p.writeError(w, err)
		return
	}
	p.writeResult(w, res)
}

// queryRange serves /api/v1/query_range.
func (p *promAPI) queryRange(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { p.latency.Record(time.Since(start)) }()
	res, err := p.runQuery(r, false)
	if err != nil {
		p.writeError(w, err)
		return
	}
	p.writeResult(w, res)
}

// runQuery parses the parameters of an instant (instant) or range query
// and evaluates it, bounded by the request's context. Every parameter
// error is bad_data naming the parameter; the engine classifies its own.
func (p *promAPI) runQuery(r *http.Request, instant bool) (*promql.Result, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	q, err := p.queryText(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := p.context(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if instant {
		t, err := timeParam(r, "time", p.a.opts.Now().UnixMilli())
		if err != nil {
			return nil, err
		}
		return late(ctx)(p.en.Instant(ctx, q, t))
	}
	// A range query must name its range and step: unlike the graph API,
	// Prometheus has no defaults here, and Grafana always sends them.
	var start, end, step int64
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"start", &start}, {"end", &end}} {
		s := r.Form.Get(f.name)
		if s == "" {
			return nil, badPromParam(f.name, "missing")
		}
		if *f.dst, err = ParsePromTime(s); err != nil {
			return nil, badPromParam(f.name, "%v", err)
		}
	}
	s := r.Form.Get("step")
	if s == "" {
		return nil, badPromParam("step", "missing")
	}
	if step, err = ParsePromDuration(s); err != nil {
		return nil, badPromParam("step", "%v", err)
	}
	return late(ctx)(p.en.Range(ctx, q, start, end, step))
}

// late turns an answer ready after the request's deadline into the
// deadline's error: the timeout holds even when the evaluation did not
// look at the clock in time.
func late(ctx context.Context) func(*promql.Result, error) (*promql.Result, error) {
	return func(res *promql.Result, err error) (*promql.Result, error) {
		if err == nil {
			err = ctx.Err()
		}
		// The context's timer may not have fired yet on a busy machine.
		if d, ok := ctx.Deadline(); err == nil && ok && !time.Now().Before(d) {
			err = context.DeadlineExceeded
		}
		if err != nil {
			return nil, err
		}
		return res, nil
	}
}

// seriesRange resolves start and end of the series and label endpoints:
// end defaults to now and start to end minus a day; at most 32 days.
func (p *promAPI) seriesRange(r *http.Request) (start, end int64, err error) {
	now := p.a.opts.Now().UnixMilli()
	if end, err = timeParam(r, "end", now); err != nil {
		return 0, 0, err
	}
	// A huge end is clamped to 32 days ahead: the window arithmetic
	// below (end+1, end minus the window) then stays far from overflow.
	end = min(end, now+int64(maxSeriesWindow/time.Millisecond))
	if start, err = timeParam(r, "start", end-defaultSeriesWindow.Milliseconds()); err != nil {
		return 0, 0, err
	}
	if start > end {
		return 0, 0, badPromParam("end", "end timestamp must not be before start time")
	}
	start = max(start, end-maxSeriesWindow.Milliseconds())
	return start, end, nil
}

// limitParam parses limit: 0 (or absent) for no limit.
func limitParam(r *http.Request) (int, error) {
	s := r.Form.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badPromParam("limit", "%q is not a non-negative integer", s)
	}
	return n, nil
}

// listSeries returns the tags of the series matching the match[]
// selectors with data in [start, end], at most limit of them (0: all), and
// whether there were more. A store that can list series does so from its
// index and block lists (tsdb.SeriesLister); another is asked for the data.
func (p *promAPI) listSeries(ctx context.Context, sels []string, start, end int64, limit int) ([]tags.Set, bool, error) {
	q, err := p.en.SelectorsQuery(sels)
	if err != nil {
		return nil, false, err
	}
	// End is exclusive in the store's requests, inclusive in the
	// API's: hence end+1.
	if sl, ok := p.a.opts.Querier.(tsdb.SeriesLister); ok {
		return sl.Series(ctx, tsdb.SeriesRequest{Query: q, Start: start, End: end + 1, Limit: limit})
	}
	got, err := p.fetchSeries(ctx, q, start, end)
	if err != nil {
		return nil, false, err
	}
	if limit > 0 && len(got) > limit {
		return got[:limit], true, nil
	}
	return got, false, nil
}

// fetchSeries returns the tags of the series matching q with data in
// [start, end], read from the store's data.
func (p *promAPI) fetchSeries(ctx context.Context, q *tags.Query, start, end int64) ([]tags.Set, error) {
	// A few wide points per series, not one per storage step: the answer
	// only needs to know which series have data. The range widens to whole
	// points, by at most two in 32 (Prometheus, too, answers by block).
	s := p.a.opts.StorageStep
	fs, fe := floorTo(start, s), floorTo(end, s)+s
	step := ((fe-fs)/s + 31) / 32 * s
	fs, fe = floorTo(fs, step), floorTo(fe+step-1, step)+step
	set, err := p.a.opts.Querier.Fetch(ctx, tsdb.FetchRequest{Query: q, Start: fs, End: fe, Step: step, Aggregation: tsdb.AggNone})
	if err != nil {
		return nil, err
	}
	out := make([]tags.Set, len(set.Series))
	for i, sr := range set.Series {
		out[i] = sr.Tags
	}
	return out, nil
}

// series serves /api/v1/series: the tags of the series matching match[]
// with data in [start, end].
func (p *promAPI) series(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		p.writeError(w, err)
		return
	}
	// Prometheus refuses /series without a selector: listing every
	// series of the store is a request nobody means to make.
	sels := r.Form["match[]"]
	if len(sels) == 0 {
		p.writeError(w, &promql.Error{Type: promql.BadData, Msg: "no match[] parameter provided"})
		return
	}
	start, end, err := p.seriesRange(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	ctx, cancel, err := p.context(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	defer cancel()
	got, more, err := p.listSeries(ctx, sels, start, end, limit)
	if err != nil {
		p.writeError(w, err)
		return
	}
	p.writeSeries(w, got, more)
}

// appendPromTags appends ts as a JSON object with Prometheus's key order:
// the store's order (sorted by key) with the name tag, renamed __name__,
// moved to where __name__ sorts.
func appendPromTags(b []byte, ts tags.Set) []byte {
	name, hasName := "", false
	// One pass in the store's key order; the name is written where
	// __name__ sorts among the other keys (before lower-case keys,
	// after upper-case ones and digits), as Prometheus orders labels.
	for _, t := range ts {
		if t.Key == tags.NameKey {
			name, hasName = t.Value, true
		}
	}
	b = append(b, '{')
	n := 0
	emit := func(k, v string) {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	for _, t := range ts {
		if hasName && t.Key > promql.NameLabel {
			emit(promql.NameLabel, name)
			hasName = false
		}
		if t.Key != tags.NameKey {
			emit(t.Key, t.Value)
		}
	}
	if hasName {
		emit(promql.NameLabel, name)
	}
	return append(b, '}')
}

// writeSeries answers the series endpoint: each series' tags as an object
// with the keys in Prometheus's order (sorted, name as __name__), written
// by hand, as Metrics Drilldown asks for tens of thousands of series.
func (p *promAPI) writeSeries(w http.ResponseWriter, got []tags.Set, more bool) {
	// Size the buffer once: the keys and values plus their quotes and
	// separators, so that a series list of Metrics Drilldown (tens of
	// thousands of series) is one allocation from the pool.
	size := 64
	for _, ts := range got {
		size += 4
		for _, t := range ts {
			size += len(t.Key) + len(t.Value) + 8
		}
	}
	buf := p.bufs.get(size)
	defer p.bufs.put(buf)
	b := append(*buf, `{"status":"success","data":[`...)
	for i, ts := range got {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPromTags(b, ts)
	}
	b = append(b, ']')
	if more {
		b = append(b, `,"warnings":["results truncated due to limit"]`...)
	}
	b = append(b, "}\n"...)
	*buf = b
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// labels serves /api/v1/labels: tag keys (name as __name__) of the series
// matching match[] (every series without it) with data in [start, end];
// without match[], start or end, of every series the index holds.
func (p *promAPI) labels(w http.ResponseWriter, r *http.Request) {
	p.listTags(w, r, "")
}

// labelValues serves /api/v1/label/{name}/values, as labels does.
func (p *promAPI) labelValues(w http.ResponseWriter, r *http.Request) {
	// Label names that are not Prometheus identifiers (a dot in an
	// Atlas key) come U__-escaped in the path, as Grafana sends them.
	name := unescapeLabelName(r.PathValue("name"))
	if name == "" {
		p.writeError(w, &promql.Error{Type: promql.BadData, Msg: "invalid label name: empty"})
		return
	}
	p.listTags(w, r, promql.StoreKey(name))
}

// listTags answers keys (key == "") or the values of key, from the
// store's index restricted to the series with data in the window (by
// block, tsdb.TagsRequest): no series' data is read, so Grafana's Metrics
// Drilldown (limit=40000, {__name__=~".+"}) costs a pass over the index.
func (p *promAPI) listTags(w http.ResponseWriter, r *http.Request, key string) {
	if err := form(r); err != nil {
		p.writeError(w, err)
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	start, end, err := p.seriesRange(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	ctx, cancel, err := p.context(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	defer cancel()
	req := tsdb.TagsRequest{Key: key, Start: start, End: end + 1}
	sels := r.Form["match[]"]
	if len(sels) > 0 {
		if req.Query, err = p.en.SelectorsQuery(sels); err != nil {
			p.writeError(w, err)
			return
		}
	} else if r.Form.Get("start") == "" && r.Form.Get("end") == "" {
		req.Start, req.End = 0, 0 // no window: every series in the index
	}
	if key != "" && limit > 0 {
		req.Limit = limit + 1 // values keep the store's order: one more tells of the rest
	}
	got, err := p.a.opts.Querier.Tags(ctx, req)
	if err != nil {
		p.writeError(w, err)
		return
	}
	names := make([]string, len(got))
	for i, t := range got {
		names[i] = t.Name
		if key == "" {
			names[i] = promql.PromKey(t.Name)
		}
	}
	slices.Sort(names)
	var warnings []string
	if limit > 0 && len(names) > limit {
		names = names[:limit]
		warnings = append(warnings, "results truncated due to limit")
	}
	writePromData(w, names, warnings)
}

// buildinfo serves /api/v1/status/buildinfo.
func (p *promAPI) buildinfo(w http.ResponseWriter, _ *http.Request) {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		rev = "sextant " + bi.Main.Version
	}
	writePromData(w, map[string]any{
		"version": promCompatVersion, "revision": rev, "branch": "", "buildUser": "", "buildDate": "",
		"goVersion": runtime.Version(), "features": map[string]string{},
	}, nil)
}

// metadata serves /api/v1/metadata: each name's type from what ingest
// stored: histogram for names with percentile or le buckets, summary for
// names with quantile series, counter for counters, rates and sums, gauge
// otherwise.
func (p *promAPI) metadata(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		p.writeError(w, err)
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	ctx, cancel, err := p.context(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	defer cancel()
	var base *tags.Query
	if m := r.Form.Get("metric"); m != "" {
		base = tags.Eq(tags.NameKey, m)
	}
	and := func(q *tags.Query) *tags.Query {
		if base == nil {
			return q
		}
		return tags.And(base, q)
	}
	names := func(q *tags.Query) ([]string, error) {
		got, err := p.a.opts.Querier.Tags(ctx, tsdb.TagsRequest{Key: tags.NameKey, Query: q})
		out := make([]string, len(got))
		for i, t := range got {
			out[i] = t.Name
		}
		return out, err
	}
	types := map[string]string{}
	// Later passes win: gauge, then counter, summary, histogram.
	passes := []struct {
		typ string
		q   *tags.Query
	}{
		{"gauge", and(tags.True())},
		{"counter", and(tags.Not(tags.Eq(tsdb.DSTypeKey, "gauge")))},
		{"summary", and(tags.Has("quantile"))},
		{"histogram", and(tags.Or(tags.Has("le"), tags.Has(percentileKeyTag)))},
	}
	for _, ps := range passes {
		if ps.q == nil || ps.q.Op() == tags.OpTrue {
			ps.q = nil
		}
		got, err := names(ps.q)
		if err != nil {
			p.writeError(w, err)
			return
		}
		for _, n := range got {
			types[n] = ps.typ
		}
	}
	keys := make([]string, 0, len(types))
	for n := range types {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	type meta struct {
		Type string `json:"type"`
		Help string `json:"help"`
		Unit string `json:"unit"`
	}
	out := make(map[string][]meta, len(keys))
	for _, n := range keys {
		out[n] = []meta{{Type: types[n]}}
	}
	writePromData(w, out, nil)
}

// percentileKeyTag is the tag of Sextant's percentile buckets.
const percentileKeyTag = "percentile"
