package eval

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// lowbias64 is a 64-bit integer hash (Chris Wellons' hash prospector); it
// makes :random deterministic per timestamp.
func lowbias64(x uint64) uint64 {
	x ^= x >> 32
	x *= 0xd6e8feb86659fd93
	x ^= x >> 32
	x *= 0xd6e8feb86659fd93
	x ^= x >> 32
	return x
}

// randomAt maps a timestamp to [0, 1) like Atlas: |hash| % 1000 / 1000.
func randomAt(t int64) float64 {
	h := int64(lowbias64(uint64(t)))
	if h < 0 {
		h = -h // MinInt64 stays negative, as Java's Math.abs
	}
	return float64(h%1000) / 1000
}

// random is :random and :srandom. The value is a hash of the timestamp,
// not a random draw, so a graph and its refresh, or two replicas of the
// server, draw the same line: it is for demos and tests that need noise
// they can reproduce.
func (x *run) random(r *expr.Random) ([]Series, error) {
	if !r.Seeded {
		// A generated line is evaluated at each step's timestamp, the end
		// of the step (asl.md §3.2), so it lines up with data lines.
		return x.generate(tags.New(tags.NameKey, "random"), "random", randomAt)
	}
	// The seed is XORed into the timestamp (asl.md §2.5): two seeds
	// give unrelated lines from the same hash.
	label := fmt.Sprintf("seeded-random(%d)", r.Seed)
	return x.generate(tags.New(tags.NameKey, label), label, func(t int64) float64 { return randomAt(t ^ r.Seed) })
}

// time is :time, a line of a calendar field (hourOfDay, dayOfWeek, ...)
// or of the time itself, used to build schedules into expressions (e.g.
// alert thresholds that differ at night).
func (x *run) time(tm *expr.Time) ([]Series, error) {
	f, err := timeField(tm.Mode)
	if err != nil {
		return nil, err
	}
	return x.generate(tags.New(tags.NameKey, tm.Mode), tm.Mode, f)
}

// timeField returns the value of a time field at t (UTC).
func timeField(mode string) (func(t int64) float64, error) {
	// since is a duration since the epoch as a fraction (seconds as a
	// double, as Atlas); cal a calendar field of t in UTC, never the
	// graph's tz, as Atlas evaluates :time (asl.md §2.5).
	since := func(div float64) func(int64) float64 { return func(t int64) float64 { return float64(t) / div } }
	cal := func(f func(time.Time) int) func(int64) float64 {
		return func(t int64) float64 { return float64(f(time.UnixMilli(t).UTC())) }
	}
	switch mode {
	case "seconds", "INSTANT_SECONDS":
		// ChronoField.INSTANT_SECONDS is whole seconds, floored, where
		// Atlas's own "seconds" keeps the fraction.
		if mode == "INSTANT_SECONDS" {
			return func(t int64) float64 { return float64(floorDiv(t, 1000)) }, nil
		}
		return since(1e3), nil
	case "minutes":
		return since(60e3), nil
	case "hours":
		return since(3600e3), nil
	case "days":
		return since(86400e3), nil
	case "weeks":
		return since(7 * 86400e3), nil
	case "secondOfMinute", "SECOND_OF_MINUTE":
		return cal(func(t time.Time) int { return t.Second() }), nil
	case "secondOfDay", "SECOND_OF_DAY":
		return cal(func(t time.Time) int { return t.Hour()*3600 + t.Minute()*60 + t.Second() }), nil
	case "minuteOfHour", "MINUTE_OF_HOUR":
		return cal(func(t time.Time) int { return t.Minute() }), nil
	case "minuteOfDay", "MINUTE_OF_DAY":
		return cal(func(t time.Time) int { return t.Hour()*60 + t.Minute() }), nil
	case "hourOfDay", "HOUR_OF_DAY":
		return cal(func(t time.Time) int { return t.Hour() }), nil
	case "HOUR_OF_AMPM":
		return cal(func(t time.Time) int { return t.Hour() % 12 }), nil
	case "AMPM_OF_DAY":
		return cal(func(t time.Time) int { return t.Hour() / 12 }), nil
	case "dayOfWeek", "DAY_OF_WEEK":
		// ISO: Monday is 1, Sunday 7.
		return cal(func(t time.Time) int { return (int(t.Weekday())+6)%7 + 1 }), nil
	case "dayOfMonth", "DAY_OF_MONTH":
		return cal(func(t time.Time) int { return t.Day() }), nil
	case "dayOfYear", "DAY_OF_YEAR":
		return cal(func(t time.Time) int { return t.YearDay() }), nil
	case "ALIGNED_WEEK_OF_YEAR":
		return cal(func(t time.Time) int { return (t.YearDay()-1)/7 + 1 }), nil
	case "monthOfYear", "MONTH_OF_YEAR":
		return cal(func(t time.Time) int { return int(t.Month()) }), nil
	case "yearOfCentury", "yearOfEra", "YEAR", "YEAR_OF_ERA":
		// Atlas maps yearOfCentury to the year as well.
		return cal(func(t time.Time) int { return t.Year() }), nil
	case "PROLEPTIC_MONTH":
		return cal(func(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }), nil
	case "EPOCH_DAY":
		return func(t int64) float64 { return float64(floorDiv(t, 86400e3)) }, nil
	case "MILLI_OF_SECOND":
		return func(t int64) float64 { return float64(t - floorDiv(t, 1000)*1000) }, nil
	}
	return nil, userErrorf("unknown time mode %q", mode)
}

// floorDiv is Java's Math.floorDiv: division rounding toward negative
// infinity, so a time before the epoch lands in the right day or second.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// timeSpan resolves its bounds against the range: gs and ge are the range
// start and end, s and e each other.
func (x *run) timeSpan(ts *expr.TimeSpan) ([]Series, error) {
	// Unlike :time, :time-span's bounds are dates the user wrote: they
	// are read in the graph's tz (the zone the parser recorded).
	loc := time.UTC
	if ts.Zone != "" {
		l, err := time.LoadLocation(ts.Zone)
		if err != nil {
			return nil, userErrorf("invalid time zone %q for :time-span: %v", ts.Zone, err)
		}
		loc = l
	}
	// One clock reading for both bounds, and the evaluator's injected
	// clock: a test pins now-1h exactly.
	now := x.ev.opts.Now()
	refs := expr.TimeRefs{"gs": x.r.Start, "ge": x.r.End}
	sRel, eRel := refersTo(ts.Start, "e"), refersTo(ts.End, "s")
	switch {
	case sRel && eRel:
		return nil, userErrorf("time span start %q and end %q are relative to each other", ts.Start, ts.End)
	case refersTo(ts.Start, "s"):
		return nil, userErrorf("time span start %q is relative to itself", ts.Start)
	case refersTo(ts.End, "e"):
		return nil, userErrorf("time span end %q is relative to itself", ts.End)
	}
	var s, e int64
	var err error
	if sRel {
		if e, err = expr.ParseTime(ts.End, loc, now, refs); err == nil {
			refs["e"] = e
			s, err = expr.ParseTime(ts.Start, loc, now, refs)
		}
	} else {
		if s, err = expr.ParseTime(ts.Start, loc, now, refs); err == nil {
			refs["s"] = s
			e, err = expr.ParseTime(ts.End, loc, now, refs)
		}
	}
	if err != nil {
		return nil, userErrorf(":time-span: %v", err)
	}
	if s > e {
		return nil, userErrorf("time span start %q is after its end %q", ts.Start, ts.End)
	}
	name := ts.Start + " to " + ts.End
	return x.generate(tags.New(tags.NameKey, name), name, func(t int64) float64 {
		// Both bounds inclusive (asl.md §2.5): a span from s to s is one
		// step wide when s falls on a step.
		if s <= t && t <= e {
			return 1
		}
		return 0
	})
}

// refersTo reports whether a time string is relative to the named reference.
func refersTo(s, name string) bool {
	s = strings.TrimSpace(s)
	return s == name || strings.HasPrefix(s, name+"-") || strings.HasPrefix(s, name+"+")
}

// unary applies a pointwise word to every line. The line keeps its tags;
// its label wraps the input's as Atlas's does (abs(x), clamp-min(x, 0.0)).
func (x *run) unary(u *expr.Unary) ([]Series, error) {
	in, err := x.eval(u.Expr)
	if err != nil {
		return nil, err
	}
	f := expr.UnaryFunc(u.Op)
	label := u.Op.String() + "(%s)"
	switch u.Op {
	case expr.OpPerStep:
		// :per-step multiplies a rate per second by the step in seconds:
		// the amount per step, which depends on the graph's step.
		k := float64(x.r.Step) / 1000
		f = func(v float64) float64 { return v * k }
	case expr.OpClampMin:
		lo := u.Arg
		f = func(v float64) float64 {
			if v < lo {
				return lo
			}
			return v
		}
		label = u.Op.String() + "(%s, " + expr.FormatDouble(lo) + ")"
	case expr.OpClampMax:
		hi := u.Arg
		f = func(v float64) float64 {
			if v > hi {
				return hi
			}
			return v
		}
		label = u.Op.String() + "(%s, " + expr.FormatDouble(hi) + ")"
	}
	if f == nil {
		return nil, fmt.Errorf("BUG: unary operation %v", u.Op)
	}
	return x.mapLines(in, label, f)
}

// mapLines applies f to every value of every line into new lines.
func (x *run) mapLines(in []Series, labelFmt string, f func(float64) float64) ([]Series, error) {
	out := make([]Series, len(in))
	for i, s := range in {
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		for j, a := range s.Values {
			v[j] = f(a)
		}
		out[i] = Series{Tags: s.Tags, Label: strings.Replace(labelFmt, "%s", s.Label, 1), Values: v, Offset: s.Offset}
	}
	return out, nil
}

// binaryLabels are the legend formats of the binary operations (Atlas's).
var binaryLabels = map[expr.BinaryOp]string{
	expr.OpAdd: "(%s + %s)", expr.OpSub: "(%s - %s)", expr.OpMul: "(%s * %s)", expr.OpDiv: "(%s / %s)", expr.OpPow: "pow(%s, %s)",
	expr.OpGT: "(%s > %s)", expr.OpGE: "(%s >= %s)", expr.OpLT: "(%s < %s)", expr.OpLE: "(%s <= %s)",
	expr.OpFAdd: "(%s + %s)", expr.OpFSub: "(%s - %s)", expr.OpFMul: "(%s * %s)", expr.OpFDiv: "(%s / %s)",
	expr.OpAnd: "(%s AND %s)", expr.OpOr: "(%s OR %s)",
}

// binary joins the lines of both sides on the grouping keys: the side with
// more keys drives and keeps its tags; each of its lines is paired with the
// other side's line of the same group, and dropped if there is none.
func (x *run) binary(b *expr.Binary) ([]Series, error) {
	ls, err := x.eval(b.L)
	if err != nil {
		return nil, err
	}
	rs, err := x.eval(b.R)
	if err != nil {
		return nil, err
	}
	f := expr.BinaryFunc(b.Op)
	// The side with the finer grouping drives (asl.md §2.5); with equal
	// groupings the left side does, so its tags are the result's.
	lhs := b.LHSDrives()
	drive, other, keys := ls, rs, b.R.Grouping()
	if !lhs {
		drive, other, keys = rs, ls, b.L.Grouping()
	}
	index := make(map[string]int, len(other))
	for i, s := range other {
		k := joinKey(keys, s.Tags)
		// Two lines of the joined side with one key (an ungrouped side
		// of several lines, :all) leave the join ambiguous: Atlas refuses
		// it too, as the user's error.
		if _, dup := index[k]; dup {
			return nil, userErrorf("binary operation %s: more than one line for group %s on one side", b.Op, keyDesc(keys, s.Tags))
		}
		index[k] = i
	}
	format := binaryLabels[b.Op]
	out := make([]Series, 0, len(drive))
	for _, d := range drive {
		j, ok := index[joinKey(keys, d.Tags)]
		// A driving line with no partner is dropped, not joined to NaN:
		// that is Atlas's inner join.
		if !ok {
			continue
		}
		o := other[j]
		l, r := d, o
		if !lhs {
			l, r = o, d
		}
		v, err := x.alloc()
		if err != nil {
			return nil, err
		}
		for i := range v {
			v[i] = f(l.Values[i], r.Values[i])
		}
		label := strings.Replace(strings.Replace(format, "%s", l.Label, 1), "%s", r.Label, 1)
		out = append(out, Series{Tags: d.Tags, Label: label, Values: v, Offset: d.Offset})
	}
	return out, nil
}

// joinKey is the values of keys in ts, order-independent of how the other
// side listed the keys. Ungrouped sides have the empty key.
func joinKey(keys []string, ts tags.Set) string {
	if len(keys) == 0 {
		return ""
	}
	// Sorted so that (,a,b,) on one side joins (,b,a,) on the other.
	ks := slices.Clone(keys)
	slices.Sort(ks)
	var b strings.Builder
	for _, k := range ks {
		v, ok := ts.Get(k)
		if !ok {
			// A marker no tag value contains: a line missing the key
			// must not join a line whose value is the empty string.
			b.WriteString("\x01")
		}
		b.WriteString(v)
		b.WriteByte(0)
	}
	return b.String()
}

// keyDesc names a group in an error message, as its legend would.
func keyDesc(keys []string, ts tags.Set) string {
	if s, ok := expr.GroupLabel(keys, ts); ok {
		return s
	}
	return "()"
}

// aggregator combines lines per step with NaN-aware operations. NaN means
// "no data", not a number: a step where no line has data stays NaN, and
// one line's gap does not turn the sum of the others into NaN (Atlas's
// semantics, which the conformance vectors pin down).
type aggregator struct {
	fn  expr.AggFn
	out []float64
	n   int // lines added
}

// add folds one line into out, step by step. out starts all NaN (alloc),
// so the first value seen at a step replaces NaN rather than adding to
// it, for every function.
func (a *aggregator) add(v []float64) {
	a.n++
	for i, x := range v {
		cur := a.out[i]
		switch a.fn {
		case expr.Sum:
			a.out[i] = expr.AddNaN(cur, x)
		case expr.Count:
			if x == x {
				a.out[i] = expr.AddNaN(cur, 1)
			}
		case expr.Min:
			if x == x && (cur != cur || x < cur) {
				a.out[i] = x
			}
		case expr.Max:
			if x == x && (cur != cur || x > cur) {
				a.out[i] = x
			}
		}
	}
}

// mathAgg aggregates all lines into one, tagged with the exact tags of the
// first data expression's query found on the first line.
func (x *run) mathAgg(m *expr.MathAgg) ([]Series, error) {
	in, err := x.eval(m.Expr)
	if err != nil {
		return nil, err
	}
	// Aggregating nothing gives the NO DATA line, not no line, so that
	// a graph of an aggregate always has its line (asl.md §2.5).
	if len(in) == 0 {
		return x.noData(nil)
	}
	v, err := x.alloc()
	if err != nil {
		return nil, err
	}
	a := aggregator{fn: m.Fn, out: v}
	for _, s := range in {
		a.add(s.Values)
	}
	// The result is tagged like Atlas's: the exact-match keys of the
	// first query that the first line carries (name=sps of
	// name,sps,:eq,:sum), which legends and later joins rely on.
	var keep tags.Set
	if ds := expr.DataExprs(m.Expr); len(ds) > 0 {
		for _, t := range ds[0].DataQuery().ExactKeys() {
			if val, ok := in[0].Tags.Get(t.Key); ok {
				keep = append(keep, tags.Tag{Key: t.Key, Value: val})
			}
		}
	}
	return []Series{{Tags: keep, Label: m.Fn.String() + "(" + TagsLabel(keep) + ")", Values: v, Offset: in[0].Offset}}, nil
}

// mathGroupBy aggregates a grouped expression's lines by a subset of its
// keys: tags keep the group keys and the exact keys every query shares.
func (x *run) mathGroupBy(g *expr.MathGroupBy) ([]Series, error) {
	in, err := x.eval(g.Agg.Expr)
	if err != nil {
		return nil, err
	}
	// The tags kept are the group keys plus the exact keys that every
	// query of the expression pins: a key one query pins and another
	// does not has no single value for the group.
	var common tags.Set
	for i, d := range expr.DataExprs(g.Agg.Expr) {
		ex := d.DataQuery().ExactKeys()
		if i == 0 {
			common = ex
			continue
		}
		common = slices.DeleteFunc(common, func(t tags.Tag) bool { return !ex.Has(t.Key) })
	}
	type group struct {
		label string
		tags  tags.Set
		agg   aggregator
	}
	groups := map[string]*group{}
	for _, s := range in {
		// A line without one of the keys belongs to no group: dropped,
		// as a data group by drops a series that lacks a key.
		label, ok := expr.GroupLabel(g.Keys, s.Tags)
		if !ok {
			continue
		}
		gr := groups[label]
		if gr == nil {
			v, err := x.alloc()
			if err != nil {
				return nil, err
			}
			var ts tags.Set
			for _, t := range s.Tags {
				if common.Has(t.Key) || slices.Contains(g.Keys, t.Key) {
					ts = append(ts, t)
				}
			}
			gr = &group{label: label, tags: ts, agg: aggregator{fn: g.Agg.Fn, out: v}}
			groups[label] = gr
		}
		gr.agg.add(s.Values)
	}
	out := make([]Series, 0, len(groups))
	for _, gr := range groups {
		out = append(out, Series{Tags: gr.tags, Label: gr.label, Values: gr.agg.out})
	}
	// A map has no order: sort by the group label, so the answer
	// does not depend on map iteration.
	slices.SortFunc(out, func(a, b Series) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

// as renames a tag key in the results (:as). A line that already has the
// new key loses that tag to the renamed one, so the result holds the key
// once; Normalize restores the sorted order a tags.Set requires.
func (x *run) as(a *expr.As) ([]Series, error) {
	in, err := x.eval(a.Expr)
	if err != nil {
		return nil, err
	}
	out := make([]Series, len(in))
	for i, s := range in {
		out[i] = s
		if v, ok := s.Tags.Get(a.From); ok {
			ts := make(tags.Set, 0, len(s.Tags))
			for _, t := range s.Tags {
				if t.Key != a.From && t.Key != a.To {
					ts = append(ts, t)
				}
			}
			ts = append(ts, tags.Tag{Key: a.To, Value: v})
			out[i].Tags = ts.Normalize()
		}
	}
	return out, nil
}
