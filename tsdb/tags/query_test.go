package tags

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatches(t *testing.T) {
	t.Parallel()
	s := New("name", "sps", "app", "api01", "node", "i-1", "status", "1000")
	must := func(q *Query, err error) *Query {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	f := func(q *Query, want bool) {
		t.Helper()
		if got := q.Matches(s); got != want {
			t.Errorf("%s.Matches(%v) = %v, want %v", q, s, got, want)
		}
	}
	f(True(), true)
	f(False(), false)
	f(Eq("name", "sps"), true)
	f(Eq("name", "sp"), false)
	f(Eq("missing", ""), false)
	f(Has("node"), true)
	f(Has("zone"), false)
	f(must(Re("app", "api")), true)    // anchored at start only
	f(must(Re("app", "pi01")), false)  // not a substring match
	f(must(Re("app", "api0$")), false) // explicit end anchor
	f(must(ReIC("app", "API")), true)  // case-insensitive
	f(must(Re("app", "API")), false)   // case-sensitive
	f(Contains("app", "i0"), true)     // anywhere
	f(Contains("app", "."), false)     // literal, not a regex dot
	f(Starts("app", "api"), true)
	f(Ends("app", "01"), true)
	f(Ends("app", "0"), false)
	f(In("app", []string{"www", "api01"}), true)
	f(In("app", []string{"www"}), false)
	f(In("app", nil), false)
	f(Lt("status", "2"), true) // lexical: "1000" < "2"
	f(Le("status", "1000"), true)
	f(Gt("status", "2"), false)
	f(Ge("status", "1000"), true)
	f(Lt("zone", "z"), false) // missing key never compares
	f(Not(Eq("zone", "a")), true)
	f(Not(Eq("name", "sps")), false)
	f(And(Eq("name", "sps"), Has("node")), true)
	f(And(Eq("name", "sps"), Has("zone")), false)
	f(Or(Eq("name", "x"), Has("node")), true)
	f(Or(Eq("name", "x"), Has("zone")), false)
}

func TestSimplify(t *testing.T) {
	t.Parallel()
	q := Eq("a", "b")
	f := func(got, want *Query) {
		t.Helper()
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	f(And(True(), q), q)
	f(And(q, False()), False())
	f(Or(False(), q), q)
	f(Or(q, True()), True())
	f(Not(Not(q)), q)
	f(Not(True()), False())
	if op := In("a", []string{"b"}).Op(); op != OpEq {
		t.Errorf("In with one value has op %v, want %v", op, OpEq)
	}
}

func TestLiteralPrefix(t *testing.T) {
	t.Parallel()
	f := func(pattern, want string) {
		t.Helper()
		if got := literalPrefix(pattern); got != want {
			t.Errorf("literalPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
	f("api.*", "api")
	f("api", "api")
	f("a.c", "a")
	f("(api)x", "apix")
	f(".*foo", "")
	f("api|apx", "ap") // the parser factors common prefixes
	f("(?:x|y)z", "")
	f("ab+", "ab")
	f("[", "")
}

func TestExactKeysAndString(t *testing.T) {
	t.Parallel()
	q := And(And(Eq("name", "cpu"), Or(Eq("app", "a"), Eq("app", "b"))), Not(Eq("zone", "z")))
	if diff := cmp.Diff(New("name", "cpu"), q.ExactKeys()); diff != "" {
		t.Errorf("ExactKeys() mismatch (-want +got):\n%s", diff)
	}
	want := "name,cpu,:eq,app,a,:eq,app,b,:eq,:or,:and,zone,z,:eq,:not,:and"
	if got := q.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := In("k", []string{"b", "a,b"}).String(); got != `k,(,a\u002cb,b,),:in` {
		t.Errorf("In String() = %q", got)
	}
	if diff := cmp.Diff([]string{"app", "name", "zone"}, q.Keys()); diff != "" {
		t.Errorf("Keys() mismatch (-want +got):\n%s", diff)
	}
}

func TestRegexLimits(t *testing.T) {
	t.Parallel()
	if _, err := Re("k", "("); err == nil {
		t.Error("Re with a bad pattern succeeded")
	}
	if _, err := Re("k", string(make([]byte, MaxRegexLen+1))); err == nil {
		t.Error("Re with an oversized pattern succeeded")
	}
}

func TestJavaRegex(t *testing.T) {
	t.Parallel()
	q, err := Re("status", "4(?!04)")
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"400": true, "404": false, "500": false, "4": true} {
		if got := q.MatchValue(v); got != want {
			t.Errorf("4(?!04) on %q = %v, want %v", v, got, want)
		}
	}
	q, err = ReIC("name", `(a)\1`)
	if err != nil {
		t.Fatal(err)
	}
	if !q.MatchValue("AAx") || q.MatchValue("ab") {
		t.Errorf("backreference with ignore case")
	}
	if _, err := Re("k", "(unclosed"); err == nil {
		t.Errorf("invalid regex accepted")
	}
	// A catastrophic pattern runs out of time instead of stalling.
	q, err = Re("k", `(a+)+(?=b)\1c`)
	if err != nil {
		t.Fatal(err)
	}
	if q.MatchValue(strings.Repeat("a", 40)) {
		t.Errorf("catastrophic pattern matched")
	}
}
