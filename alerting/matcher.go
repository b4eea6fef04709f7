package alerting

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MatchType is the operator of a Matcher.
type MatchType uint8

// Match operators.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~
	MatchNotRegexp                  // !~
)

// String returns the operator as written.
func (m MatchType) String() string {
	return [...]string{"=", "!=", "=~", "!~"}[m&3]
}

// Matcher tests one label. A missing label matches as the empty string, as in
// Alertmanager. Regular expressions are anchored at both ends.
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// NewMatcher returns a matcher, compiling the value of a regex matcher.
func NewMatcher(name string, t MatchType, value string) (*Matcher, error) {
	if name == "" {
		return nil, fmt.Errorf("matcher without a label name")
	}
	m := &Matcher{Name: name, Type: t, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return nil, fmt.Errorf("matcher %s: bad regex: %w", name, err)
		}
		m.re = re
	}
	return m, nil
}

// Matches reports whether the labels satisfy m.
func (m *Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

// String renders m as ParseMatcher reads it.
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}

// Matchers is a conjunction of matchers.
type Matchers []*Matcher

// Matches reports whether every matcher matches.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// ParseMatcher reads one matcher: name, an operator (=, !=, =~, !~) and a
// value, optionally double-quoted (Go string syntax), e.g. severity="page"
// or service=~"api|web".
func ParseMatcher(s string) (*Matcher, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return nil, fmt.Errorf("matcher %q: want name, an operator (=, !=, =~, !~) and a value", s)
	}
	name := strings.TrimSpace(s[:i])
	if !validLabelName(name) {
		return nil, fmt.Errorf("matcher %q: bad label name %q", s, name)
	}
	rest := s[i:]
	var t MatchType
	switch {
	case strings.HasPrefix(rest, "=~"):
		t, rest = MatchRegexp, rest[2:]
	case strings.HasPrefix(rest, "!~"):
		t, rest = MatchNotRegexp, rest[2:]
	case strings.HasPrefix(rest, "!="):
		t, rest = MatchNotEqual, rest[2:]
	case strings.HasPrefix(rest, "="):
		t, rest = MatchEqual, rest[1:]
	default:
		return nil, fmt.Errorf("matcher %q: want an operator (=, !=, =~, !~) after %q", s, name)
	}
	v := strings.TrimSpace(rest)
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: bad quoted value: %w", s, err)
		}
		v = u
	}
	return NewMatcher(name, t, v)
}

// ParseMatchers reads a list of matchers, each as ParseMatcher reads it.
func ParseMatchers(ss []string) (Matchers, error) {
	out := make(Matchers, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// validLabelName accepts tag keys as the store does: letters, digits and
// . _ - (Atlas tags such as nf.app).
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
