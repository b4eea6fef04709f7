// Package stack is a generic interpreter for stack languages: programs are
// comma-separated tokens, parenthesised lists, and words (tokens starting
// with a colon) that transform the stack. It knows nothing of time series;
// the vocabularies in query/expr give the words their meaning.
//
// The syntax follows Atlas' stack language:
//
//   - Comments /* ... */ nest and are removed before tokens are split.
//   - Tokens are trimmed; empty tokens are ignored ("a,,b" is "a,b").
//   - "(" starts a list that runs to the matching ")". Inside a list nothing
//     executes and nested parentheses stay as literal "(" and ")" items;
//     items are kept raw (escapes are decoded when a word consumes them).
//   - Any other token not starting with ":" is pushed as a string after
//     decoding \uXXXX escapes, so "\u002c" is a literal comma.
//   - ":name" runs the first word called name, in vocabulary order, whose
//     signature matches the stack (words are overloaded by stack shape).
//
// Errors are *Error values: they carry the word and the byte offset of the
// token that failed, so callers can point at the exact spot in a program.
//
// An Interpreter is immutable after New and safe for concurrent use; each
// Execute builds its own Context.
package stack
