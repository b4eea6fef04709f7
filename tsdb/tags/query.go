package tags

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// Op is the kind of a Query node.
type Op uint8

// Query node kinds. The comparison operators are lexical string comparisons,
// as in Atlas (`"1000" < "2"`).
const (
	OpTrue Op = iota
	OpFalse
	OpEq
	OpRe   // regex anchored at the start, not at the end
	OpReIC // OpRe, case-insensitive
	OpIn
	OpHas
	OpLt
	OpLe
	OpGt
	OpGe
	OpAnd
	OpOr
	OpNot
)

var opWords = [...]string{
	OpTrue: ":true", OpFalse: ":false", OpEq: ":eq", OpRe: ":re", OpReIC: ":reic",
	OpIn: ":in", OpHas: ":has", OpLt: ":lt", OpLe: ":le", OpGt: ":gt", OpGe: ":ge",
	OpAnd: ":and", OpOr: ":or", OpNot: ":not",
}

// String returns the stack-language word of the operator.
func (o Op) String() string {
	if int(o) < len(opWords) {
		return opWords[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// Query is an immutable predicate over tag sets: a tree of the query words
// of the stack language. Build it with the constructors (Eq, Re, And, ...);
// the zero Query matches nothing useful and should not be used.
type Query struct {
	op     Op
	key    string
	value  string          // OpEq, comparisons, regex source
	values []string        // OpIn: sorted, unique
	re     *regexp.Regexp  // RE2, when the pattern is RE2 syntax
	bt     *regexp2.Regexp // backtracking, for Java-only syntax
	prefix string          // OpRe: literal prefix every match starts with
	subs   []*Query
}

var (
	trueQuery  = &Query{op: OpTrue}
	falseQuery = &Query{op: OpFalse}
)

// True matches every series.
func True() *Query { return trueQuery }

// False matches no series.
func False() *Query { return falseQuery }

// Eq matches series whose key equals value.
func Eq(key, value string) *Query { return &Query{op: OpEq, key: key, value: value} }

// Has matches series that have key.
func Has(key string) *Query { return &Query{op: OpHas, key: key} }

// Lt, Le, Gt and Ge compare the value of key lexically; series without key
// never match.
func Lt(key, value string) *Query { return &Query{op: OpLt, key: key, value: value} }

// Le is the lexical <= comparison; see Lt.
func Le(key, value string) *Query { return &Query{op: OpLe, key: key, value: value} }

// Gt is the lexical > comparison; see Lt.
func Gt(key, value string) *Query { return &Query{op: OpGt, key: key, value: value} }

// Ge is the lexical >= comparison; see Lt.
func Ge(key, value string) *Query { return &Query{op: OpGe, key: key, value: value} }

// In matches series whose key has one of values. An empty list is False and
// a single value is Eq, as in Atlas.
func In(key string, values []string) *Query {
	vs := slices.Clone(values)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	switch len(vs) {
	case 0:
		return False()
	case 1:
		return Eq(key, vs[0])
	}
	return &Query{op: OpIn, key: key, values: vs}
}

// Re matches series whose value of key matches pattern anchored at the start
// (not at the end), as Atlas's :re does. The pattern uses Go's RE2 syntax.
func Re(key, pattern string) (*Query, error) {
	return newRe(OpRe, key, pattern)
}

// ReIC is Re, case-insensitive.
func ReIC(key, pattern string) (*Query, error) {
	return newRe(OpReIC, key, pattern)
}

// Contains matches values containing s literally.
func Contains(key, s string) *Query {
	return mustRe(key, ".*"+regexp.QuoteMeta(s))
}

// Starts matches values starting with s.
func Starts(key, s string) *Query {
	return mustRe(key, regexp.QuoteMeta(s))
}

// Ends matches values ending with s.
func Ends(key, s string) *Query {
	return mustRe(key, ".*"+regexp.QuoteMeta(s)+"$")
}

func mustRe(key, pattern string) *Query {
	q, err := Re(key, pattern)
	if err != nil {
		// The pattern was built from QuoteMeta output, which always compiles.
		panic("BUG: quoted pattern does not compile: " + err.Error())
	}
	return q
}

// MaxRegexLen bounds the source length of a regex so that a hostile query
// cannot make compilation expensive.
const MaxRegexLen = 4096

func newRe(op Op, key, pattern string) (*Query, error) {
	if len(pattern) > MaxRegexLen {
		return nil, fmt.Errorf("tags: regex for %q longer than %d bytes", key, MaxRegexLen)
	}
	src := "^(?:" + pattern + ")"
	if op == OpReIC {
		src = "(?i)" + src
	}
	q := &Query{op: op, key: key, value: pattern}
	re, err := regexp.Compile(src)
	if err == nil {
		// Fast path: RE2, linear time.
		q.re = re
		if op == OpRe {
			q.prefix = literalPrefix(pattern)
		}
		return q, nil
	}
	// Slow path: Atlas queries are Java regular expressions, and users rely
	// on what RE2 lacks (lookarounds, backreferences). A backtracking engine
	// runs those, with a time limit per match so no pattern can stall a query.
	opts := regexp2.RegexOptions(regexp2.None)
	if op == OpReIC {
		opts |= regexp2.IgnoreCase
	}
	bt, err2 := regexp2.Compile("^(?:"+pattern+")", opts)
	if err2 != nil {
		return nil, fmt.Errorf("tags: invalid regex %q for %q: %w", pattern, key, err)
	}
	bt.MatchTimeout = regexMatchTimeout
	q.bt = bt
	return q, nil
}

// regexMatchTimeout bounds one match of a backtracking regex; a match that
// runs out of time counts as no match.
const regexMatchTimeout = 10 * time.Millisecond

// literalPrefix returns the literal string every match of the start-anchored
// pattern begins with. The index uses it to scan only a sorted value range.
func literalPrefix(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	collectPrefix(re.Simplify(), &b)
	return b.String()
}

// collectPrefix appends the literal prefix of re to b and reports whether re
// is entirely literal (so that what follows it may extend the prefix).
func collectPrefix(re *syntax.Regexp, b *strings.Builder) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
		return true
	case syntax.OpCapture:
		return collectPrefix(re.Sub[0], b)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !collectPrefix(sub, b) {
				return false
			}
		}
		return true
	case syntax.OpPlus, syntax.OpRepeat:
		// At least one repetition (Repeat only when Min >= 1): the sub's
		// prefix is a prefix of the match, but nothing after it is known.
		if re.Op == syntax.OpPlus || re.Min >= 1 {
			collectPrefix(re.Sub[0], b)
		}
		return false
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpBeginLine:
		return true
	}
	return false
}

// And matches series matched by both a and b, simplifying with True/False.
func And(a, b *Query) *Query {
	switch {
	case a.op == OpFalse || b.op == OpFalse:
		return False()
	case a.op == OpTrue:
		return b
	case b.op == OpTrue:
		return a
	}
	return &Query{op: OpAnd, subs: []*Query{a, b}}
}

// Or matches series matched by a or b, simplifying with True/False.
func Or(a, b *Query) *Query {
	switch {
	case a.op == OpTrue || b.op == OpTrue:
		return True()
	case a.op == OpFalse:
		return b
	case b.op == OpFalse:
		return a
	}
	return &Query{op: OpOr, subs: []*Query{a, b}}
}

// Not matches series not matched by q. A series lacking a key is "not equal",
// so Not(Eq(k, v)) matches series without k.
func Not(q *Query) *Query {
	switch q.op {
	case OpTrue:
		return False()
	case OpFalse:
		return True()
	case OpNot:
		return q.subs[0]
	}
	return &Query{op: OpNot, subs: []*Query{q}}
}

// Op returns the node kind.
func (q *Query) Op() Op { return q.op }

// Key returns the tag key of a leaf node ("" for And, Or, Not, True, False).
func (q *Query) Key() string { return q.key }

// Value returns the compared value of OpEq and the comparisons, and the regex
// source of OpRe and OpReIC.
func (q *Query) Value() string { return q.value }

// Values returns the sorted values of OpIn. The caller must not modify it.
func (q *Query) Values() []string { return q.values }

// Prefix returns the literal prefix every value matched by OpRe starts with.
func (q *Query) Prefix() string { return q.prefix }

// Subs returns the operands of And, Or and Not. The caller must not modify it.
func (q *Query) Subs() []*Query { return q.subs }

// MatchValue reports whether a leaf node matches a present value of its key.
// For And/Or/Not/True/False it reports the result for any value.
func (q *Query) MatchValue(v string) bool {
	switch q.op {
	case OpTrue, OpHas:
		return true
	case OpEq:
		return v == q.value
	case OpRe, OpReIC:
		if q.re != nil {
			return q.re.MatchString(v)
		}
		ok, err := q.bt.MatchString(v)
		return ok && err == nil
	case OpIn:
		_, ok := slices.BinarySearch(q.values, v)
		return ok
	case OpLt:
		return v < q.value
	case OpLe:
		return v <= q.value
	case OpGt:
		return v > q.value
	case OpGe:
		return v >= q.value
	}
	return false
}

// Matches reports whether the tag set s satisfies q.
func (q *Query) Matches(s Set) bool {
	switch q.op {
	case OpTrue:
		return true
	case OpFalse:
		return false
	case OpAnd:
		return q.subs[0].Matches(s) && q.subs[1].Matches(s)
	case OpOr:
		return q.subs[0].Matches(s) || q.subs[1].Matches(s)
	case OpNot:
		return !q.subs[0].Matches(s)
	}
	v, ok := s.Get(q.key)
	return ok && q.MatchValue(v)
}

// ExactKeys returns the tags fixed by :eq clauses reachable through :and only
// (not under :or or :not). Aggregates keep these tags on their output.
func (q *Query) ExactKeys() Set {
	var s Set
	q.exact(&s)
	return s.Normalize()
}

func (q *Query) exact(s *Set) {
	switch q.op {
	case OpEq:
		*s = append(*s, Tag{q.key, q.value})
	case OpAnd:
		q.subs[0].exact(s)
		q.subs[1].exact(s)
	}
}

// Keys returns the sorted tag keys the query refers to.
func (q *Query) Keys() []string {
	var ks []string
	q.walk(func(n *Query) {
		if n.key != "" {
			ks = append(ks, n.key)
		}
	})
	slices.Sort(ks)
	return slices.Compact(ks)
}

func (q *Query) walk(fn func(*Query)) {
	fn(q)
	for _, s := range q.subs {
		s.walk(fn)
	}
}

// String renders q in the stack language, e.g. `name,cpu,:eq,app,api,:re,:and`.
func (q *Query) String() string {
	var b strings.Builder
	q.appendASL(&b)
	return b.String()
}

func (q *Query) appendASL(b *strings.Builder) {
	sep := func() {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
	}
	switch q.op {
	case OpTrue, OpFalse:
		sep()
	case OpAnd, OpOr:
		q.subs[0].appendASL(b)
		q.subs[1].appendASL(b)
		sep()
	case OpNot:
		q.subs[0].appendASL(b)
		sep()
	case OpHas:
		sep()
		b.WriteString(escapeToken(q.key))
		b.WriteByte(',')
	case OpIn:
		sep()
		b.WriteString(escapeToken(q.key))
		b.WriteString(",(")
		for _, v := range q.values {
			b.WriteByte(',')
			b.WriteString(escapeToken(v))
		}
		b.WriteString(",),")
	default:
		sep()
		b.WriteString(escapeToken(q.key))
		b.WriteByte(',')
		b.WriteString(escapeToken(q.value))
		b.WriteByte(',')
	}
	b.WriteString(q.op.String())
}

// escapeToken escapes characters that would split or change a stack-language
// token (commas, parentheses, leading colons, surrounding spaces).
func escapeToken(s string) string {
	needs := s == "" || strings.HasPrefix(s, ":") || s == "(" || s == ")"
	for _, r := range s {
		if r == ',' || r < 0x20 || r == utf8.RuneError {
			needs = true
		}
	}
	if !needs && strings.TrimSpace(s) == s {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == ',' || r < 0x20 || (i == 0 && (r == ':' || r == ' ' || r == '(' || r == ')')) ||
			(r == ' ' && i == len(s)-1):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
