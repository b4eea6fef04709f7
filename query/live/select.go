package live

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sextant-dev/sextant/tsdb"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// maxSelections bounds the selections one group keeps: an expression
// names a handful of queries, and the engine hands the same parsed query
// (the same pointer) to the store at every step.
const maxSelections = 64

// selQuerier is a group's view of the store. It keeps, for every query the
// group's expression fetches, the tsdb.Selection the store filled in, and
// hands it back at the next step: the store then reads the series it
// selected before instead of selecting again, as long as its index did not
// gain a series that the query could match. A store without the ability
// ignores the Selection.
//
// During a round of live steps (evaluateDue), fetches also go through the
// round's cache: groups whose expressions read the same data (alert rules
// that differ only in their threshold, dashboards of one service) share
// one fetch per step.
type selQuerier struct {
	tsdb.Querier
	round *atomic.Pointer[fetchRound] // the evaluator's current round, or nil
	mu    sync.Mutex
	sels  map[*tags.Query]*tsdb.Selection
}

func newSelQuerier(q tsdb.Querier, round *atomic.Pointer[fetchRound]) *selQuerier {
	return &selQuerier{Querier: q, round: round, sels: map[*tags.Query]*tsdb.Selection{}}
}

// Fetch implements tsdb.Querier.
func (s *selQuerier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	if r := s.round.Load(); r != nil {
		return r.fetch(ctx, req, s.fetch)
	}
	return s.fetch(ctx, req)
}

// fetch asks the store with the query's Selection. A Selection is used by
// one fetch at a time: it is taken out of the map for the fetch, so a
// concurrent fetch of the same query starts an empty one.
func (s *selQuerier) fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
	s.mu.Lock()
	sel := s.sels[req.Query]
	delete(s.sels, req.Query)
	s.mu.Unlock()
	if sel == nil {
		sel = &tsdb.Selection{}
	}
	req.Selection = sel
	set, err := s.Querier.Fetch(ctx, req)
	s.mu.Lock()
	if len(s.sels) < maxSelections {
		s.sels[req.Query] = sel
	}
	s.mu.Unlock()
	return set, err
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

func (r *fetchRound) fetch(ctx context.Context, req tsdb.FetchRequest, fetch func(context.Context, tsdb.FetchRequest) (*tsdb.SeriesSet, error)) (*tsdb.SeriesSet, error) {
	key := requestKey(&req)
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

// requestKey identifies what a fetch answers: every field but Selection.
func requestKey(req *tsdb.FetchRequest) string {
	var b strings.Builder
	b.WriteString(req.Query.String())
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
