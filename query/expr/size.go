package expr

import (
	"fmt"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// MaxSize is the most nodes an expression may have once its shared
// sub-expressions are expanded (what evaluating or printing it visits).
// :dup makes an expression a DAG whose expanded size doubles with every
// :dup,:add, so a 200-byte program could take forever; past the limit the
// word that would build it fails (a 400 naming the limit).
const MaxSize = 10_000

// SizeError reports an expression over MaxSize.
type SizeError struct{ Size int }

// Error implements error.
func (e *SizeError) Error() string {
	return fmt.Sprintf("expression too large: more than %d nodes once shared sub-expressions (:dup) are expanded; limit max-expression-size is %d",
		e.Size-1, MaxSize)
}

// checkSize returns a *SizeError if the expression made of a node whose
// operands are subs would exceed MaxSize. It visits each shared node once.
func checkSize(subs ...any) error {
	memo := map[any]int{}
	n := 1
	for _, s := range subs {
		n = min(n+size(s, memo), MaxSize+1)
	}
	if n > MaxSize {
		return &SizeError{Size: n}
	}
	return nil
}

// size returns the expanded node count of a time series expression or tag
// query, saturating just past MaxSize.
func size(v any, memo map[any]int) int {
	if v == nil {
		return 0
	}
	if n, ok := memo[v]; ok {
		return n
	}
	n := 1
	add := func(subs ...any) {
		for _, s := range subs {
			n = min(n+size(s, memo), MaxSize+1)
		}
	}
	switch e := v.(type) {
	case *tags.Query:
		for _, s := range e.Subs() {
			add(s)
		}
	case *Aggregate:
		add(e.Query)
	case *GroupBy:
		add(e.Agg)
	case *All:
		add(e.Query)
	case *Unary:
		add(e.Expr)
	case *Binary:
		add(e.L, e.R)
	case *MathAgg:
		add(e.Expr)
	case *MathGroupBy:
		add(e.Agg)
	case *Percentiles:
		add(e.Expr)
	case *SampleCount:
		add(e.Expr)
	case *ApproxDistinct:
		add(e.Expr)
	case *As:
		add(e.Expr)
	case *Rewrite:
		add(e.Eval, e.Display)
	case *Stateful:
		add(e.Expr)
	case *Stat:
		add(e.Expr)
	case *Filter:
		add(e.Expr, e.Cond)
	case *Priority:
		add(e.Expr)
	case *Consolidate:
		add(e.Expr)
	}
	memo[v] = n
	return n
}
