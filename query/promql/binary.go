package promql

import (
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

// binary evaluates arithmetic and comparisons between scalars and vectors.
func (x *run) binary(b *parser.BinaryExpr) (value, error) {
	// Both sides are evaluated over the whole range first; the
	// operation then runs point by point, a scalar being one value per
	// point (time() varies), not a constant.
	lv, err := x.eval(b.LHS)
	if err != nil {
		return nil, err
	}
	rv, err := x.eval(b.RHS)
	if err != nil {
		return nil, err
	}
	op, isBool := b.Op, b.ReturnBool
	switch l := lv.(type) {
	// Between two scalars a comparison must use bool (the parser
	// enforces it), so only an absent point (NaN) is dropped.
	case scalar:
		switch r := rv.(type) {
		case scalar:
			out := make(scalar, x.n)
			for i := range out {
				v, keep := binop(op, l[i], r[i], isBool)
				if !keep {
					v = math.NaN()
				}
				out[i] = v
			}
			return out, nil
		case vector:
			return vectorScalar(r, l, op, isBool, true), nil
		}
	case vector:
		switch r := rv.(type) {
		case scalar:
			return vectorScalar(l, r, op, isBool, false), nil
		case vector:
			return vectorVector(l, r, b)
		}
	}
	return nil, badData("operator %s is not defined between %T and %T", op, lv, rv)
}

// binop applies op; keep is false when a comparison without bool filters
// the element out. For comparisons the value kept is a.
func binop(op parser.ItemType, a, b float64, isBool bool) (v float64, keep bool) {
	// A NaN here is an absent point (the store keeps no NaN sample):
	// the pair has no result at that point, whatever the operator.
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN(), false
	}
	switch op {
	case parser.ADD:
		return a + b, true
	case parser.SUB:
		return a - b, true
	case parser.MUL:
		return a * b, true
	// IEEE division, as Prometheus: x/0 is ±Inf and 0/0 NaN, unlike
	// Atlas's :div. The same store answers both languages with their
	// own semantics.
	case parser.DIV:
		return a / b, true
	case parser.MOD:
		return math.Mod(a, b), true
	case parser.POW:
		return math.Pow(a, b), true
	}
	var c bool
	switch op {
	case parser.EQLC:
		c = a == b
	case parser.NEQ:
		c = a != b
	case parser.GTR:
		c = a > b
	case parser.LSS:
		c = a < b
	case parser.GTE:
		c = a >= b
	case parser.LTE:
		c = a <= b
	}
	// With bool a comparison yields 0 or 1 and keeps every element;
	// without it, it filters, keeping the left value where true.
	if isBool {
		if c {
			return 1, true
		}
		return 0, true
	}
	return a, c
}

// dropsName reports whether the result of op loses the name tag: every
// arithmetic operation, and comparisons with bool.
func dropsName(op parser.ItemType, isBool bool) bool {
	return !op.IsComparisonOperator() || isBool
}

// vectorScalar applies op between each element of v and s; swapped means
// the scalar is on the left. A filtering comparison keeps the vector's
// value whichever side it is on.
func vectorScalar(v vector, s scalar, op parser.ItemType, isBool, swapped bool) vector {
	out := make(vector, 0, len(v))
	drop := dropsName(op, isBool)
	for _, sr := range v {
		vals := make([]float64, len(sr.v))
		for i, f := range sr.v {
			a, b := f, s[i]
			if swapped {
				a, b = b, a
			}
			r, keep := binop(op, a, b, isBool)
			switch {
			case !keep:
				r = math.NaN()
			case op.IsComparisonOperator() && !isBool:
				r = f
			}
			vals[i] = r
		}
		ts := sr.tags
		if drop {
			ts = dropName(ts)
		}
		out = append(out, series{tags: ts, v: vals})
	}
	return out
}

// vectorVector matches the elements of two vectors on their tags (all but
// the name, or those of on/ignoring) and applies op to each pair, per
// point, with Prometheus's one-to-one and group_left/group_right rules.
func vectorVector(l, r vector, b *parser.BinaryExpr) (vector, error) {
	m := b.VectorMatching
	if m == nil {
		m = &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	// The label names of on()/ignoring() in the store's spelling
	// (__name__ becomes name, escaped names their keys).
	matching := storeKeys(m.MatchingLabels)
	// sig is the match key of a series: the canonical encoding of the tags
	// that on() names, or of all tags but the name and those ignoring()
	// names. Two elements match when their keys are equal.
	sig := func(ts tags.Set) string {
		if m.On {
			return string(only(ts, matching).AppendTo(nil))
		}
		return string(without(ts, append(slices.Clone(matching), tags.NameKey)...).AppendTo(nil))
	}
	// One side may have several elements per match key (group_left lets
	// the left do, group_right the right); the other must have at most
	// one. A one-to-one match is the many-to-one case where "many" happens
	// to hold one element per key, so one loop serves all three.
	many, one := l, r
	swapped := m.Card == parser.CardOneToMany
	if swapped {
		many, one = r, l
	}
	oneBySig := map[string][]int{}
	for i, s := range one {
		k := sig(s.tags)
		oneBySig[k] = append(oneBySig[k], i)
	}
	// The "one" side must hold at most one value per group and point.
	// Prometheus checks this per evaluation time, and so do we: two series
	// of a group that never overlap in time (a pod replaced by another
	// with the same matching labels) are not an error.
	for _, idx := range oneBySig {
		if len(idx) < 2 {
			continue
		}
		for p := range one[idx[0]].v {
			present := 0
			for _, j := range idx {
				if !math.IsNaN(one[j].v[p]) {
					present++
				}
			}
			if present > 1 {
				side := "right"
				if swapped {
					side = "left"
				}
				return nil, &Error{Type: Execution, Msg: fmt.Sprintf("found duplicate series for the match group %s on the %s hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side", promTags(one[idx[0]].tags), side)}
			}
		}
	}
	drop := dropsName(b.Op, b.ReturnBool)
	include := storeKeys(m.Include)
	var out vector
	byTags := map[string]int{}
	for _, ms := range many {
		for _, j := range oneBySig[sig(ms.tags)] {
			os := one[j]
			ts := resultTags(ms.tags, os.tags, m, matching, include, drop)
			vals := make([]float64, len(ms.v))
			hit := false
			for p := range vals {
				fl, fr := ms.v[p], os.v[p]
				if swapped {
					fl, fr = fr, fl
				}
				v, keep := binop(b.Op, fl, fr, b.ReturnBool)
				if !keep {
					v = math.NaN()
				}
				vals[p] = v
				hit = hit || keep
			}
			// A pair that a filtering comparison removed at every point
			// is not in the result at all, as in Prometheus.
			if !hit {
				continue
			}
			key := string(ts.AppendTo(nil))
			k, seen := byTags[key]
			if !seen {
				byTags[key] = len(out)
				out = append(out, series{tags: ts, v: vals})
				continue
			}
			// Two pairs with the same result tags: fine while they never
			// meet at one point.
			for p, v := range vals {
				if math.IsNaN(v) {
					continue
				}
				if !math.IsNaN(out[k].v[p]) {
					msg := "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
					if m.Card != parser.CardOneToOne {
						msg = "multiple matches for labels: grouping labels must ensure unique matches"
					}
					return nil, &Error{Type: Execution, Msg: msg}
				}
				out[k].v[p] = v
			}
		}
	}
	return out, nil
}

// resultTags are the tags of a matched pair: the "many" side's, without
// the name for arithmetic, restricted to on() or without ignoring() for
// one-to-one matches, plus the included tags of the "one" side.
func resultTags(many, one tags.Set, m *parser.VectorMatching, matching, include []string, drop bool) tags.Set {
	ts := many
	if drop {
		ts = dropName(ts)
	}
	if m.Card == parser.CardOneToOne {
		if m.On {
			ts = only(ts, matching)
		} else {
			ts = without(ts, matching...)
		}
	}
	if len(include) == 0 {
		return ts
	}
	out := slices.Clone(without(ts, include...))
	for _, k := range include {
		if v, ok := one.Get(k); ok {
			out = append(out, tags.Tag{Key: k, Value: v})
		}
	}
	return out.Normalize()
}

// storeKeys maps Prometheus label names to tag keys.
func storeKeys(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = StoreKey(k)
	}
	return out
}
