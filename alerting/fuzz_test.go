package alerting_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sextant-dev/sextant/alerting"
)

// FuzzParseFile: the rule file parser never panics, and what it accepts
// has named groups and rules with expressions.
func FuzzParseFile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(string(b))
		}
	}
	f.Add(cpuRules)
	f.Add(flappyRules)
	f.Add("groups: [{name: g, rules: [{alert: A, expr: '1,:foo'}]}]")
	f.Add(`{"groups":[{"name":"g","interval":"2m","rules":[{"alert":"A","expr":"name,x,:eq","for":"1m"}]}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		groups, err := alerting.ParseFile("f.yaml", []byte(in), alerting.ParseOptions{Step: 60_000})
		if err != nil {
			if err.Error() == "" {
				t.Errorf("empty error for %q", in)
			}
			return
		}
		for _, g := range groups {
			if g.Name == "" || len(g.Rules) == 0 {
				t.Errorf("accepted a group without name or rules: %q", in)
			}
			for _, r := range g.Rules {
				if r.Alert == "" || r.Expr == "" {
					t.Errorf("accepted a rule without alert or expr: %q", in)
				}
			}
		}
	})
}

// FuzzParseMatcher: the matcher parser never panics, and what it accepts
// renders to a string it parses back to the same matcher.
func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{`severity=page`, `service=~"api|web"`, `host!="a b"`, `x!~.*`, `a=`, `=b`, `a=~(`, `nf.app="x\"y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := alerting.ParseMatcher(in)
		if err != nil {
			return
		}
		back, err := alerting.ParseMatcher(m.String())
		if err != nil {
			t.Fatalf("ParseMatcher(%q) rendered %q, which does not parse: %v", in, m.String(), err)
		}
		if back.Name != m.Name || back.Type != m.Type || back.Value != m.Value {
			t.Errorf("round trip of %q: %+v, want %+v", in, back, m)
		}
	})
}
