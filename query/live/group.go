package live

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// group is one distinct (normalized expression, step[, origin]) with its
// subscribers. key, styles, step, origin and mem never change; last is
// read and written only by the goroutine running Run (and set before the
// group is published); subs is guarded by Evaluator.mu.
type group struct {
	key    string
	styles []*expr.Style
	step   int64
	origin int64  // where stateful words start empty
	mem    int    // steps of history an evaluation needs; -1: since origin
	last   int64  // the newest point evaluated (or delivered as backfill)
	carry  *carry // carries unbounded state step to step; nil: re-read the window
	// engine evaluates the group's steps through a store view that keeps
	// the series each of its queries selected (selQuerier).
	engine *query.Engine
	metas  lineMetas // used by the goroutine evaluating the group
	subs   []*Subscription
}

// maxLineMetas bounds the lines whose identity a group keeps.
const maxLineMetas = 1 << 16

// lineMetas keeps, from one step to the next, what a group's lines carry
// besides their values (the ID and the tags as a map), so that a step of
// thousands of lines (an alert rule grouped by node) does not build them
// again. A nil *lineMetas keeps nothing.
type lineMetas struct {
	m map[uint64]*lineMeta
}

type lineMeta struct {
	id   string
	tags map[string]string // shared by the Updates: read only
}

// get returns l's ID and tags.
func (lm *lineMetas) get(l *query.Line) (string, map[string]string) {
	h := lineHash(l)
	if lm != nil {
		// Fast path: the line was there at the last step (the tags are
		// compared, so that a hash collision cannot mix two lines up).
		if m := lm.m[h]; m != nil && sameTags(m.tags, l.Tags) {
			return m.id, m.tags
		}
	}
	id, tags := strconv.FormatUint(h, 16), l.Tags.Map()
	if lm != nil {
		if lm.m == nil || len(lm.m) >= maxLineMetas {
			lm.m = make(map[uint64]*lineMeta)
		}
		lm.m[h] = &lineMeta{id: id, tags: tags}
	}
	return id, tags
}

// sameTags reports whether the kept map holds exactly the line's tags.
func sameTags(m map[string]string, ts tags.Set) bool {
	if len(m) != len(ts) {
		return false
	}
	for _, t := range ts {
		if v, ok := m[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return true
}

// evaluateGroup evaluates the points of g that are due and fans them out;
// it reports whether it evaluated anything.
func (e *Evaluator) evaluateGroup(ctx context.Context, g *group) bool {
	// Only closed steps are evaluated: a step whose end has not passed,
	// plus the store's settling delay, could still receive data, and a
	// streamed point is never revised.
	target := e.LastClosed(g.step)
	if target <= g.last {
		return false
	}
	r := eval.Range{Start: g.last + g.step, End: target + g.step, Step: g.step}
	var u Update
	if g.carry != nil {
		u = g.carry.evaluate(ctx, e, g.engine, r, g.origin)
	} else {
		u = e.evalRange(ctx, g.engine, &g.metas, g.styles, r, g.origin, g.mem)
	}
	if ctx.Err() != nil {
		return false // shutting down: not an evaluation error to report
	}
	// Advanced even when the evaluation failed: the error was delivered
	// for these steps, and retrying them forever would stall the group.
	g.last = target
	e.mu.Lock()
	// A copy, so no lock is held while delivering (a subscriber's
	// buffer may be full: deliver decides, never this loop).
	subs := slices.Clone(g.subs)
	e.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		next := s.next
		s.mu.Unlock()
		if next < r.Start {
			// The subscription joined while this group was being evaluated
			// past its backfill: evaluate the steps in between for it.
			s.deliver(e.evalRange(ctx, g.engine, &g.metas, g.styles, eval.Range{Start: next, End: r.Start, Step: g.step}, g.origin, g.mem), next)
		}
		s.deliver(u, r.Start)
	}
	if len(subs) > 0 {
		e.m.lag.Record(e.opts.Now().Sub(time.UnixMilli(target)))
	}
	return true
}

// evalRange evaluates styles for the points of r, reading the history the
// stateful words need since origin, and returns the lines cut to r.
func (e *Evaluator) evalRange(ctx context.Context, engine *query.Engine, metas *lineMetas, styles []*expr.Style, r eval.Range, origin int64, mem int) Update {
	start := r.Start
	switch {
	case mem < 0:
		start = min(origin, r.Start)
	// History before the origin is never read: a stateful word starts
	// empty at the origin, as the graph over [origin, T] would.
	case mem > 0:
		start = min(max(origin, r.Start-int64(mem)*r.Step), r.Start)
	}
	if n := int((r.End - start) / r.Step); n > e.opts.MaxWindow {
		e.m.errors.Increment()
		return Update{End: r.End, Err: &LimitError{Limit: "max-live-window", Max: e.opts.MaxWindow, Got: n}}
	}
	e.m.evaluations.Increment()
	e.m.evals.Add(1)
	res, err := engine.Eval(ctx, styles, eval.Range{Start: start, End: r.End, Step: r.Step})
	if err != nil {
		e.m.errors.Increment()
		e.opts.Logger.Debug("live evaluation failed", "err", err, "end", r.End)
		return Update{End: r.End, Err: err}
	}
	// The history points were needed as input only; the update holds
	// the points of r.
	skip := int((r.Start - start) / r.Step)
	lines := make([]Line, len(res.Lines))
	for i := range res.Lines {
		l := &res.Lines[i]
		id, tags := metas.get(l)
		lines[i] = Line{
			ID: id, Label: l.Label, Tags: tags,
			Start: r.Start, End: r.End, Step: r.Step, Values: l.Values[skip:],
		}
	}
	return Update{End: r.End, Lines: lines}
}

// memoryOf is the history, in steps before a point, that the stateful
// words of the presentations need to compute that point as an evaluation
// from their origin would; -1 when it is everything since the origin.
func memoryOf(styles []*expr.Style, step int64) int {
	m := 0
	for _, st := range styles {
		x := memory(st.Expr, step)
		if x < 0 {
			return -1
		}
		m = max(m, x)
	}
	return m
}

// memory is memoryOf for one expression: windows add up through
// nesting (a delay of a rolling sum needs both), a binary node needs the
// larger of its sides, and anything that never forgets is -1.
func memory(e expr.TimeSeriesExpr, step int64) int {
	switch n := e.(type) {
	case *expr.Stateful:
		in := memory(n.Expr, step)
		if in < 0 {
			return -1
		}
		switch n.Op {
		case expr.OpDelay:
			return in + n.N
		case expr.OpRollingCount, expr.OpRollingMin, expr.OpRollingMax, expr.OpRollingSum, expr.OpRollingMean:
			return in + max(n.N-1, 0)
		case expr.OpTrend:
			return in + max(int(n.Window/step)-1, 0)
		case expr.OpDerivative:
			return in + 1
		}
		return -1 // des, sdes, integral, cumulative-max: state never forgets
	case *expr.Unary:
		return memory(n.Expr, step)
	case *expr.Binary:
		return maxMem(memory(n.L, step), memory(n.R, step))
	case *expr.MathAgg:
		return memory(n.Expr, step)
	case *expr.MathGroupBy:
		return memory(n.Agg, step)
	case *expr.As:
		return memory(n.Expr, step)
	case *expr.Rewrite:
		return memory(n.Eval, step)
	case *expr.Stat:
		return memory(n.Expr, step)
	case *expr.Filter:
		return maxMem(memory(n.Expr, step), memory(n.Cond, step))
	case *expr.Priority:
		return memory(n.Expr, step)
	case *expr.ApproxDistinct:
		if n.Cumulative {
			return -1
		}
	// A coarser step needs the fine steps of its first interval.
	case *expr.Consolidate:
		in := memory(n.Expr, step)
		if in < 0 {
			return -1
		}
		return in + max(int((n.Step+step-1)/step)-1, 0)
	}
	return 0
}

// maxMem is the memory of two inputs: the larger, -1 if either is -1.
func maxMem(a, b int) int {
	if a < 0 || b < 0 {
		return -1
	}
	return max(a, b)
}

// summarizes reports whether the presentations use a summary of their
// evaluation range (:filter with :stat-*, :stat, :topk and friends, :sort
// and :limit) or look at the range's edges (:time-span, a coarser
// consolidation step): a live step of those is computed over the evaluated
// window (as Atlas' LWC does), not equal to a graph over a longer range.
func summarizes(styles []*expr.Style, step int64) bool {
	for _, st := range styles {
		if _, ok := st.Get("sort"); ok {
			return true
		}
		if _, ok := st.Get("limit"); ok {
			return true
		}
		if summarizesExpr(st.Expr, step) {
			return true
		}
	}
	return false
}

// summarizesExpr is summarizes for one expression, through its nodes.
func summarizesExpr(e expr.TimeSeriesExpr, step int64) bool {
	switch n := e.(type) {
	case *expr.Filter, *expr.Priority, *expr.Stat, *expr.StatRef, *expr.TimeSpan:
		return true
	case *expr.Consolidate:
		return n.Step > step || summarizesExpr(n.Expr, step)
	case *expr.Stateful:
		return summarizesExpr(n.Expr, step)
	case *expr.Unary:
		return summarizesExpr(n.Expr, step)
	case *expr.Binary:
		return summarizesExpr(n.L, step) || summarizesExpr(n.R, step)
	case *expr.MathAgg:
		return summarizesExpr(n.Expr, step)
	case *expr.MathGroupBy:
		return summarizesExpr(n.Agg, step)
	case *expr.As:
		return summarizesExpr(n.Expr, step)
	case *expr.Rewrite:
		return summarizesExpr(n.Eval, step)
	}
	return false
}
