package stack

import (
	"fmt"
	"strings"
)

// List is a parenthesised list, or one built by a word. Items from the
// program text are raw strings (escapes not yet decoded); words may build
// lists of any items.
type List []any

// Limits of one execution.
const (
	MaxStack     = 1024 // items on the stack, and items in one list
	MaxCallDepth = 10   // nested :call and macro expansions
	// MaxSteps bounds the words one execution may run: lists and calls can
	// otherwise multiply work exponentially within the other limits.
	MaxSteps = 1_000_000
)

// Interpreter runs programs against a vocabulary.
type Interpreter struct {
	vocab *Vocabulary
	all   []*Word
	words map[string][]*Word
}

// New returns an interpreter for v.
func New(v *Vocabulary) *Interpreter {
	in := &Interpreter{vocab: v, all: v.All(), words: map[string][]*Word{}}
	for _, w := range in.all {
		in.words[w.Name] = append(in.words[w.Name], w)
	}
	return in
}

// Vocabulary returns the interpreter's vocabulary.
func (in *Interpreter) Vocabulary() *Vocabulary { return in.vocab }

// Words returns every word in overload order.
func (in *Interpreter) Words() []*Word { return in.all }

// Lookup returns the overloads of a word name (without the colon).
func (in *Interpreter) Lookup(name string) []*Word { return in.words[name] }

// Options tune one execution.
type Options struct {
	// Vars are the initial variables; :freeze resets to them.
	Vars map[string]any
	// Unstable enables words flagged Unstable.
	Unstable bool
	// Trace, when set, is called after each top-level token with the stack.
	Trace func(tok Token, stack []any)
}

// Context is the state of one execution. Words read and change Stack
// (top at the end) and Vars.
type Context struct {
	Stack  []any
	Frozen []any
	Vars   map[string]any

	in    *Interpreter
	opts  *Options
	depth int
	steps int
	tok   Token // the top-level token being executed
	idx   int   // its index
	word  string
}

// Execute runs a program and returns the final context. The result stack
// is Frozen followed by Stack.
func (in *Interpreter) Execute(program string, opts Options) (*Context, error) {
	toks, err := Tokenize(program)
	if err != nil {
		return nil, err
	}
	return in.ExecuteTokens(toks, opts)
}

// ExecuteTokens runs already tokenized input.
func (in *Interpreter) ExecuteTokens(toks []Token, opts Options) (*Context, error) {
	c := &Context{in: in, opts: &opts, Vars: cloneVars(opts.Vars)}
	for i := 0; i < len(toks); i++ {
		c.tok, c.idx, c.word = toks[i], i, toks[i].Text
		next, err := c.step(toks, i)
		if err != nil {
			return c, c.wrap(err)
		}
		if opts.Trace != nil {
			opts.Trace(toks[i], c.Result())
		}
		i = next
	}
	return c, nil
}

// Result is the final stack: frozen items first.
func (c *Context) Result() []any {
	if len(c.Frozen) == 0 {
		return c.Stack
	}
	out := make([]any, 0, len(c.Frozen)+len(c.Stack))
	return append(append(out, c.Frozen...), c.Stack...)
}

// step executes toks[i] (and a whole list if it opens one) and returns the
// index of the last token consumed.
func (c *Context) step(toks []Token, i int) (int, error) {
	t := toks[i].Text
	switch {
	case t == "(":
		l, end, err := readList(toks, i)
		if err != nil {
			return i, err
		}
		return end, c.push(l)
	case t == ")":
		return i, fmt.Errorf("unmatched closing parenthesis")
	case strings.HasPrefix(t, ":"):
		return i, c.run(t[1:])
	}
	return i, c.push(Unescape(t))
}

// readList reads the list opened at toks[i]; nested parentheses become
// literal items.
func readList(toks []Token, i int) (List, int, error) {
	depth := 1
	var l List
	for j := i + 1; j < len(toks); j++ {
		switch toks[j].Text {
		case "(":
			depth++
		case ")":
			depth--
			if depth == 0 {
				return l, j, nil
			}
		}
		if len(l) >= MaxStack {
			return nil, j, fmt.Errorf("%w: list longer than %d items", ErrLimit, MaxStack)
		}
		l = append(l, toks[j].Text)
	}
	return nil, i, fmt.Errorf("unmatched opening parenthesis")
}

// run executes the word called name on the current stack.
func (c *Context) run(name string) error {
	c.word = ":" + name
	if c.steps++; c.steps > MaxSteps {
		return fmt.Errorf("%w: more than %d words executed", ErrLimit, MaxSteps)
	}
	ws := c.in.words[name]
	if len(ws) == 0 {
		return fmt.Errorf("unknown word ':%s'", name)
	}
	for _, w := range ws {
		if !w.Matches(c.Stack) {
			continue
		}
		if w.Unstable && !c.opts.Unstable {
			return fmt.Errorf("word ':%s' is unstable; enable it with features=unstable", name)
		}
		if w.Body != nil {
			return c.call(w.Body)
		}
		return w.Exec(c)
	}
	return fmt.Errorf("no matches for word ':%s' with stack %s, candidates: %s", name, Describe(c.Stack), signatures(ws))
}

// signatures lists the signatures of every word of a name, for the error
// that says none of them matched the stack: the user sees what the word
// would have accepted next to what the stack held.
func signatures(ws []*Word) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, w := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w.Signature())
	}
	b.WriteByte(']')
	return b.String()
}

// Call runs a list as a program in this context (used by :call, :each,
// :map and macros).
func (c *Context) Call(prog List) error {
	body := make([]string, len(prog))
	for i, it := range prog {
		s, ok := it.(string)
		if !ok {
			return fmt.Errorf("cannot call a list holding %s", Describe([]any{it}))
		}
		body[i] = s
	}
	return c.call(body)
}

// call runs tokens in this context. The depth bound turns a program that
// calls itself (a variable holding a list that :call's itself) into an
// ErrLimit error instead of a goroutine stack overflow. Tokens of a called
// list report the position of the word that called them, since they have
// no place of their own in the user's text.
func (c *Context) call(body []string) error {
	if c.depth >= MaxCallDepth {
		return fmt.Errorf("%w: looping detected (calls nested deeper than %d)", ErrLimit, MaxCallDepth)
	}
	c.depth++
	defer func() { c.depth-- }()
	toks := make([]Token, len(body))
	for i, s := range body {
		toks[i] = Token{Text: s, Pos: c.tok.Pos}
	}
	outer := c.word
	for i := 0; i < len(toks); i++ {
		next, err := c.step(toks, i)
		if err != nil {
			return err
		}
		i = next
	}
	c.word = outer
	return nil
}

// push is Push with the stack bound: a program that pushes without end (a
// long :each over a generated list) fails with ErrLimit, not by growing
// memory without bound.
func (c *Context) push(v any) error {
	if len(c.Stack) >= MaxStack {
		return fmt.Errorf("%w: stack overflow (more than %d items)", ErrLimit, MaxStack)
	}
	c.Stack = append(c.Stack, v)
	return nil
}

// Push adds v on top of the stack.
func (c *Context) Push(v any) error { return c.push(v) }

// Pop removes and returns the top item. Words call it only after their
// signature matched, so an empty stack is a bug in the word.
func (c *Context) Pop() any {
	n := len(c.Stack)
	if n == 0 {
		panic("BUG: pop on an empty stack; the word's signature should have prevented it")
	}
	v := c.Stack[n-1]
	c.Stack[n-1] = nil
	c.Stack = c.Stack[:n-1]
	return v
}

// Peek returns the i-th item from the top (0 is the top).
func (c *Context) Peek(i int) any { return c.Stack[len(c.Stack)-1-i] }

// Unstable reports whether unstable words are enabled.
func (c *Context) Unstable() bool { return c.opts.Unstable }

// Interpreter returns the interpreter running c.
func (c *Context) Interpreter() *Interpreter { return c.in }

// InitialVars returns the variables the execution started with.
func (c *Context) InitialVars() map[string]any { return c.opts.Vars }

// wrap turns a word's error into an *Error naming the word and where it
// stands in the program, unless a nested call already did (the innermost
// position is the useful one).
func (c *Context) wrap(err error) error {
	if e, ok := AsError(err); ok {
		return e
	}
	return &Error{Word: c.word, Pos: c.tok.Pos, Token: c.idx, Msg: err.Error(), Err: err}
}

// cloneVars copies the initial variables, so that :set in one execution
// never changes what the next execution starts with.
func cloneVars(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Describe renders stack items for messages: strings as they are, lists
// as (,a,b,), other values with their String method, bounded in length.
func Describe(items []any) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len() > 400 {
			fmt.Fprintf(&b, "... %d more", len(items)-i)
			break
		}
		b.WriteString(Format(it))
	}
	b.WriteByte(']')
	return b.String()
}

// Format renders one item as program text.
func Format(it any) string {
	switch v := it.(type) {
	case string:
		return Escape(v)
	case List:
		var b strings.Builder
		b.WriteString("(,")
		for _, x := range v {
			if s, ok := x.(string); ok {
				b.WriteString(s) // list items are kept raw
			} else {
				b.WriteString(Format(x))
			}
			b.WriteByte(',')
		}
		b.WriteByte(')')
		return b.String()
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(it)
}
