package live

import (
	"context"
	"sync"

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
type selQuerier struct {
	tsdb.Querier
	mu   sync.Mutex
	sels map[*tags.Query]*tsdb.Selection
}

func newSelQuerier(q tsdb.Querier) *selQuerier {
	return &selQuerier{Querier: q, sels: map[*tags.Query]*tsdb.Selection{}}
}

// Fetch implements tsdb.Querier. A Selection is used by one fetch at a
// time: it is taken out of the map for the fetch, so a concurrent fetch of
// the same query starts an empty one.
func (s *selQuerier) Fetch(ctx context.Context, req tsdb.FetchRequest) (*tsdb.SeriesSet, error) {
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
