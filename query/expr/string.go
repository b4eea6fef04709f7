package expr

import (
	"strconv"
	"strings"

	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// The String methods render each node as a program that parses back to
// the same tree.

// String of an aggregate is q,:sum with the consolidation and offset only
// when they differ from the defaults, so that the canonical form of a
// plain query stays the short one users write.
func (a *Aggregate) String() string {
	var b strings.Builder
	a.appendAgg(&b)
	appendOffset(&b, a.Offset)
	return b.String()
}

// appendAgg writes the aggregate without its offset: a group by puts the
// keys between the aggregation and the offset, as Atlas orders them.
func (a *Aggregate) appendAgg(b *strings.Builder) {
	b.WriteString(a.Query.String())
	b.WriteString(",:")
	b.WriteString(a.Fn.String())
	if a.CF != CFDefault {
		b.WriteString(",:cf-")
		b.WriteString(a.CF.String())
	}
}

// String of a group by is the aggregate, its keys and :by, then the
// offset: the order Atlas's own rendering uses, so normalized programs
// compare equal across the two.
func (g *GroupBy) String() string {
	var b strings.Builder
	g.Agg.appendAgg(&b)
	b.WriteByte(',')
	b.WriteString(listString(g.Keys))
	b.WriteString(",:by")
	appendOffset(&b, g.Agg.Offset)
	return b.String()
}

// String of :all (every raw series of the query, no aggregation).
func (a *All) String() string {
	var b strings.Builder
	b.WriteString(a.Query.String())
	b.WriteString(",:all")
	appendOffset(&b, a.Offset)
	return b.String()
}

// String of a constant uses Java's Double.toString shape (42.0), as
// Atlas names constant lines.
func (c *Constant) String() string { return FormatDouble(c.V) + ",:const" }

// String of :random, or seed,:srandom.
func (r *Random) String() string {
	if r.Seeded {
		return strconv.FormatInt(r.Seed, 10) + ",:srandom"
	}
	return ":random"
}

// String of a :time generator; the mode is escaped like any string.
func (t *Time) String() string { return stack.Escape(t.Mode) + ",:time" }

// String keeps the bounds as written (e-1h, a date): they resolve against
// the evaluation range, so rendering them resolved would change meaning.
func (t *TimeSpan) String() string {
	return stack.Escape(t.Start) + "," + stack.Escape(t.End) + ",:time-span"
}

// String of a pointwise word; the clamps carry their bound.
func (u *Unary) String() string {
	switch u.Op {
	case OpClampMin, OpClampMax:
		return u.Expr.String() + "," + FormatDouble(u.Arg) + ",:" + u.Op.String()
	}
	return u.Expr.String() + ",:" + u.Op.String()
}

// String of a binary operation: both operands, then the word (postfix).
func (b *Binary) String() string {
	return b.L.String() + "," + b.R.String() + ",:" + b.Op.String()
}

// String of an aggregate of lines (:sum of an expression, not of a query).
func (m *MathAgg) String() string { return m.Expr.String() + ",:" + m.Fn.String() }

// String of a second-level group by: the inner aggregate and the keys.
func (g *MathGroupBy) String() string {
	return g.Agg.String() + "," + listString(g.Keys) + ",:by"
}

// String of :percentiles shows the query as the user wrote it: the
// sum grouped by the bucket key is the word's own rewrite, and writing
// it out would not parse back to the same tree.
func (p *Percentiles) String() string {
	var b strings.Builder
	appendBucketQuery(&b, p.Expr, PercentileKey)
	b.WriteString(",(")
	for _, v := range p.Pcts {
		b.WriteByte(',')
		b.WriteString(FormatDouble(v))
	}
	b.WriteString(",),:percentiles")
	appendOffset(&b, p.Expr.Agg.Offset)
	return b.String()
}

// String of :sample-count, written like :percentiles.
func (s *SampleCount) String() string {
	var b strings.Builder
	appendBucketQuery(&b, s.Expr, PercentileKey)
	b.WriteByte(',')
	b.WriteString(FormatDouble(s.Min))
	b.WriteByte(',')
	b.WriteString(FormatDouble(s.Max))
	b.WriteString(",:sample-count")
	appendOffset(&b, s.Expr.Agg.Offset)
	return b.String()
}

// String of :approx-distinct and its cumulative form.
func (a *ApproxDistinct) String() string {
	var b strings.Builder
	appendBucketQuery(&b, a.Expr, DistinctKey)
	if a.Cumulative {
		b.WriteString(",:approx-distinct-cumulative")
	} else {
		b.WriteString(",:approx-distinct")
	}
	appendOffset(&b, a.Expr.Agg.Offset)
	return b.String()
}

// appendBucketQuery writes the query of a bucketed expression and the user
// group by, without the internal bucket key.
func appendBucketQuery(b *strings.Builder, g *GroupBy, key string) {
	b.WriteString(g.Agg.Query.String())
	if keys := withoutKey(g.Keys, key); len(keys) > 0 {
		b.WriteByte(',')
		b.WriteString(listString(keys))
		b.WriteString(",:by")
	}
}

// String of :as.
func (a *As) String() string {
	return a.Expr.String() + "," + stack.Escape(a.From) + "," + stack.Escape(a.To) + ",:as"
}

// String of a macro shows the macro, not its expansion: what the user
// wrote, with any change made since (an offset, a group by pushed in)
// after the word, so the program still evaluates to the same lines.
func (r *Rewrite) String() string {
	var b strings.Builder
	switch d := r.Display.(type) {
	case *tags.Query:
		// The macro stands for an aggregate over the query: changes to the
		// aggregate (offset, grouping) show after the word.
		b.WriteString(d.String())
		r.appendOp(&b)
		if off, ok := singleOffset(r.Eval); ok && off != 0 {
			appendOffset(&b, off)
		}
		if g := r.Eval.Grouping(); g != nil {
			b.WriteByte(',')
			b.WriteString(listString(g))
			b.WriteString(",:by")
		}
	// Only a grouping the display lacks is written: one it has
	// already shows inside it.
	case TimeSeriesExpr:
		b.WriteString(d.String())
		r.appendOp(&b)
		if g := r.Eval.Grouping(); !equalKeys(g, d.Grouping()) && g != nil {
			b.WriteByte(',')
			b.WriteString(listString(g))
			b.WriteString(",:by")
		}
	// Without a display, the expansion is the rendering.
	default:
		b.WriteString(r.Eval.String())
	}
	return b.String()
}

// appendOp writes the macro's word and its parameters the way the user
// gave them, so :list shows name,sps,:eq,:avg and not its expansion.
func (r *Rewrite) appendOp(b *strings.Builder) {
	for _, p := range r.Params {
		b.WriteByte(',')
		b.WriteString(stack.Escape(p))
	}
	b.WriteString(",:")
	b.WriteString(r.Name)
}

// String of a stateful word with its parameters in the order the word
// takes them.
func (s *Stateful) String() string {
	e := s.Expr.String() + ","
	switch s.Op {
	case OpDelay, OpRollingCount, OpRollingMin, OpRollingMax, OpRollingSum:
		return e + strconv.Itoa(s.N) + ",:" + s.Op.String()
	case OpRollingMean:
		return e + strconv.Itoa(s.N) + "," + strconv.Itoa(s.Min) + ",:" + s.Op.String()
	case OpTrend:
		return e + FormatDuration(s.Window) + ",:trend"
	case OpDES, OpSDES:
		return e + strconv.Itoa(s.N) + "," + FormatDouble(s.Alpha) + "," + FormatDouble(s.Beta) + ",:" + s.Op.String()
	}
	return e + ":" + s.Op.String()
}

// String of :stat; StatRef is the unresolved :stat-* placeholder; a
// filter shows its condition after the input; :consolidate its function
// and step.
func (s *Stat) String() string    { return s.Expr.String() + "," + s.Stat + ",:stat" }
func (s *StatRef) String() string { return ":stat-" + s.Stat }
func (f *Filter) String() string  { return f.Expr.String() + "," + f.Cond.String() + ",:filter" }
func (c *Consolidate) String() string {
	return c.Expr.String() + "," + c.CF.String() + "," + FormatDuration(c.Step) + ",:consolidate"
}

// String of :topk, :bottomk and their -others- forms.
func (p *Priority) String() string {
	op := "topk"
	if p.Bottom {
		op = "bottomk"
	}
	if p.Others != "" {
		op += "-others-" + p.Others
	}
	return p.Expr.String() + "," + p.Stat + "," + strconv.Itoa(p.K) + ",:" + op
}

// String renders the expression followed by its settings.
func (s *Style) String() string {
	var b strings.Builder
	b.WriteString(s.Expr.String())
	for _, st := range s.Settings {
		b.WriteByte(',')
		switch {
		case st.Key == "sed":
			b.WriteString(st.Value) // already program text: "s,r,:s" or "hex,:decode"
			continue
		// A list value is already program text; escaping it would turn
		// the list into one string.
		case strings.HasPrefix(st.Value, "(,") && (st.Key == "palette" || st.Key == "offset"):
			b.WriteString(st.Value)
		default:
			b.WriteString(stack.Escape(st.Value))
		}
		b.WriteString(",:")
		b.WriteString(st.Key)
	}
	return b.String()
}

// appendOffset writes ",<duration>,:offset" when the offset is set.
func appendOffset(b *strings.Builder, off int64) {
	if off != 0 {
		b.WriteByte(',')
		b.WriteString(FormatDuration(off))
		b.WriteString(",:offset")
	}
}

// listString renders keys as a stack-language list, (,a,b,), escaping any
// key that contains a comma or would otherwise parse as a word.
func listString(keys []string) string {
	var b strings.Builder
	b.WriteByte('(')
	for _, k := range keys {
		b.WriteByte(',')
		b.WriteString(stack.Escape(k))
	}
	b.WriteString(",)")
	return b.String()
}

// FormatDuration renders ms in the largest unit that divides it: 1w, 3h,
// 90s, 250ms.
func FormatDuration(ms int64) string {
	if ms == 0 {
		return "0s"
	}
	// Largest unit first. Months and years are left out: they are only
	// names for 30 and 365 days (asl.md §3.1), and days say it exactly.
	units := []struct {
		n    int64
		unit string
	}{{7 * 24 * 3600_000, "w"}, {24 * 3600_000, "d"}, {3600_000, "h"}, {60_000, "m"}, {1000, "s"}}
	for _, u := range units {
		if ms%u.n == 0 {
			return strconv.FormatInt(ms/u.n, 10) + u.unit
		}
	}
	return strconv.FormatInt(ms, 10) + "ms"
}

// withoutKey is keys without k, as a new slice (the input is often a
// node's own key list and must not be modified).
func withoutKey(keys []string, k string) []string {
	out := make([]string, 0, len(keys))
	for _, x := range keys {
		if x != k {
			out = append(out, x)
		}
	}
	return out
}

// equalKeys reports whether two key lists are the same in the same order:
// order matters for a group by's output, so (,a,b,) and (,b,a,) differ.
func equalKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
