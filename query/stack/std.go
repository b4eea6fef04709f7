package stack

import (
	"fmt"
	"strconv"
	"strings"
)

// Std is the standard vocabulary: stack manipulation, variables and
// control words. Every other vocabulary builds on it.
var Std = &Vocabulary{Name: "std", Words: stdWords()}

// p is a parameter of a word's signature, kept short because the
// vocabulary tables below use it hundreds of times.
func p(name string, t Type) Param { return Param{Name: name, Type: t} }

// any1 is the stack predicate of words that run on any stack, even an
// empty one (:clear, :depth).
func any1(stack []any) bool { return true }

// stdWords builds the standard vocabulary. Each word carries its summary
// and examples: they generate the language reference (docs/asl.md, see
// query.WriteReference) and the UI's autocompletion, and the examples are
// run by the word tests, so a word's documentation cannot drift from what
// it does.
func stdWords() []*Word {
	return []*Word{
		{
			Name: "call", In: []Param{p("prog", ListT)}, Out: "...",
			Summary:  "Execute a list as a program.",
			Examples: []string{"(,a,:dup,)", "ERROR:a"},
			Exec: func(c *Context) error {
				// Call runs the list's items as tokens, nesting counted against
				// the interpreter's call depth, so a list that calls itself
				// through a variable ends in an error, not a stack overflow.
				return c.Call(c.Pop().(List))
			},
		},
		{
			Name: "clear", Match: any1, In: []Param{p("", Type{"*", nil})},
			Summary:  "Remove every item from the stack (frozen items stay).",
			Examples: []string{"a,b,c", ""},
			Exec: func(c *Context) error {
				// Cleared before truncating, so the dropped items (expression
				// trees, possibly large) are not kept alive by the backing array.
				clear(c.Stack)
				c.Stack = c.Stack[:0]
				return nil
			},
		},
		{
			Name: "depth", Match: any1, Out: "n:Int",
			Summary:  "Push the number of items on the stack.",
			Examples: []string{"", "a", "a,b"},
			Exec: func(c *Context) error {
				// Numbers on the stack are strings until a word reads them as
				// one (ToInt, ToDouble), as in Atlas.
				return c.Push(strconv.Itoa(len(c.Stack)))
			},
		},
		{
			Name: "drop", In: []Param{p("a", Any)},
			Summary:  "Remove the item on top of the stack.",
			Examples: []string{"a", "a,b", "ERROR:"},
			Exec:     func(c *Context) error { c.Pop(); return nil },
		},
		{
			Name: "dup", In: []Param{p("a", Any)}, Out: "a a",
			Summary:  "Duplicate the item on top of the stack.",
			Examples: []string{"a", "a,b", "ERROR:"},
			Exec:     func(c *Context) error { return c.Push(c.Peek(0)) },
		},
		{
			Name: "each", In: []Param{p("items", ListT), p("f", ListT)}, Out: "...",
			Summary:  "Push each item of a list, last first, and call f after each.",
			Examples: []string{"a,b,:list,(,:dup,)", "(,a,b,),(,:drop,)"},
			Exec: func(c *Context) error {
				f := c.Pop().(List)
				items := c.Pop().(List)
				// Lists built by :list are top-first, so iterating from the
				// end restores the original stack order.
				for i := len(items) - 1; i >= 0; i-- {
					it := items[i]
					// A list keeps its items escaped as written; pushing one
					// unescapes it, as if it had been a token of the program.
					if s, ok := it.(string); ok {
						it = Unescape(s)
					}
					if err := c.Push(it); err != nil {
						return err
					}
					if err := c.Call(f); err != nil {
						return err
					}
				}
				return nil
			},
		},
		{
			Name: "format", In: []Param{p("pattern", String), p("args", ListT)}, Out: "String",
			Summary:  "Format a string with printf-style %s placeholders from a list.",
			Examples: []string{"foo%s,(,bar,)", "%2$s-%1$s,(,a,b,)", "ERROR:%d,(,a,)"},
			Exec: func(c *Context) error {
				args := c.Pop().(List)
				s, err := javaFormat(c.Pop().(string), args)
				if err != nil {
					return err
				}
				return c.Push(s)
			},
		},
		{
			Name: "freeze", Match: any1, In: []Param{p("", Type{"*", nil})},
			Summary:  "Move the whole stack out of reach of later words and reset the variables.",
			Examples: []string{"a,b"},
			Exec: func(c *Context) error {
				// Frozen items are still part of the result (Result) but no word
				// can reach them: a program of several independent presentations
				// cannot consume one another's lines. The variables are reset to
				// the program's initial ones for the same reason.
				c.Frozen = append(c.Frozen, c.Stack...)
				c.Stack = nil
				c.Vars = cloneVars(c.opts.Vars)
				return nil
			},
		},
		{
			Name: "get", In: []Param{p("k", String)}, Out: "v",
			Summary:  "Push the value of a variable.",
			Examples: []string{"k,v,:set,k", "ERROR:missing"},
			Exec: func(c *Context) error {
				k := c.Pop().(string)
				v, ok := c.Vars[k]
				if !ok {
					return fmt.Errorf("variable %q is not set", k)
				}
				return c.Push(v)
			},
		},
		{
			Name: "pick", In: []Param{p("n", Int)}, Out: "aN..a0 aN",
			Summary:  "Copy the item n places below the top (0 is the top) onto the stack.",
			Examples: []string{"a,0", "a,b,1", "ERROR:a,1"},
			Exec: func(c *Context) error {
				// The signature matched an Int: the conversion cannot fail.
				n, _ := ToInt(c.Pop())
				if n < 0 || n >= len(c.Stack) {
					return fmt.Errorf("cannot pick item %d from a stack of %d", n, len(c.Stack))
				}
				return c.Push(c.Peek(n))
			},
		},
		{
			Name: "map", In: []Param{p("items", ListT), p("f", ListT)}, Out: "List",
			Summary:  "Apply f to each item of a list and collect the results in a list.",
			Examples: []string{"(,a%s,b%s,),(,(,.example.com,),:format,)"},
			Exec: func(c *Context) error {
				f := c.Pop().(List)
				items := c.Pop().(List)
				out := make(List, 0, len(items))
				for _, it := range items {
					// f must leave exactly its result on top: whatever it left is
					// taken from the stack, so items below base are untouched.
					base := len(c.Stack)
					if s, ok := it.(string); ok {
						it = Unescape(s)
					}
					if err := c.Push(it); err != nil {
						return err
					}
					if err := c.Call(f); err != nil {
						return err
					}
					if len(c.Stack) <= base {
						return fmt.Errorf("map function left nothing on the stack")
					}
					out = append(out, c.Pop())
				}
				return c.Push(out)
			},
		},
		{
			Name: "ndrop", In: []Param{p("n", Int)},
			Summary:  "Remove the top n items (all of them if there are fewer).",
			Examples: []string{"a,b,c,2", "a,5", "ERROR:a,-1"},
			Exec: func(c *Context) error {
				n, _ := ToInt(c.Pop())
				if n < 0 {
					return fmt.Errorf("cannot drop %d items", n)
				}
				// More than the stack holds is not an error: the stack is
				// emptied.
				n = min(n, len(c.Stack))
				clear(c.Stack[len(c.Stack)-n:])
				c.Stack = c.Stack[:len(c.Stack)-n]
				return nil
			},
		},
		{
			Name: "nlist", In: []Param{p("n", Int)}, Out: "List",
			Summary:  "Replace the top n items with a list of them, bottom first.",
			Examples: []string{"a,b,c,2", "a,0", "ERROR:a,2"},
			Exec: func(c *Context) error {
				n, _ := ToInt(c.Pop())
				if n < 0 || n > len(c.Stack) {
					return fmt.Errorf("cannot make a list of %d items from a stack of %d", n, len(c.Stack))
				}
				l := make(List, n)
				copy(l, c.Stack[len(c.Stack)-n:])
				clear(c.Stack[len(c.Stack)-n:])
				c.Stack = c.Stack[:len(c.Stack)-n]
				return c.Push(l)
			},
		},
		{
			Name: "over", In: []Param{p("a", Any), p("b", Any)}, Out: "a b a",
			Summary:  "Copy the second item onto the top.",
			Examples: []string{"a,b", "ERROR:a"},
			Exec:     func(c *Context) error { return c.Push(c.Peek(1)) },
		},
		{
			Name: "-rot", Match: func(s []any) bool { return len(s) >= 2 }, In: []Param{p("", Type{"x...", nil}), p("a", Any)}, Out: "a x...",
			Summary:  "Move the top item to the bottom of the stack.",
			Examples: []string{"a,b,c", "ERROR:a"},
			Exec: func(c *Context) error {
				top := c.Pop()
				// Prepending makes a new backing array; the stack is bounded
				// by MaxStack, so the copy is too.
				c.Stack = append([]any{top}, c.Stack...)
				return nil
			},
		},
		{
			Name: "roll", In: []Param{p("n", Int)}, Out: "aN-1..a0 aN",
			Summary:  "Move the item n places below the top onto the top.",
			Examples: []string{"a,b,1", "a,b,c,2", "ERROR:a,1"},
			Exec: func(c *Context) error {
				n, _ := ToInt(c.Pop())
				if n < 0 || n >= len(c.Stack) {
					return fmt.Errorf("cannot roll item %d of a stack of %d", n, len(c.Stack))
				}
				i := len(c.Stack) - 1 - n
				v := c.Stack[i]
				copy(c.Stack[i:], c.Stack[i+1:])
				c.Stack[len(c.Stack)-1] = v
				return nil
			},
		},
		{
			Name: "rot", Match: func(s []any) bool { return len(s) >= 2 }, In: []Param{p("a", Any), p("", Type{"x...", nil})}, Out: "x... a",
			Summary:  "Move the bottom item to the top of the stack.",
			Examples: []string{"a,b,c", "ERROR:a"},
			Exec: func(c *Context) error {
				v := c.Stack[0]
				copy(c.Stack, c.Stack[1:])
				c.Stack[len(c.Stack)-1] = v
				return nil
			},
		},
		{
			Name: "set", In: []Param{p("k", String), p("v", Any)},
			Summary:  "Set a variable.",
			Examples: []string{"k,v", "ERROR:(,a,),v"},
			Exec: func(c *Context) error {
				v := c.Pop()
				k := c.Pop().(string)
				// Variables are per program run (the Context), never shared
				// between requests; :freeze resets them.
				c.Vars[k] = v
				return nil
			},
		},
		{
			Name: "swap", In: []Param{p("a", Any), p("b", Any)}, Out: "b a",
			Summary:  "Swap the top two items.",
			Examples: []string{"a,b", "ERROR:a"},
			Exec: func(c *Context) error {
				n := len(c.Stack)
				c.Stack[n-1], c.Stack[n-2] = c.Stack[n-2], c.Stack[n-1]
				return nil
			},
		},
		{
			Name: "list", Match: any1, In: []Param{p("", Type{"*", nil})}, Out: "List",
			Summary:  "Replace the whole stack with a list of its items, top first.",
			Examples: []string{"a,b,c", ""},
			Exec: func(c *Context) error {
				l := make(List, len(c.Stack))
				// Top first, as Atlas's :list; :each undoes the order.
				for i, v := range c.Stack {
					l[len(l)-1-i] = v
				}
				c.Stack = c.Stack[:0]
				return c.Push(l)
			},
		},
		// The words below are macros: their body runs in the caller's
		// context, so they need no code of their own.
		{Name: "2over", In: []Param{p("a", Any), p("b", Any)}, Out: "a b a b", Body: []string{":over", ":over"},
			Summary: "Copy the top two items onto the top.", Examples: []string{"a,b", "ERROR:a"}},
		{Name: "nip", In: []Param{p("a", Any), p("b", Any)}, Out: "b", Body: []string{":swap", ":drop"},
			Summary: "Remove the second item.", Examples: []string{"a,b", "ERROR:a"}},
		{Name: "tuck", In: []Param{p("a", Any), p("b", Any)}, Out: "b a b", Body: []string{":swap", ":over"},
			Summary: "Copy the top item below the second one.", Examples: []string{"a,b", "ERROR:a"}},
		{Name: "fcall", In: []Param{p("name", String)}, Out: "...", Body: []string{":get", ":call"},
			Summary: "Call the list stored in a variable.", Examples: []string{"f,(,:dup,),:set,a,f"}},
		{Name: "sset", In: []Param{p("v", Any), p("k", String)}, Body: []string{":swap", ":set"},
			Summary: "Set a variable, value first.", Examples: []string{"v,k"}},
	}
}

// javaFormat formats like Java's String.format with string arguments:
// %s (optionally with an explicit index n$, a width and "-" flag), %% and %n.
func javaFormat(pattern string, args List) (string, error) {
	var b strings.Builder
	next := 0
	for i := 0; i < len(pattern); i++ {
		ch := pattern[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		// A specifier is %[index$][-][width]conversion; only the
		// conversions that make sense for strings are accepted, so a
		// Java-only pattern (%d, %.2f) is an error rather than garbage.
		j := i + 1
		// explicit argument index: digits followed by '$'
		idx := -1
		k := j
		for k < len(pattern) && pattern[k] >= '0' && pattern[k] <= '9' {
			k++
		}
		if k < len(pattern) && k > j && pattern[k] == '$' {
			n, _ := strconv.Atoi(pattern[j:k])
			idx = n - 1
			j = k + 1
		}
		left := false
		if j < len(pattern) && pattern[j] == '-' {
			left = true
			j++
		}
		w0 := j
		for j < len(pattern) && pattern[j] >= '0' && pattern[j] <= '9' {
			j++
		}
		width, _ := strconv.Atoi(pattern[w0:j])
		// A width is user input: bounded, so a pattern cannot ask for a
		// gigabyte of padding.
		if width > 1024 {
			return "", fmt.Errorf("format width %d too large", width)
		}
		if j >= len(pattern) {
			return "", fmt.Errorf("incomplete format specifier at the end of %q", pattern)
		}
		switch pattern[j] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteByte('\n')
		case 's', 'S':
			if idx < 0 {
				idx = next
				next++
			}
			if idx < 0 || idx >= len(args) {
				return "", fmt.Errorf("format %q needs argument %d, got %d", pattern, idx+1, len(args))
			}
			s := Format(args[idx])
			if a, ok := args[idx].(string); ok {
				s = Unescape(a)
			}
			if pattern[j] == 'S' {
				s = strings.ToUpper(s)
			}
			// Width counts characters, as Java does, not bytes.
			pad := strings.Repeat(" ", max(0, width-len([]rune(s))))
			if left {
				s += pad
			} else {
				s = pad + s
			}
			b.WriteString(s)
		default:
			return "", fmt.Errorf("unsupported format conversion %%%c in %q: arguments are strings, use %%s", pattern[j], pattern)
		}
		i = j
	}
	return b.String(), nil
}
