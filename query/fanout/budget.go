package fanout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/sextant-dev/sextant/tsdb"
)

// CostHeader carries, in a store node's informational 103 answer to a
// fetch with a budget, what the node's share of the fetch costs: its
// tsdb.Cost as three decimal integers, series, datapoints and bytes,
// separated by spaces. The node sends it once it selected the series and
// before it reads any data.
const CostHeader = "X-Sextant-Cost"

// formatCost is c as CostHeader's value.
func formatCost(c tsdb.Cost) string {
	return strconv.Itoa(c.Series) + " " + strconv.Itoa(c.Datapoints) + " " + strconv.Itoa(c.Bytes)
}

// parseCost reads CostHeader's value; false when it is malformed.
func parseCost(s string) (tsdb.Cost, bool) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return tsdb.Cost{}, false
	}
	var v [3]int
	for i, x := range f {
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 {
			return tsdb.Cost{}, false
		}
		v[i] = n
	}
	return tsdb.Cost{Series: v[0], Datapoints: v[1], Bytes: v[2]}, true
}

// budget holds one read of a query node (a fetch, or a series listing) to
// its limits (Options.Limits) on the total over the store nodes, as one
// store holding all the data would hold it.
//
// Every store node asked tells what its share costs as soon as it knows
// (an informational 103 answer with CostHeader, after it selected the
// series and before it reads any data). Once every node of a round has
// told its cost or ended, the round settles: the budget adds the costs to
// what the answers of earlier rounds cost and, when the total is over a
// limit, ends the read with the *tsdb.LimitError one store would have
// given, the same limit and the same count. So a query over the limits is
// refused about as soon as the nodes selected their series, and no node
// reads its share to the end.
//
// Each node is also sent what is left of the limits (remaining) and
// refuses at once a share that alone is over it (a 422 after its cost);
// the refusal waits for the round to settle, so that the answer names the
// total rather than the node's share. A node that refuses by limits of its
// own lower than the query node's ends the read with its refusal.
//
// A nil *budget enforces nothing; its methods are no-ops. Safe for
// concurrent use: the attempts of a round report from their goroutines.
type budget struct {
	limits tsdb.Cost
	cancel context.CancelCauseFunc
	mu     struct {
		sync.Mutex
		prior   tsdb.Cost           // what the answers of earlier rounds cost
		round   map[string]*attempt // this round's attempts, by node id
		open    int                 // attempts of the round that neither told their cost nor ended
		settled bool                // the round's costs were all known and checked
		err     error               // what ended the read
	}
}

// attempt is one node's part in a round.
type attempt struct {
	cost    tsdb.Cost
	costed  bool  // the node told its cost
	ended   bool  // the node answered, refused or failed
	ok      bool  // the node answered
	refusal error // the limit the node refused its share with, after its cost
}

// newBudget returns a budget for limits, or nil when limits limit nothing.
func newBudget(limits tsdb.Cost) *budget {
	if limits == (tsdb.Cost{}) {
		return nil
	}
	return &budget{limits: limits}
}

// start returns the context of the read: the budget cancels it, with the
// error that ends the read as its cause, when the total is over a limit.
func (b *budget) start(ctx context.Context) (context.Context, context.CancelFunc) {
	if b == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	b.cancel = cancel
	return ctx, func() { cancel(nil) }
}

// startRound begins a round that asks the nodes ids.
func (b *budget) startRound(ids []string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.round = make(map[string]*attempt, len(ids))
	for _, id := range ids {
		b.mu.round[id] = &attempt{}
	}
	b.mu.open, b.mu.settled = len(ids), false
}

// remaining returns what is left of the limits for a node's share: the
// limits less what earlier rounds' answers cost, at least 1 per limited
// measure (0 is no limit on the wire; the settlement catches a share that
// the 1 lets through). nil when nothing is limited.
func (b *budget) remaining() *tsdb.Cost {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	left := func(limit, spent int) int {
		if limit <= 0 {
			return 0
		}
		return max(limit-spent, 1)
	}
	p := b.mu.prior
	return &tsdb.Cost{Series: left(b.limits.Series, p.Series), Datapoints: left(b.limits.Datapoints, p.Datapoints),
		Bytes: left(b.limits.Bytes, p.Bytes)}
}

// heard returns what hears node id's cost (post's onCost); nil for a nil
// budget.
func (b *budget) heard(id string) func(tsdb.Cost) {
	if b == nil {
		return nil
	}
	return func(c tsdb.Cost) { b.costed(id, c) }
}

// costed records what node id's share costs.
func (b *budget) costed(id string, c tsdb.Cost) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.mu.round[id]
	if a == nil || a.costed || a.ended {
		return
	}
	a.cost, a.costed = c, true
	b.mu.open--
	b.settleLocked()
}

// ended records how node id's attempt ended (err nil: it answered).
func (b *budget) ended(id string, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.mu.round[id]
	if a == nil || a.ended {
		return
	}
	a.ended, a.ok = true, err == nil
	var le *tsdb.LimitError
	if a.costed && errors.As(err, &le) && costLimit(le.Limit) {
		a.refusal = le
		if b.mu.settled && b.mu.err == nil {
			// Past the settlement: the node's own limits refused a
			// share the query's limits allow.
			b.failLocked(le)
		}
	}
	if !a.costed {
		b.mu.open--
	}
	b.settleLocked()
}

// settleLocked checks the total once every attempt of the round told its
// cost or ended.
func (b *budget) settleLocked() {
	if b.mu.open > 0 || b.mu.settled || b.mu.err != nil {
		return
	}
	b.mu.settled = true
	total := b.mu.prior
	var refusal error
	for _, a := range b.mu.round {
		if !a.costed || (a.ended && !a.ok && a.refusal == nil) {
			continue // failed: its partitions go to another node, which tells its own cost
		}
		total = total.Add(a.cost)
		if a.refusal != nil && refusal == nil {
			refusal = a.refusal
		}
	}
	if err := total.Exceeds(b.limits); err != nil {
		b.failLocked(err)
		return
	}
	if refusal != nil {
		b.failLocked(refusal)
	}
}

// failLocked ends the read with err.
func (b *budget) failLocked(err error) {
	b.mu.err = err
	if b.cancel != nil {
		b.cancel(err)
	}
}

// endRound adds what the round's answers cost to prior, for the budget of
// the next round.
func (b *budget) endRound() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.mu.round {
		if a.ok && a.costed {
			b.mu.prior = b.mu.prior.Add(a.cost)
		}
	}
}

// err returns the error that ended the read, if the budget ended it.
func (b *budget) err() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.err
}

// costLimit reports whether a LimitError names one of the limits a Cost
// measures.
func costLimit(name string) bool {
	switch name {
	case "max-series-per-query", "max-datapoints-per-query", "max-bytes-per-query":
		return true
	}
	return false
}

// admitter returns the tsdb.FetchRequest.Admit of a store node asked for a
// share within budget: it tells the query node the share's cost in an
// informational answer on w, then refuses a share over the budget.
func admitter(w http.ResponseWriter, budget tsdb.Cost) func(tsdb.Cost) error {
	return func(c tsdb.Cost) error {
		w.Header().Set(CostHeader, formatCost(c))
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del(CostHeader)
		if err := c.Exceeds(budget); err != nil {
			return fmt.Errorf("share of the query on this node: %w", err)
		}
		return nil
	}
}
