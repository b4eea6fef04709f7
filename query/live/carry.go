package live

import (
	"context"
	"math"

	"github.com/sextant-dev/sextant/query"
	"github.com/sextant-dev/sextant/query/eval"
	"github.com/sextant-dev/sextant/query/expr"
)

// carry evaluates presentations whose expression is a word with unbounded
// state (:des, :sdes, :integral, :cumulative-max) over a child of bounded memory,
// carrying that state from step to step: each step reads only the child's
// window, so a long-lived subscription (an alert rule) costs the same at
// every step. The first evaluation reads everything since the origin once
// to build the state. Each line's state is query/eval's own (eval.Online,
// which the evaluator runs too), so the values equal the graph API's over
// [origin, T].
//
// carry is used only by the goroutine evaluating its group.
type carry struct {
	roots    []*expr.Stateful
	legends  []string      // the :legend of each presentation, "" for none
	child    []*expr.Style // each presentation's child, without the legend
	childMem int
	ready    bool
	lines    map[carryKey]*carryLine
	order    []carryKey
}

type carryKey struct {
	expr int
	tags string
}

type carryLine struct {
	id, label string
	tags      map[string]string
	state     *eval.Online // the word's state, carried from step to step
	values    []float64    // the outputs of the last evaluation
}

// newCarry returns a carry for the presentations, or nil when they are
// not all of its shape: an unbounded stateful word at the root over a
// child with bounded memory, and no settings that rewrite labels or add
// lines (:sed, list offsets) or summarize the range.
func newCarry(styles []*expr.Style, step int64) *carry {
	c := &carry{lines: map[carryKey]*carryLine{}}
	for _, st := range styles {
		root, ok := st.Expr.(*expr.Stateful)
		if !ok {
			return nil
		}
		if !eval.IsOnline(root.Op) {
			return nil
		}
		m := memory(root.Expr, step)
		if m < 0 {
			return nil
		}
		c.childMem = max(c.childMem, m)
		child := &expr.Style{Expr: root.Expr}
		legend := ""
		for _, s := range st.Settings {
			switch s.Key {
			case "sed", "offset", "sort", "limit":
				return nil
			case "legend":
				legend = s.Value
			default:
				child.Settings = append(child.Settings, s)
			}
		}
		c.roots = append(c.roots, root)
		c.legends = append(c.legends, legend)
		c.child = append(c.child, child)
	}
	if len(c.roots) == 0 {
		return nil
	}
	return c
}

// evaluate returns the lines of r, the points after the group's last.
func (c *carry) evaluate(ctx context.Context, e *Evaluator, engine *query.Engine, r eval.Range, origin int64) Update {
	start := min(origin, r.Start) // the first evaluation builds the state
	if c.ready {
		start = min(max(origin, r.Start-int64(c.childMem)*r.Step), r.Start)
	}
	if n := int((r.End - start) / r.Step); n > e.opts.MaxWindow {
		e.m.errors.Increment()
		return Update{End: r.End, Err: &LimitError{Limit: "max-live-window", Max: e.opts.MaxWindow, Got: n}}
	}
	e.m.evaluations.Increment()
	e.m.evals.Add(1)
	res, err := engine.Eval(ctx, c.child, eval.Range{Start: start, End: r.End, Step: r.Step})
	if err != nil {
		// The state missed these steps: rebuild it from the origin next time.
		c.ready, c.lines, c.order = false, map[carryKey]*carryLine{}, nil
		e.m.errors.Increment()
		return Update{End: r.End, Err: err}
	}
	// The first evaluation feeds everything since the origin to build the
	// state; later ones feed only the new points (the child's window
	// before them was fed already).
	skip := int((r.Start - start) / r.Step)
	n := r.N()
	seen := map[carryKey]bool{}
	for i := range res.Lines {
		l := &res.Lines[i]
		k := carryKey{l.Expr, l.Tags.String()}
		seen[k] = true
		cl := c.lines[k]
		t0 := start
		if c.ready {
			t0 = r.Start
		}
		if cl == nil {
			cl = c.newLine(l, origin, t0, r.Step)
			c.lines[k] = cl
			c.order = append(c.order, k)
		}
		in := l.Values
		if c.ready {
			in = in[skip:]
		}
		cl.values = cl.feed(in, t0, r.Step, n, cl.values[:0])
	}
	lines := make([]Line, 0, len(c.order))
	for _, k := range c.order {
		cl := c.lines[k]
		if !seen[k] {
			// A line the child no longer has keeps its state, fed NaN, as
			// in a graph over the whole range.
			cl.values = cl.feed(nanValues(n), r.Start, r.Step, n, cl.values[:0])
		}
		vals := make([]float64, n)
		copy(vals, cl.values)
		lines = append(lines, Line{ID: cl.id, Label: cl.label, Tags: cl.tags, Start: r.Start, End: r.End, Step: r.Step, Values: vals})
	}
	c.ready = true
	return Update{End: r.End, Lines: lines}
}

// newLine starts the state of a line first seen at t0 (the origin, or a
// later step for a line that appeared since: it had no data before, which
// leaves every state empty but the :sdes step count, computed here).
func (c *carry) newLine(l *query.Line, origin, t0, step int64) *carryLine {
	root := c.roots[l.Expr]
	label := root.Op.String() + "(" + l.Label + ")"
	if lg := c.legends[l.Expr]; lg != "" {
		label = query.Legend(lg, l.Tags, l.Offset)
	}
	return &carryLine{id: lineID(l), label: label, tags: l.Tags.Map(), state: eval.NewOnline(root, origin, t0, step)}
}

// feed runs the online algorithm over in (its first value at t0) and
// appends the last keep outputs to out.
func (cl *carryLine) feed(in []float64, t0, step int64, keep int, out []float64) []float64 {
	for i, v := range in {
		o := cl.state.Next(t0+int64(i)*step, v)
		if i >= len(in)-keep {
			out = append(out, o)
		}
	}
	return out
}

func nanValues(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}
