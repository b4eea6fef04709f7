// Package query is the front door of the stack language: Parse turns a
// program into presentations (expressions with display settings), and an
// Engine evaluates them over the store into lines ready to draw: legends
// resolved, sorted and limited as the program asked.
//
// The work happens below: query/stack interprets, query/expr builds the
// tree, query/eval evaluates it through the tsdb contract.
package query

import (
	"fmt"
	"time"

	"github.com/sextant-dev/sextant/query/expr"
	"github.com/sextant-dev/sextant/query/stack"
	"github.com/sextant-dev/sextant/tsdb/tags"
)

// interp is immutable and safe for concurrent use.
var interp = expr.NewInterpreter()

// Interpreter returns the interpreter of the complete language.
func Interpreter() *stack.Interpreter { return interp }

// ParseOptions tune parsing.
type ParseOptions struct {
	// TZ is the time zone name variable for :time-span; default UTC.
	TZ string
	// Unstable enables words flagged unstable (features=unstable).
	Unstable bool
}

// Parse runs a program and returns what it leaves on the stack, bottom
// first, as presentations. Every item must be a time series expression or
// a presentation; a query or number is coerced. Errors are *stack.Error.
func Parse(program string, opts ParseOptions) ([]*expr.Style, error) {
	c, err := Exec(program, opts)
	if err != nil {
		return nil, err
	}
	items := c.Result()
	out := make([]*expr.Style, 0, len(items))
	for i, it := range items {
		s, ok := expr.AsStyle(it)
		if !ok {
			return nil, &stack.Error{Word: stack.Format(it), Pos: len(program), Token: tokenCount(program),
				Msg: fmt.Sprintf("expecting time series expr, found %s at stack position %d", stack.Describe([]any{it}), i)}
		}
		out = append(out, s)
	}
	return out, nil
}

// Exec runs a program and returns the final context (for tools that show
// the stack itself).
func Exec(program string, opts ParseOptions) (*stack.Context, error) {
	tz := opts.TZ
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return nil, &stack.Error{Word: tz, Msg: fmt.Sprintf("unknown time zone %q", tz), Err: err}
	}
	return interp.Execute(program, stack.Options{Vars: map[string]any{"tz": tz}, Unstable: opts.Unstable})
}

// ParseQuery parses a program that must leave exactly one tag query, as
// the tags API's q parameter.
func ParseQuery(program string) (*tags.Query, error) {
	c, err := interp.Execute(program, stack.Options{})
	if err != nil {
		return nil, err
	}
	items := c.Result()
	if len(items) != 1 {
		return nil, &stack.Error{Pos: len(program), Token: tokenCount(program), Msg: fmt.Sprintf("expecting one query, found %d items", len(items))}
	}
	q, ok := items[0].(*tags.Query)
	if !ok {
		return nil, &stack.Error{Word: stack.Format(items[0]), Pos: len(program), Token: tokenCount(program),
			Msg: fmt.Sprintf("expecting a query, found %s", stack.Describe(items))}
	}
	return q, nil
}

// tokenCount is the number of tokens of a program that ran: errors about
// what it left point just past its end.
func tokenCount(program string) int {
	toks, _ := stack.Tokenize(program)
	return len(toks)
}
