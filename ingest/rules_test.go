package ingest

import (
	"strings"
	"testing"

	"github.com/sextant-dev/sextant/tsdb/tags"
)

func TestRules(t *testing.T) {
	t.Parallel()
	r := DefaultRules()
	long := func(n int) string { return strings.Repeat("a", n) }
	f := func(ts tags.Set, wantReason, wantMsg string) {
		t.Helper()
		reason, msg := r.Validate(ts.Normalize())
		if reason != wantReason || msg != wantMsg {
			t.Errorf("Validate(%v) = %q, %q; want %q, %q", ts, reason, msg, wantReason, wantMsg)
		}
	}
	ok := func(kv ...string) {
		t.Helper()
		f(tags.New(kv...), "", "")
	}
	ok("name", "cpu", "app", "www-01.a_b^c~d")
	ok("name", "cpu", "nf.app", "www", "nf.country.rollup", "x", "atlas.dstype", "gauge")
	f(tags.New("app", "x"), ReasonMissingName, "missing key 'name'")
	f(tags.New("name", "cpu", "a", "x"), ReasonKeyLength, "key too short: [a] (1 < 2)")
	f(tags.New("name", "cpu", long(61), "x"), ReasonKeyLength, "key too long: ["+long(61)+"] (61 > 60)")
	f(tags.New("name", "c"), ReasonValueLength, "value too short: name = [c] (1 < 2)")
	f(tags.New("name", long(256)), ReasonValueLength, "value too long: name = ["+long(256)+"] (256 > 255)")
	ok("name", long(255), "k1", long(120))
	f(tags.New("name", "cpu", "k1", ""), ReasonValueLength, "value too short: k1 = [] (0 < 1)")
	f(tags.New("name", "cpu", "k1", long(121)), ReasonValueLength, "value too long: k1 = ["+long(121)+"] (121 > 120)")
	f(tags.New("name", "cpu", "k/1", "x"), ReasonCharacters, "invalid characters in key: [k/1] ([-._A-Za-z0-9^~] are allowed)")
	f(tags.New("name", "cpu", "k1", "a b"), ReasonCharacters, "invalid characters in value: k1 = [a b] ([-._A-Za-z0-9^~] are allowed)")
	f(tags.New("name", "cpu", "nf.bogus", "x"), ReasonReserved, "invalid key for reserved prefix 'nf.': nf.bogus")
	f(tags.New("name", "cpu", "atlas.foo", "x"), ReasonReserved, "invalid key for reserved prefix 'atlas.': atlas.foo")

	many := tags.New("name", "cpu")
	for i := range 20 {
		many = append(many, tags.Tag{Key: "k" + string(rune('a'+i)), Value: "v"})
	}
	f(many, ReasonUserTags, "too many user tags: 21 > 20")
	// Restricted keys do not count as user tags, but count toward the total.
	withNF := tags.New("name", "cpu")
	for i := range 19 {
		withNF = append(withNF, tags.Tag{Key: "k" + string(rune('a'+i)), Value: "v"})
	}
	for _, k := range []string{"nf.app", "nf.node", "nf.zone", "nf.region", "nf.asg", "nf.cluster", "nf.stack", "nf.vmtype", "nf.ami", "nf.task"} {
		withNF = append(withNF, tags.Tag{Key: k, Value: "v"})
	}
	f(withNF, "", "")
	withNF = append(withNF, tags.Tag{Key: "nf.job", Value: "v"})
	f(withNF, ReasonTags, "too many tags: 31 > 30")
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	r := DefaultRules()
	for in, want := range map[string]string{"service.name": "service.name", "http.status code": "http.status_code", "a/b:c": "a_b_c", "ünï": "__n__"} {
		if got := r.Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
