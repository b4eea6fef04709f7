// Package expr is the Atlas stack language's abstract syntax tree and the
// vocabularies that build it, layered query → data → math → stateful →
// filter → style on top of the generic interpreter in query/stack.
//
// Running a program leaves expression values on the stack: tag queries
// (*tags.Query), data expressions that the store answers (*Aggregate,
// *GroupBy, *All), math over time series, stateful operators, filters, and
// presentation settings (*Style). The tree is plain data: query/eval walks
// it with type switches and turns data expressions into fetch requests.
//
// Every node renders back to the stack language with String, so a parsed
// expression can be shown, normalized, and parsed again to the same tree.
// Macros such as :avg or :stddev build a *Rewrite that evaluates their
// expansion but displays as the word the user wrote.
//
// Units: durations and offsets are int64 milliseconds.
package expr
