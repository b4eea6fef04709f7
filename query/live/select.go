package live

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// maxQueryStrings bounds the query strings one group keeps: an expression
// names a handful of queries, and the engine hands the same parsed query
// (the same pointer) to the store at every step.
const maxQueryStrings = 64

// maxIdleRounds is how many rounds of live steps a Selection no group used
// is kept: a group with a step of several storage steps uses its
// Selections every few rounds only, and one that ends frees them after.
const maxIdleRounds = 16

// selQuerier is a group's view of the store. Its fetches go through the
// evaluator's Selections (one per query, by its canonical string, shared
// by every group whose expression names that query): the store then reads
// the series it selected before instead of selecting again, as long as
// its index gained no series that the query could match. A store without
// the ability ignores the Selection.
//
// During a round of live steps (evaluateDue), fetches also go through the
// round's cache: groups whose expressions read the same data (alert rules
// that differ only in their threshold, dashboards of one service) share
// one fetch per step.
type selQuerier struct {
	tsdb.Querier
	e *Evaluator

	mu      sync.Mutex
	strings map[*tags.Query]string
}

func newSelQuerier(e *Evaluator) *selQuerier {
	return &selQuerier{Querier: e.opts.Querier, e: e, strings: map[*tags.Query]string{}}
}

// Fetch implements tsdb.Querier.
func (s *selQuerier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	qs := s.queryString(req.Query)
	fetch := func(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
		sel := s.e.sels.take(qs)
		if sel.Query != nil {
			// The same query by its string, maybe parsed by another group:
			// the store knows a Selection's query by its pointer.
			req.Query = sel.Query
		}
		req.Selection = sel
		set, err := s.Querier.Fetch(ctx, req)
		s.e.sels.put(qs, sel)
		return set, err
	}
	if r := s.e.round.Load(); r != nil && req.Points() <= maxSharedPoints {
		return r.fetch(ctx, requestKey(qs, &req), req, fetch)
	}
	return fetch(ctx, req)
}

// maxSharedPoints bounds the points per line of the fetches a round
// shares: a round keeps every answer it shares until it ends, which is
// cheap for a step or a short window, not for the long re-reads of
// unbounded stateful words.
const maxSharedPoints = 64

// queryString returns q's canonical string, computed once per query.
func (s *selQuerier) queryString(q *tags.Query) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if str, ok := s.strings[q]; ok {
		return str
	}
	str := q.String()
	if len(s.strings) >= maxQueryStrings {
		clear(s.strings)
	}
	s.strings[q] = str
	return str
}

// selections are the evaluator's tsdb.Selections by query string. A
// Selection is used by one fetch at a time: take removes it from the map
// for the fetch (a concurrent fetch of the same query starts an empty
// one) and put returns it. Safe for concurrent use.
type selections struct {
	mu    sync.Mutex
	m     map[string]*selEntry
	round int64
}

type selEntry struct {
	sel  *tsdb.Selection
	used int64 // the round it was last used in
}

func (s *selections) take(key string) *tsdb.Selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		delete(s.m, key)
		return e.sel
	}
	return &tsdb.Selection{}
}

func (s *selections) put(key string, sel *tsdb.Selection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*selEntry)
	}
	s.m[key] = &selEntry{sel: sel, used: s.round}
}

// endRound forgets the Selections no group used for maxIdleRounds rounds.
func (s *selections) endRound() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.round++
	for k, e := range s.m {
		if s.round-e.used > maxIdleRounds {
			delete(s.m, k)
		}
	}
}

// fetchRound shares the fetches of one round of live steps between the
// groups evaluated in it: the first group to ask for a request fetches it,
// the others wait for and share its answer. Answers are read only (the
// engine never modifies fetched values: it memoizes them within an
// evaluation too). The round ends with evaluateDue, so nothing is kept
// from one step to the next but the Selections. Safe for concurrent use.
type fetchRound struct {
	mu sync.Mutex
	m  map[string]*roundFetch
}

type roundFetch struct {
	done chan struct{}
	set  *tsdb.SeriesSet
	err  error
}

func newFetchRound() *fetchRound { return &fetchRound{m: map[string]*roundFetch{}} }

func (r *fetchRound) fetch(ctx context.Context, key string, req tsdb.FetchRequest, fetch func(context.Context, tsdb.FetchRequest) (*tsdb.SeriesSet, error)) (*tsdb.SeriesSet, error) {
	r.mu.Lock()
	f := r.m[key]
	if f != nil {
		r.mu.Unlock()
		select {
		case <-f.done:
			return f.set, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f = &roundFetch{done: make(chan struct{})}
	r.m[key] = f
	r.mu.Unlock()
	f.set, f.err = fetch(ctx, req)
	close(f.done)
	return f.set, f.err
}

// requestKey identifies what a fetch answers: the query (its string qs)
// and every other field but Selection.
func requestKey(qs string, req *tsdb.FetchRequest) string {
	var b strings.Builder
	b.Grow(len(qs) + 64)
	b.WriteString(qs)
	for _, v := range [...]int64{req.Start, req.End, req.Step, int64(req.CF), int64(req.Aggregation)} {
		b.WriteByte(0)
		b.WriteString(strconv.FormatInt(v, 10))
	}
	for _, k := range req.GroupBy {
		b.WriteByte(0)
		b.WriteString(k)
	}
	return b.String()
}
