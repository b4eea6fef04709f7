package stack

import (
	"errors"
	"strconv"
	"strings"
)

// Type is a named predicate over stack items, used in word signatures.
// Vocabularies define their own (a query, a time series expression); the
// basic ones are below.
type Type struct {
	Name  string
	Match func(v any) bool
}

// Param is one input of a word's signature.
type Param struct {
	Name string // optional, for docs: "k", "n"
	Type Type
}

// Word is an operation of the language.
type Word struct {
	Name string // without the colon
	// In is the signature's input, bottom to top. Unless Match is set, a
	// word matches when the top len(In) items satisfy these types.
	In []Param
	// Out describes what the word leaves, for docs: "Query".
	Out string
	// Summary is one line for references and completion.
	Summary string
	// Examples are stacks, as programs, that the word is applied to in
	// the generated docs and the examples test. One starting with "ERROR:"
	// must make the word fail.
	Examples []string
	// Match, when set, replaces the In check (for words that inspect
	// values, or accept any stack).
	Match func(stack []any) bool
	// Exec runs the word. It returns plain errors; the interpreter adds the
	// position. Macros leave it nil and set Body instead.
	Exec func(c *Context) error
	// Body is a macro's program, run in the caller's context.
	Body []string
	// Deprecated words still work but are flagged in docs and completion.
	Deprecated bool
	// Unstable words need the "unstable" feature to be enabled.
	Unstable bool
}

// Matches reports whether w applies to the stack (top at the end).
func (w *Word) Matches(stack []any) bool {
	if w.Match != nil {
		return w.Match(stack)
	}
	if len(w.In) > len(stack) {
		return false
	}
	base := len(stack) - len(w.In)
	for i, p := range w.In {
		if !p.Type.Match(stack[base+i]) {
			return false
		}
	}
	return true
}

// Signature renders the stack effect, e.g. "k:String v:String -- Query".
func (w *Word) Signature() string {
	var b strings.Builder
	for i, p := range w.In {
		if i > 0 {
			b.WriteByte(' ')
		}
		if p.Name != "" {
			b.WriteString(p.Name)
			b.WriteByte(':')
		}
		b.WriteString(p.Type.Name)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString("--")
	if w.Out != "" {
		b.WriteByte(' ')
		b.WriteString(w.Out)
	}
	return b.String()
}

// Vocabulary is a named set of words built on other vocabularies.
type Vocabulary struct {
	Name  string
	Deps  []*Vocabulary
	Words []*Word
}

// All returns every word reachable from v: dependencies first, each
// vocabulary once, in declaration order. Overloads are tried in this order.
func (v *Vocabulary) All() []*Word {
	seen := map[*Vocabulary]bool{}
	var out []*Word
	var walk func(v *Vocabulary)
	walk = func(v *Vocabulary) {
		if seen[v] {
			return
		}
		seen[v] = true
		for _, d := range v.Deps {
			walk(d)
		}
		out = append(out, v.Words...)
	}
	walk(v)
	return out
}

// Basic types. Numbers on the stack are strings; Int and Double accept any
// string that parses as one.
var (
	Any    = Type{"Any", func(any) bool { return true }}
	String = Type{"String", func(v any) bool { _, ok := v.(string); return ok }}
	Int    = Type{"Int", func(v any) bool { _, ok := ToInt(v); return ok }}
	Double = Type{"Double", func(v any) bool { _, ok := ToDouble(v); return ok }}
	ListT  = Type{"List", func(v any) bool { _, ok := v.(List); return ok }}
	// StringList is a list whose items are all strings.
	StringList = Type{"List", func(v any) bool {
		l, ok := v.(List)
		if !ok {
			return false
		}
		for _, it := range l {
			if _, ok := it.(string); !ok {
				return false
			}
		}
		return true
	}}
	// DoubleList is a list whose items all parse as numbers.
	DoubleList = Type{"List", func(v any) bool {
		l, ok := v.(List)
		if !ok {
			return false
		}
		for _, it := range l {
			if _, ok := ToDouble(it); !ok {
				return false
			}
		}
		return true
	}}
)

// ToInt parses a string item as an int.
func ToInt(v any) (int, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// ToDouble parses a string item as a float64; "NaN" and "Infinity" (Java
// spellings) as well as Go's are accepted.
func ToDouble(v any) (float64, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	switch s {
	case "Infinity", "+Infinity":
		s = "+Inf"
	case "-Infinity":
		s = "-Inf"
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out-of-range numbers parse to ±Inf with an error; keep Java's view
		// that they are numbers.
		if errors.Is(err, strconv.ErrRange) {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// Strings returns a list's items as unescaped strings.
func (l List) Strings() []string {
	out := make([]string, len(l))
	for i, it := range l {
		s, _ := it.(string)
		out[i] = Unescape(s)
	}
	return out
}
