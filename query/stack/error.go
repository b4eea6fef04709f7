package stack

import (
	"errors"
	"fmt"
)

// Error is a failure while parsing or executing a program. Pos is the byte
// offset of the failing token in the program text and Token its index among
// the program's tokens; Word is the token (for a word, with its colon).
// Inside a list run by :call, Pos and Token point at the outermost token
// that started the call, and Word names the inner word that failed.
type Error struct {
	Word  string
	Pos   int
	Token int
	Msg   string
	Err   error // the underlying cause, if any
}

// Error renders the message with the position, e.g.
// "unknown word ':foo' (at position 2, token 1)".
func (e *Error) Error() string {
	return fmt.Sprintf("%s (at position %d, token %d)", e.Msg, e.Pos, e.Token)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf is a convenience for words: it formats a plain error that the
// interpreter will wrap into an *Error with the word's position.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// ErrLimit marks errors from the interpreter's size limits (stack depth,
// list size, call depth, program length).
var ErrLimit = errors.New("stack: limit exceeded")

// AsError returns err as an *Error if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
