package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// item is a stack item as the expression APIs show it.
type item struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// describe names a stack item with the type names of Atlas's ExprApi
// (String, List, Query, DataExpr, TimeSeriesExpr, StyleExpr; asl.md §3.6)
// and formats it back into program text, so a client can show the stack as
// it would write it.
func describe(it any) item {
	t := "Expr"
	switch v := it.(type) {
	case string:
		t = "String"
		return item{Type: t, Value: v}
	case stack.List:
		t = "List"
	case *tags.Query:
		t = "Query"
	case *expr.Style:
		t = "StyleExpr"
	// DataExpr before TimeSeriesExpr: every data expression is also a
	// time-series expression, and the narrower name tells more.
	case expr.DataExpr:
		t = "DataExpr"
	case expr.TimeSeriesExpr:
		t = "TimeSeriesExpr"
	}
	return item{Type: t, Value: stack.Format(it)}
}

// describeAll describes a stack bottom first, as the program built it.
func describeAll(items []any) []item {
	out := make([]item, len(items))
	for i, it := range items {
		out[i] = describe(it)
	}
	return out
}

// exprParse serves GET /api/v1/expr: the stack a program leaves, or the
// error with the word and its position.
func (a *API) exprParse(w http.ResponseWriter, r *http.Request) {
	q, err := a.queryParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Exec, not Parse: this endpoint shows whatever the program leaves,
	// lists and strings included, not only presentations.
	c, err := query.Exec(q, query.ParseOptions{TZ: a.opts.DefaultTZ, Unstable: r.URL.Query().Get("features") == "unstable"})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"q": q, "stack": describeAll(c.Result())})
}

// exprDebug serves GET /api/v1/expr/debug: the stack after each token.
func (a *API) exprDebug(w http.ResponseWriter, r *http.Request) {
	q, err := a.queryParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type step struct {
		Token    string `json:"token"`
		Position int    `json:"position"`
		Stack    []item `json:"stack"`
	}
	// Trace is called after each token with the stack as it stands;
	// each step keeps its own description of it, in program text.
	var steps []step
	_, err = query.Interpreter().Execute(q, stack.Options{
		Vars: map[string]any{"tz": a.opts.DefaultTZ},
		Trace: func(tok stack.Token, st []any) {
			steps = append(steps, step{Token: tok.Text, Position: tok.Pos, Stack: describeAll(st)})
		},
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, steps)
}

// parseParam parses the program of q (queryParam) into its presentations,
// in the default time zone. Both errors are the user's: a missing or too
// long q, or a program that does not parse (a *stack.Error naming the word).
func (a *API) parseParam(r *http.Request) ([]*expr.Style, error) {
	q, err := a.queryParam(r)
	if err != nil {
		return nil, err
	}
	return query.Parse(q, query.ParseOptions{TZ: a.opts.DefaultTZ})
}

// exprNormalize serves GET /api/v1/expr/normalize: each presentation as
// a canonical program.
func (a *API) exprNormalize(w http.ResponseWriter, r *http.Request) {
	styles, err := a.parseParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]string, len(styles))
	for i, s := range styles {
		out[i] = s.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// exprQueries serves GET /api/v1/expr/queries: the distinct queries the
// program's data expressions run.
func (a *API) exprQueries(w http.ResponseWriter, r *http.Request) {
	styles, err := a.parseParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Distinct by text, in the order of first use; an empty program
	// answers [] rather than null.
	out := []string{}
	for _, s := range styles {
		for _, d := range expr.DataExprs(s.Expr) {
			if qs := d.DataQuery().String(); !slices.Contains(out, qs) {
				out = append(out, qs)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// completion is the answer of /api/v1/expr/complete.
type completion struct {
	// Prefix is the partial token being completed.
	Prefix string `json:"prefix"`
	// Words valid on the current stack, filtered by the prefix.
	Words []wordInfo `json:"words"`
	// Keys and Values are tag keys, or values of the key on top of the
	// stack, from the index (restricted by a query on the stack).
	Keys   []string `json:"keys"`
	Values []string `json:"values"`
	// Key is the key whose values are listed.
	Key string `json:"key,omitempty"`
}

// wordInfo is one completion candidate: a word, its stack signature and
// summary (as the reference docs show them), and its vocabulary.
type wordInfo struct {
	Name       string `json:"name"`
	Signature  string `json:"signature"`
	Summary    string `json:"summary"`
	Vocabulary string `json:"vocabulary"`
	Deprecated bool   `json:"deprecated,omitempty"`
}

// maxCompletions bounds each list of candidates.
const maxCompletions = 100

// exprComplete serves GET /api/v1/expr/complete: what may follow a
// partial program. The text after the last comma is the prefix; the rest
// runs, and the words whose signature fits the stack (and start with the
// prefix) are offered, with tag keys or values when a query is being typed.
func (a *API) exprComplete(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := v.Get("q")
	if len(q) > a.opts.MaxQueryLength {
		a.fail(w, r, badParam("q", "%d bytes long, limit is %d", len(q), a.opts.MaxQueryLength))
		return
	}
	// q may be empty (nothing typed yet: every word that takes an empty
	// stack, and every tag key) or end in a half-typed token. The prefix
	// is never run; an error in the finished part is the user's, with
	// its position, as for /api/v1/expr.
	done, prefix := "", q
	if i := strings.LastIndexByte(q, ','); i >= 0 {
		done, prefix = q[:i], q[i+1:]
	}
	prefix = strings.TrimSpace(prefix)
	c, err := query.Interpreter().Execute(done, stack.Options{Vars: map[string]any{"tz": a.opts.DefaultTZ}})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st := c.Stack
	out := completion{Prefix: prefix, Words: []wordInfo{}, Keys: []string{}, Values: []string{}}
	seen := map[string]bool{}
	wordPrefix := strings.TrimPrefix(prefix, ":")
	if prefix == "" || strings.HasPrefix(prefix, ":") {
		for _, voc := range expr.Vocabularies {
			// A word in several vocabularies (a std word reexported) is
			// offered once; named-rewrite is internal (the macros use it
			// to show an expansion as the macro), not for typing.
			for _, wd := range voc.Words {
				if wd.Name == "named-rewrite" || seen[wd.Name] || !strings.HasPrefix(wd.Name, wordPrefix) || !wd.Matches(st) {
					continue
				}
				seen[wd.Name] = true
				out.Words = append(out.Words, wordInfo{Name: ":" + wd.Name, Signature: wd.Signature(), Summary: wd.Summary,
					Vocabulary: voc.Name, Deprecated: wd.Deprecated})
				if len(out.Words) >= maxCompletions {
					break
				}
			}
		}
	}
	// A prefix without a colon may be the start of a tag key or value
	// as well as of a word typed without its colon.
	if !strings.HasPrefix(prefix, ":") {
		if err := a.completeTags(r.Context(), st, prefix, &out); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// completeTags offers values when the top of the stack is a tag key being
// matched (k,<prefix>), keys otherwise; a query below restricts both.
func (a *API) completeTags(ctx context.Context, st []any, prefix string, out *completion) error {
	// Completion reads the index, never data, but a busy store can still
	// be slow: the server's query timeout bounds it like any query.
	ctx, cancel := context.WithTimeout(ctx, a.opts.QueryTimeout)
	defer cancel()
	// The nearest query below the cursor narrows the suggestions to the
	// series it matches (name,sps,:eq,nf.<tab> offers nf.* keys of sps).
	var restrict *tags.Query
	for i := len(st) - 1; i >= 0; i-- {
		if q, ok := st[i].(*tags.Query); ok {
			restrict = q
			break
		}
	}
	// Start the sorted listing just before the prefix: every name with the
	// prefix follows, and the first name without it ends the scan.
	after := ""
	if b := []byte(prefix); len(b) > 0 && b[len(b)-1] > 0 {
		b[len(b)-1]--
		after = string(b) + "\xff\xff\xff\xff\xff\xff\xff\xff"
	}
	list := func(key string) ([]string, error) {
		// A few more than shown, to make up for the names just before the
		// prefix that the After key lets through.
		got, err := a.opts.Querier.Tags(ctx, tsdb.TagsRequest{Key: key, Query: restrict, After: after, Limit: maxCompletions + 16})
		if err != nil {
			return nil, err
		}
		names := []string{}
		for _, t := range got {
			if !strings.HasPrefix(t.Name, prefix) {
				if t.Name > prefix {
					break
				}
				continue
			}
			names = append(names, t.Name)
			if len(names) >= maxCompletions {
				break
			}
		}
		return names, nil
	}
	// A string on top with no string under it is a key waiting for its
	// value (k,<prefix>); two strings are a finished k,v pair, so the
	// next token is a new key.
	if n := len(st); n > 0 {
		if k, ok := st[n-1].(string); ok && (n == 1 || !isString(st[n-2])) {
			vals, err := list(k)
			if err != nil {
				return err
			}
			out.Key, out.Values = k, append(out.Values, vals...)
			return nil
		}
	}
	keys, err := list("")
	if err != nil {
		return err
	}
	out.Keys = append(out.Keys, keys...)
	return nil
}

// isString reports whether a stack item is a plain string (a key or value
// being typed), not an expression.
func isString(v any) bool {
	_, ok := v.(string)
	return ok
}
