package eval

import "fmt"

// UserError is a mistake in the expression being evaluated (a filter
// condition with several lines, an impossible time span ...): the user's
// to fix, a 400 at the HTTP edge. Errors of any other type from Eval are
// the server's (the store failed, or a bug), except *tsdb.LimitError and
// the context's errors.
type UserError struct{ Msg string }

// Error implements error.
func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}
