package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/tsdb"
)

// MaxTagsLimit is the most keys or values one tags request returns.
const MaxTagsLimit = 1000

// tags serves GET /api/v1/tags (keys) and /api/v1/tags/{key} (values of
// a key), asl.md §3.4: sorted, paged with limit and offset (the last item
// of the previous page), restricted by an optional query q.
func (a *API) tags(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	key := r.PathValue("key")
	req := tsdb.TagsRequest{Key: key, After: v.Get("offset")}
	// A limit above the maximum is clamped, not refused: a client
	// asking for "all" with a large number gets a full page. A limit
	// below 1 is a mistake.
	limit, err := intParam(v, "limit", MaxTagsLimit, 1, 1<<30)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req.Limit = min(limit, MaxTagsLimit)
	// q is a query expression only (name,sps,:eq), not a program: the
	// keys of the series it matches.
	if q := v.Get("q"); q != "" {
		if len(q) > a.opts.MaxQueryLength {
			a.fail(w, r, badParam("q", "%d bytes long, limit is %d", len(q), a.opts.MaxQueryLength))
			return
		}
		if req.Query, err = query.ParseQuery(q); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	format := v.Get("format")
	if format != "" && format != "json" && format != "txt" {
		a.fail(w, r, badParam("format", "unknown format %q; use json or txt", format))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.opts.QueryTimeout)
	defer cancel()
	// The store lists from its index, sorted, after the offset; no
	// series data is read, whatever the window.
	got, err := a.opts.Querier.Tags(ctx, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	verbose := boolParam(v, "verbose")
	// txt is one name per line, for shell pipelines (Atlas's format=txt).
	if format == "txt" {
		var b strings.Builder
		for _, t := range got {
			b.WriteString(t.Name)
			b.WriteByte('\n')
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(b.String()))
		return
	}
	if !verbose {
		names := make([]string, len(got))
		for i, t := range got {
			names[i] = t.Name
		}
		writeJSON(w, http.StatusOK, names)
		return
	}
	// verbose=1 answers objects with the number of series behind each
	// key or value, as Atlas's verbose listing does.
	type entry struct {
		Key   string `json:"key"`
		Value string `json:"value,omitempty"`
		Count int    `json:"count"`
	}
	out := make([]entry, len(got))
	for i, t := range got {
		if key == "" {
			out[i] = entry{Key: t.Name, Count: t.Count}
		} else {
			out[i] = entry{Key: key, Value: t.Name, Count: t.Count}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
