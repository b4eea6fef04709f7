package tags

import (
	"context"
	"fmt"
	"time"

	"github.com/dlclark/regexp2"
)

// RegexBudgetError reports a backtracking regex (Java-only syntax) that
// needed more work than one query may spend on it. A match that runs out of
// budget is never counted as "no match": the query fails instead of
// answering with fewer series.
type RegexBudgetError struct {
	Pattern string
	Budget  time.Duration
	Values  int // values tested before the budget ran out
}

// Error implements error.
func (e *RegexBudgetError) Error() string {
	return fmt.Sprintf("tags: regex %q needs more than the %s a query may spend on backtracking regexes (%d values tested); "+
		"use RE2 syntax (no lookarounds or backreferences) or a narrower query", e.Pattern, e.Budget, e.Values)
}

// Backtracking reports whether q has a leaf that the backtracking engine
// runs (a pattern RE2 cannot run).
func (q *Query) Backtracking() bool {
	found := false
	q.walk(func(n *Query) { found = found || n.bt != nil })
	return found
}

// ResolveBacktracking returns q with each backtracking regex leaf replaced
// by the list of values of its key that it matches (an :in), so that the
// rest of the query runs without the backtracking engine. values(key)
// returns the values to test; the caller collects them under its own lock
// and releases it before calling, so that no user-controlled work runs
// under a lock writers need. The whole resolution may take budget; past it,
// or when ctx ends, it returns a *RegexBudgetError or ctx's error.
func (q *Query) ResolveBacktracking(ctx context.Context, values func(key string) []string, budget time.Duration) (*Query, error) {
	if !q.Backtracking() {
		return q, nil
	}
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return q.resolve(ctx, values, budget, deadline)
}

func (q *Query) resolve(ctx context.Context, values func(string) []string, budget time.Duration, deadline time.Time) (*Query, error) {
	switch q.op {
	case OpAnd, OpOr, OpNot:
		subs := make([]*Query, len(q.subs))
		for i, s := range q.subs {
			r, err := s.resolve(ctx, values, budget, deadline)
			if err != nil {
				return nil, err
			}
			subs[i] = r
		}
		switch q.op {
		case OpAnd:
			return And(subs[0], subs[1]), nil
		case OpOr:
			return Or(subs[0], subs[1]), nil
		}
		return Not(subs[0]), nil
	}
	if q.bt == nil {
		return q, nil
	}
	// A regexp of this query's own: its timeout is this query's remaining
	// budget, and the shared Query is not modified.
	opts := regexp2.RegexOptions(regexp2.None)
	if q.op == OpReIC {
		opts |= regexp2.IgnoreCase
	}
	bt, err := regexp2.Compile(q.bt.String(), opts)
	if err != nil {
		return nil, fmt.Errorf("tags: recompile regex %q: %w", q.value, err)
	}
	var matched []string
	vs := values(q.key)
	for i, v := range vs {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, q.budgetError(ctx, budget, i)
		}
		bt.MatchTimeout = left
		ok, err := bt.MatchString(v)
		if err != nil {
			return nil, q.budgetError(ctx, budget, i)
		}
		if ok {
			matched = append(matched, v)
		}
	}
	return In(q.key, matched), nil
}

func (q *Query) budgetError(ctx context.Context, budget time.Duration, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= 0 {
		return context.DeadlineExceeded
	}
	return &RegexBudgetError{Pattern: q.value, Budget: budget, Values: n}
}
